"""Reading the published snapshot from a long-running server without ever holding it.

A publish swaps ``published/affinity.duckdb`` for a new file with an atomic rename (see
:mod:`ml.publish`). The dashboard therefore opens the file read-only for one page's
queries at a time and closes it straight after: it never keeps a descriptor that would
pin an old snapshot, and it never takes a lock a publish would wait for. Each page reads
all its figures through one connection, so a page never mixes two snapshots.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ml.config import paths
from ml.warehouse import connect


@dataclass(frozen=True)
class SnapshotVersion:
    """Identity of one published file: a publish always makes a new inode."""

    path: str
    inode: int
    mtime_ns: int
    size: int

    @property
    def key(self) -> str:
        """A cache key that changes whenever a publish (or rollback) swaps the file."""
        return f"{self.inode}:{self.mtime_ns}:{self.size}"


def snapshot_path() -> Path:
    """The analyst snapshot of the current ``AFFINITY_HOME``."""
    return paths().snapshot


def snapshot_version(path: Path | str | None = None) -> SnapshotVersion | None:
    """The current snapshot's identity, or None when nothing was published yet."""
    target = Path(path) if path is not None else snapshot_path()
    try:
        stat = os.stat(target)
    except FileNotFoundError:
        return None
    return SnapshotVersion(str(target), stat.st_ino, stat.st_mtime_ns, stat.st_size)


@contextmanager
def open_snapshot(path: Path | str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the snapshot read-only for a few queries; always close it.

    Raises
    ------
    FileNotFoundError
        Nothing was published yet (run ``affinity run``).
    """
    with connect(Path(path) if path is not None else snapshot_path(), read_only=True) as con:
        yield con


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the snapshot has a table ``name`` (optional tables come with later features)."""
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_name = ?",
            [name],
        ).fetchall()[0][0]
    )


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    """Run a query and return a pandas DataFrame (what Streamlit and Altair draw)."""
    return con.execute(sql, params or []).df()
