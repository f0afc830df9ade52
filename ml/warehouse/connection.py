"""Connections to the DuckDB warehouse and the analyst snapshot.

DuckDB allows one read-write process or many read-only ones per file, and inside one
process every connection to a file must use the same configuration. Every Affinity
step therefore opens the warehouse through :func:`connect`, keeps the connection for the
step only and closes it, so dbt (which opens its own connection in the same Airflow
process) never meets a conflicting one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ml.config import duckdb_memory_limit, paths


@contextmanager
def connect(
    path: Path | str | None = None, *, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (or another DuckDB file), yield the connection, always close it.

    Parameters
    ----------
    path : path-like, optional
        DuckDB file; defaults to ``$AFFINITY_HOME/warehouse.duckdb``.
    read_only : bool
        Open read-only (many readers may share the file; no writer may).
    """
    target = Path(path) if path is not None else paths().warehouse
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    elif not target.exists():
        raise FileNotFoundError(
            f"{target} does not exist yet: run `affinity ingest` (or `affinity run`) first."
        )
    con = duckdb.connect(str(target), read_only=read_only)
    try:
        # Naive timestamps in the contract are UTC; make casts from TIMESTAMPTZ agree.
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET memory_limit = '{duckdb_memory_limit()}'")
        yield con
    finally:
        con.close()
