"""``ml`` tables whose columns follow a polars frame (model state, caches, stage outputs).

For tables whose shape the writing code owns (a taxonomy's state, an embedding store), the
frame is the schema: a table is (re)created from the frame's Arrow types when its columns
differ. Published outputs keep declared columns (:func:`ml.warehouse.tables.write_partition`).
"""

from __future__ import annotations

import logging
from datetime import date

import duckdb
import polars as pl

from ml.warehouse.tables import (
    ML_SCHEMA,
    prune_dates,
    read_frame,
    table_columns,
    table_exists,
    transaction,
)

log = logging.getLogger(__name__)


def _create_like(con: duckdb.DuckDBPyConnection, table: str, relation: str) -> None:
    """(Re)create ``ml.<table>`` with the columns of ``relation`` when they differ."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ML_SCHEMA}")
    wanted = [
        (name, dtype)
        for name, dtype, *_ in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    ]
    existing = list(table_columns(con, ML_SCHEMA, table).items())
    if existing and existing != wanted:
        log.warning(
            "%s.%s has other columns than this code writes: recreating it", ML_SCHEMA, table
        )
        con.execute(f"DROP TABLE {ML_SCHEMA}.{table}")
        existing = []
    if not existing:
        con.execute(f"CREATE TABLE {ML_SCHEMA}.{table} AS SELECT * FROM {relation} LIMIT 0")


def replace_table(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Make ``ml.<table>`` hold exactly ``frame`` (one transaction); return its rows."""
    con.register("_frame_rows", frame.to_arrow())
    with transaction(con, "_frame_rows"):
        _create_like(con, table, "_frame_rows")
        con.execute(f"DELETE FROM {ML_SCHEMA}.{table}")
        con.execute(f"INSERT INTO {ML_SCHEMA}.{table} SELECT * FROM _frame_rows")
    return frame.height


def write_frame_partition(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pl.DataFrame,
    logical_date: date,
    *,
    keep_dates: int | None = 7,
) -> int:
    """Replace the rows of one logical date in ``ml.<table>`` (columns: the frame's).

    ``keep_dates`` most recent dates are kept (``None``: all).
    """
    dated = frame.select(pl.lit(logical_date, dtype=pl.Date).alias("logical_date"), pl.all())
    con.register("_frame_rows", dated.to_arrow())
    with transaction(con, "_frame_rows"):
        _create_like(con, table, "_frame_rows")
        con.execute(f"DELETE FROM {ML_SCHEMA}.{table} WHERE logical_date = ?", [logical_date])
        con.execute(f"INSERT INTO {ML_SCHEMA}.{table} SELECT * FROM _frame_rows")
        prune_dates(con, table, keep_dates)
    return frame.height


def read_partition(
    con: duckdb.DuckDBPyConnection, table: str, logical_date: date, *, before: bool = False
) -> pl.DataFrame | None:
    """The rows of the latest date on (or, with ``before``, strictly before) a date.

    ``None`` when the table or such a date does not exist. ``logical_date`` is dropped.
    """
    if not table_exists(con, ML_SCHEMA, table):
        return None
    bound = "<" if before else "<="
    latest = con.execute(
        f"SELECT max(logical_date) FROM {ML_SCHEMA}.{table} WHERE logical_date {bound} ?",
        [logical_date],
    ).fetchall()[0][0]
    if latest is None:
        return None
    return read_frame(
        con,
        f"SELECT * EXCLUDE (logical_date) FROM {ML_SCHEMA}.{table} WHERE logical_date = ?",
        [latest],
    )
