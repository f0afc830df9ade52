"""What the runner and ``run_dbt`` do around a stage when the home's engine is Spark.

- before dbt: the session is started (with the home's settings and the PII salt) and the
  dbt sources the Python steps wrote are synced to Spark;
- after dbt, and before every Python stage: the Spark-built tables are (re-)exposed to
  DuckDB as views;
- after a Python stage that writes ``raw`` or ``ml`` tables: those sources are synced,
  so the next dbt stage (a Cosmos task group or ``run_dbt``) reads them.

Each is a no-op on a DuckDB home, so callers need no engine test of their own.
"""

from __future__ import annotations

from collections.abc import Iterable

from ml.engine import is_spark


def _schemas_written(writes: Iterable[str]) -> set[str]:
    return {item.split(".", 1)[0] for item in writes if "." in item and " " not in item}


def before_dbt() -> None:
    """Start the session and sync every dbt source (Spark homes only)."""
    if not is_spark():
        return
    from ml.spark.lake import sync_sources_to_spark
    from ml.spark.session import spark_session
    from ml.warehouse import connect

    spark = spark_session()
    with connect() as con:
        sync_sources_to_spark(con, spark)


def expose_to_duckdb() -> None:
    """Expose the Spark-built tables as DuckDB views (Spark homes only)."""
    if not is_spark():
        return
    from ml.spark.lake import expose_spark_tables
    from ml.warehouse import connect

    with connect() as con:
        expose_spark_tables(con)


def after_python_stage(writes: Iterable[str]) -> None:
    """Sync the dbt sources of the schemas a Python stage wrote (Spark homes only)."""
    if not is_spark():
        return
    schemas = _schemas_written(writes) & {"raw", "ml"}
    if not schemas:
        return
    from ml.spark.lake import sync_sources_to_spark
    from ml.spark.session import spark_session
    from ml.warehouse import connect

    spark = spark_session()
    with connect() as con:
        sync_sources_to_spark(con, spark, schemas=schemas)
