"""The Affinity dashboard: run health, segments, customers, products, campaigns, model.

A Streamlit app (``affinity dashboard``, ``make dashboard``) over the published analyst
snapshot, read-only: it opens the snapshot per page view and closes it, so it keeps
working while a publish swaps the file.

Modules: ``snapshot`` (open read-only, version for caching), ``queries`` (each page's
figures from an open connection, testable without a browser), ``model_history`` (MLflow,
read-only), ``views`` (the Streamlit pages), ``app`` (the Streamlit script), ``server``
(the ``streamlit run`` command).
"""
