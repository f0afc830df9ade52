"""The bridge between the DuckDB side (Python steps) and the Spark side (dbt) of a home.

With ``AFFINITY_ENGINE=spark`` dbt builds every model in Spark, while the Python steps
(ingest, product text, training, scoring, campaigns, publish) keep reading and writing
the DuckDB warehouse they always did. Both sides meet in Parquet:

- :func:`sync_sources_to_spark`: every dbt source (``raw.*``, ``ml.*`` tables declared
  in ``models/staging/*/_*__sources.yml``) present in DuckDB is written to
  ``spark/lake/<schema>/<table>/`` and registered as an external Spark table;
- :func:`expose_spark_tables`: every table dbt built in Spark (``seeds``, ``staging``,
  ``intermediate``, ``marts``, ``outputs``) becomes a DuckDB view over its Parquet files,
  so ``marts.customer_features`` reads the same in both engines and the publish copies
  ``outputs.*`` into the analyst snapshot as before. Views cost nothing to create: the
  data stays in the lake.

Both are idempotent; the runner calls them around every stage (:mod:`ml.spark.hooks`).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ml.config import DBT_PROJECT_DIR
from ml.spark.session import SparkPaths, spark_paths

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# Schemas dbt builds (the folders' +schema); their Spark tables become DuckDB views.
DBT_SCHEMAS = ("seeds", "staging", "intermediate", "marts", "outputs")


def dbt_source_tables(project_dir: Path = DBT_PROJECT_DIR) -> list[tuple[str, str]]:
    """``(schema, table)`` of every source the dbt project declares, sorted."""
    tables: set[tuple[str, str]] = set()
    for path in sorted(project_dir.glob("models/**/_*sources.yml")):
        document = yaml.safe_load(path.read_text()) or {}
        for source in document.get("sources") or []:
            schema = source.get("schema") or source["name"]
            for table in source.get("tables") or []:
                tables.add((schema, table.get("identifier") or table["name"]))
    return sorted(tables)


def _duckdb_base_tables(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    rows = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE'"
    ).fetchall()
    return {(schema, table) for schema, table in rows}


def sql_path(path: Path) -> str:
    """A path for a quoted SQL string (DuckDB's COPY and read_parquet, Spark's LOCATION)."""
    return str(path).replace("'", "''")


def write_lake_table(con: duckdb.DuckDBPyConnection, schema: str, table: str, where: SparkPaths):
    """Write one DuckDB table to its lake directory (replaced whole, via a sibling)."""
    target = where.lake_dir(schema, table)
    building = target.with_name(f".{table}.building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    con.execute(
        f"COPY (SELECT * FROM {schema}.{table}) TO '{sql_path(building / 'part-0.parquet')}' "
        "(FORMAT parquet)"
    )
    old = target.with_name(f".{table}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    building.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def register_lake_table(spark: SparkSession, schema: str, table: str, location: Path) -> None:
    """(Re-)register a lake directory as the external Spark table ``schema.table``.

    Dropping an external table keeps its files; registering again picks up a changed
    schema (a column the Python step added).
    """
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
    spark.sql(f"DROP TABLE IF EXISTS {schema}.{table}")
    spark.sql(f"CREATE TABLE {schema}.{table} USING parquet LOCATION '{sql_path(location)}'")


def sync_sources_to_spark(
    con: duckdb.DuckDBPyConnection,
    spark: SparkSession,
    *,
    schemas: Iterable[str] | None = None,
    home: Path | str | None = None,
) -> list[str]:
    """Write the dbt sources DuckDB holds to the lake and register them in Spark.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The warehouse.
    spark : SparkSession
        The home's session (:func:`ml.spark.session.spark_session`).
    schemas : iterable of str, optional
        Only sources of these schemas (default: all).
    home : path-like, optional
        Affinity home (default ``$AFFINITY_HOME``).

    Returns
    -------
    list of str
        ``schema.table`` of the sources written.
    """
    where = spark_paths(home)
    wanted = set(schemas) if schemas is not None else None
    present = _duckdb_base_tables(con)
    written = []
    started = time.perf_counter()
    for schema, table in dbt_source_tables():
        if (wanted is not None and schema not in wanted) or (schema, table) not in present:
            continue
        location = write_lake_table(con, schema, table, where)
        register_lake_table(spark, schema, table, location)
        written.append(f"{schema}.{table}")
    log.info(
        "lake: %d dbt source(s) written for Spark in %.1fs",
        len(written),
        time.perf_counter() - started,
    )
    return written


def spark_table_dirs(home: Path | str | None = None) -> dict[tuple[str, str], Path]:
    """``{(schema, table): directory}`` of the tables dbt built in Spark (with Parquet)."""
    where = spark_paths(home)
    found: dict[tuple[str, str], Path] = {}
    for schema in DBT_SCHEMAS:
        schema_dir = where.warehouse / f"{schema}.db"
        if not schema_dir.is_dir():
            continue
        for table_dir in sorted(p for p in schema_dir.iterdir() if p.is_dir()):
            if not table_dir.name.startswith((".", "_")) and any(table_dir.rglob("*.parquet")):
                found[(schema, table_dir.name)] = table_dir
    return found


def expose_spark_tables(
    con: duckdb.DuckDBPyConnection, home: Path | str | None = None
) -> list[str]:
    """Make every Spark-built table a DuckDB view over its Parquet files.

    Views of tables dbt no longer builds are dropped. A DuckDB *base* table of the same
    name is never replaced: it would mean the home was built by DuckDB (see
    :mod:`ml.engine`).

    Returns
    -------
    list of str
        ``schema.table`` of the views.
    """
    tables = spark_table_dirs(home)
    existing_views = {
        (schema, name)
        for schema, name in con.execute(
            "SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal"
        ).fetchall()
        if schema in DBT_SCHEMAS
    }
    base = _duckdb_base_tables(con)
    exposed = []
    for (schema, table), directory in tables.items():
        if (schema, table) in base:
            raise RuntimeError(
                f"{schema}.{table} is a DuckDB table in a Spark home: this warehouse was "
                "built by DuckDB. Use a new AFFINITY_HOME for the Spark engine."
            )
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(
            f"CREATE OR REPLACE VIEW {schema}.{table} AS SELECT * FROM read_parquet("
            f"'{sql_path(directory)}/**/*.parquet', hive_partitioning = true)"
        )
        exposed.append(f"{schema}.{table}")
    for schema, table in sorted(existing_views - set(tables)):
        con.execute(f"DROP VIEW IF EXISTS {schema}.{table}")
    return exposed
