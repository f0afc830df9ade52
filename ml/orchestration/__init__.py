"""Running the pipeline: stage bodies, the stage runner, ``affinity run``, and Airflow.

Modules
-------
:mod:`.stages`   the Python stages' bodies (what :mod:`ml.pipeline` declares)
:mod:`.runner`   :func:`run_stage` / :func:`run_stages`: one way to run a declared stage
:mod:`.run`      ``affinity run``: input, the DAG for one date, the summary
:mod:`.landing`  the run's input: generated shop, imported export or landing folder
:mod:`.airflow`  Airflow without servers (``dags test``), ``make airflow`` / ``make mlflow``
:mod:`.erasure`  erasure requests applied to the models and snapshots
"""
