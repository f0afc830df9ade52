"""The DuckDB warehouse: connections, the Python steps' tables, the dbt runner, erasure.

Modules
-------
:mod:`.connection`  :func:`connect` (one configuration for every connection of a process)
:mod:`.tables`      existence checks, idempotent partition writes, reads into polars
:mod:`.stage_log`   ``ml.stage_runs``: per-stage rows and timings of each logical date
:mod:`.dbt`         dbt in-process: the two dbt stages and the manifest the DAG renders
:mod:`.erasure`     the right to be forgotten across the warehouse
:mod:`.raw_erasure` erasure in ``raw`` (quarantine included) and its audit counts
"""

from ml.warehouse.connection import connect

__all__ = ["connect"]
