"""Erasure in published snapshots: rewritten without the customers, never just deleted.

The live snapshot and every archived one in ``published/history/`` that holds a row of an
erased customer is rewritten: a new DuckDB file is built in ``publish-work/`` (outside the
folder analysts browse) with every table copied minus those rows, and renamed over the old
path atomically. Rows are copied into a fresh file rather than deleted in place, so no
byte of the erased rows survives in a free block of the old file. Each path is rewritten
on its own: a rollback hard-links an archive to the live name, and both names must lose
the customer.

The rewritten snapshot keeps its ``pipeline_runs`` history as published (row counts
included): its tables then hold fewer rows than recorded, by the erased customers' rows.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from ml.config import paths
from ml.locking import PUBLISH_LOCK, acquire_lock
from ml.publish.durable import fsync_dir
from ml.warehouse import connect
from ml.warehouse.erasure import erased_rows

log = logging.getLogger(__name__)

WORK_PREFIX = ".erasing-"


def _tables(con, catalog: str) -> list[str]:
    """Base tables of ``catalog``'s main schema (a snapshot holds nothing else)."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_type = 'BASE TABLE' AND table_catalog = ? ORDER BY 1",
        [catalog],
    ).fetchall()
    return [name for (name,) in rows]


def rewrite_without(snapshot: Path, customer_ids: Sequence[str], work_dir: Path) -> dict[str, int]:
    """Rewrite one snapshot file without the rows of ``customer_ids``; caller holds the lock.

    Returns
    -------
    dict of str to int
        ``{table: rows removed}``; empty (and the file untouched) when it held none.
    """
    ids = list(customer_ids)
    if not ids:
        return {}
    with connect(snapshot, read_only=True) as snap:
        holds = erased_rows(snap, ids)
    if not holds:
        return {}
    work_dir.mkdir(parents=True, exist_ok=True)
    rewritten = work_dir / f"{WORK_PREFIX}{uuid.uuid4().hex[:8]}.duckdb"
    try:
        with connect(rewritten) as con:
            con.execute(f"ATTACH '{snapshot}' AS old (READ_ONLY)")
            con.execute("CREATE OR REPLACE TEMP TABLE _erased AS SELECT unnest(?) AS id", [ids])
            for table in _tables(con, "old"):
                keep = (
                    "WHERE customer_id IS NULL OR customer_id NOT IN (SELECT id FROM _erased)"
                    if table in holds
                    else ""
                )
                # A plain scan keeps the table's row order (the snapshot's fixed order).
                con.execute(f'CREATE TABLE main."{table}" AS SELECT * FROM old."{table}" {keep}')
            con.execute("DETACH old")
            con.execute("CHECKPOINT")
        os.replace(rewritten, snapshot)
        fsync_dir(snapshot.parent)
    finally:
        rewritten.unlink(missing_ok=True)
        Path(f"{rewritten}.wal").unlink(missing_ok=True)
    log.warning("erasure: rewrote snapshot %s without %s", snapshot.name, holds)
    return holds


def snapshot_files() -> list[Path]:
    """The live snapshot (if any) and every archived one, oldest archive first."""
    published = paths().published
    files = sorted((published / "history").glob("affinity-*.duckdb"))
    live = published / "affinity.duckdb"
    return files + ([live] if live.exists() else [])


def rewrite_snapshots(
    customer_ids: Sequence[str], files: Sequence[Path] | None = None, *, locked: bool = False
) -> dict[Path, dict[str, int]]:
    """Rewrite every snapshot holding one of ``customer_ids`` (default: live and archived).

    Parameters
    ----------
    customer_ids : sequence of str
        The erased customers.
    files : sequence of Path, optional
        Snapshot files to check (default :func:`snapshot_files`).
    locked : bool
        The caller already holds the home's publish lock (a publish does); otherwise it is
        taken here, so no publish or rollback runs meanwhile.

    Returns
    -------
    dict
        ``{file: {table: rows removed}}`` of the files rewritten.
    """

    if not customer_ids:
        return {}
    home = paths()
    lock = None if locked else acquire_lock(home.home / PUBLISH_LOCK, timeout=None, label="publish")
    try:
        rewritten = {}
        for snapshot in files if files is not None else snapshot_files():
            removed = rewrite_without(snapshot, customer_ids, home.publish_work)
            if removed:
                rewritten[snapshot] = removed
        return rewritten
    finally:
        if lock is not None:
            lock.release()
