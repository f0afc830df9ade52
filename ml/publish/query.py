"""Reading the analyst snapshot (read-only, never holding it between calls)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ml.config import paths
from ml.warehouse import connect
from ml.warehouse.tables import read_frame


def query(sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
    """Run ``sql`` on the current analyst snapshot (read-only) and return the rows.

    Raises
    ------
    FileNotFoundError
        Nothing was published yet (run ``affinity publish``).
    """
    with connect(paths().snapshot, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def query_frame(sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """Like :func:`query`, returning a polars DataFrame (column names kept)."""
    with connect(paths().snapshot, read_only=True) as con:
        return read_frame(con, sql, params)


def table_checksum(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[int, str]:
    """Return ``(rows, checksum)`` of a table; the checksum ignores row order.

    The checksum is the sum of the row hashes (as HUGEINT), so equal multisets of rows give
    equal checksums whatever the physical order.
    """
    rows, checksum = con.execute(
        f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM {relation} AS t"
    ).fetchone()
    return int(rows), str(checksum)


def snapshot_checksums(path: Path | str | None = None) -> dict[str, str]:
    """Return ``{table: checksum}`` of a snapshot's tables (default: the current one)."""
    with connect(path or paths().snapshot, read_only=True) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY table_name"
        ).fetchall()
        return {name: table_checksum(con, name)[1] for (name,) in tables}
