"""The analyst snapshot: one consistent, read-only DuckDB file swapped in atomically.

How a publish works
-------------------
1. Every table of the warehouse schema ``outputs`` (the dbt output marts) is copied, in a
   fixed row order, into a **new** file ``publish-work/.building-<run>.duckdb`` (in the
   home, on the snapshot's file system but outside the folder analysts browse, so a killed
   publish leaves nothing in ``published/``), together with ``pipeline_runs`` (all earlier runs plus this one, with
   row counts, checksums and stage timings).
2. The new file is **verified** through a fresh read-only connection: each table has the
   row count recorded in ``pipeline_runs``, and no table carries a PII column or an
   e-mail-like value. A file that fails is deleted; the current snapshot stays.
3. The current snapshot is hard-linked into ``published/history/`` (the previous
   ``keep`` snapshots stay for :func:`rollback`) and the new file is moved over
   ``published/affinity.duckdb`` with :func:`os.replace`, an atomic rename. Archived
   snapshots holding an erased customer are rewritten without them
   (:mod:`ml.publish.erasure`), so a rollback never brings one back.

Why readers never see a mix or a lock error: the published file is written once, before it
gets its name, and never opened read-write again. Analysts open it read-only (shared
locks only). A reader that opened the old file keeps its open descriptor on the old inode
until it disconnects; the next connection opens the new file. Nothing is ever written in
place.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from ml.config import paths
from ml.dates import to_date, utcnow
from ml.locking import PUBLISH_LOCK, acquire_lock
from ml.publish.durable import fsync_dir
from ml.publish.erasure import rewrite_snapshots
from ml.publish.privacy import privacy_problems
from ml.publish.query import table_checksum
from ml.publish.runs import (
    COUNTED_TABLES,
    PIPELINE_RUNS,
    append_run,
    model_of,
    record_unrecorded_runs,
    total_seconds,
    write_pipeline_runs,
)
from ml.warehouse import connect
from ml.warehouse.erasure import erased_customer_ids
from ml.warehouse.stage_log import stage_seconds as recorded_stage_seconds
from ml.warehouse.tables import ML_SCHEMA, table_exists

log = logging.getLogger(__name__)

OUTPUT_SCHEMA = "outputs"
HISTORY_DIR = "history"
# Published snapshots kept in published/history/ for rollback.
DEFAULT_KEEP_SNAPSHOTS = 3
# What publishes before publish-work/ existed left in published/ when killed.
LEFTOVER_PATTERNS = (".building-*.duckdb", ".building-*.duckdb.wal", ".rollback-*.duckdb")

# Row order of the published tables (keys first), so equal data gives equal files.
TABLE_ORDER = {
    "recommendations": "customer_id, rank",
    "similar_products": "product_id, rank",
    "customer_segments": "customer_id",
    "customer_features": "customer_id",
    "cluster_profiles": "cluster_id",
    "products": "product_id",
    "affinity_audiences": "category, rank",
    "campaign_audiences": "campaign_id, rank",
    "campaign_results": "campaign_id",
    "campaign_insights": "campaign_id, dimension, dimension_value",
    "review_sentiment": "review_id",
    "product_review_insights": "product_id",
}


class PublishError(RuntimeError):
    """The snapshot could not be built or failed verification; the current one stays."""


# --------------------------------------------------------------------------- publish


@dataclass
class PublishReport:
    """The outcome of one publish."""

    run_id: str
    logical_date: date
    snapshot: Path
    row_counts: dict[str, int]
    checksums: dict[str, str]
    stage_seconds: dict[str, float]
    seconds: float
    archived: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        counts = ", ".join(f"{name} {rows:,}" for name, rows in sorted(self.row_counts.items()))
        return (
            f"published run {self.run_id} ({self.logical_date}) to {self.snapshot} "
            f"in {self.seconds:.1f}s: {counts}"
        )


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]


def _output_tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
        "AND table_catalog = current_database() ORDER BY table_name",
        [schema],
    ).fetchall()
    return [name for (name,) in rows if name != PIPELINE_RUNS]


def _latest_scored_date(con: duckdb.DuckDBPyConnection) -> date:
    if not table_exists(con, ML_SCHEMA, "recommendations"):
        raise PublishError(
            "ml.recommendations does not exist: run `affinity score` before `affinity publish`."
        )
    (value,) = con.execute(f"SELECT max(logical_date) FROM {ML_SCHEMA}.recommendations").fetchall()[
        0
    ]
    if value is None:
        raise PublishError("ml.recommendations is empty: run `affinity score` first.")
    return value


def publish(
    logical_date: date | str | None = None,
    *,
    run_id: str | None = None,
    stage_seconds: Mapping[str, float] | None = None,
    keep: int = DEFAULT_KEEP_SNAPSHOTS,
    source_schema: str = OUTPUT_SCHEMA,
    started_at: datetime | None = None,
) -> PublishReport:
    """Build, verify and atomically swap in the analyst snapshot.

    Parameters
    ----------
    logical_date : date or str, optional
        The run's logical date (default: the latest date in ``ml.recommendations``).
    run_id : str, optional
        Identifier of the pipeline run (the Airflow run id); default a new UUID.
    stage_seconds : mapping of str to float, optional
        Durations of stages this module cannot see (ingest, dbt, train...). The ``ml``
        stages (score, similar, segments) are read from ``ml.stage_runs``.
    keep : int
        Previous snapshots kept in ``published/history/`` for :func:`rollback`.
    source_schema : str
        Warehouse schema whose tables are published (the dbt output marts).
    started_at : datetime, optional
        When the run started (naive UTC), recorded in ``pipeline_runs``.

    Returns
    -------
    PublishReport

    Raises
    ------
    PublishError
        Nothing to publish, or the new file failed verification (the current snapshot is
        left untouched).
    """
    started = time.perf_counter()
    home = paths().ensure()
    run_id = run_id or uuid.uuid4().hex
    building = home.publish_work / f".building-{_safe_name(run_id)}-{uuid.uuid4().hex[:8]}.duckdb"
    lock = acquire_lock(home.home / PUBLISH_LOCK, timeout=None, label="publish")
    try:
        _remove_leftovers(home.published, home.publish_work)
        home.publish_work.mkdir(parents=True, exist_ok=True)
        with connect() as con:
            record_unrecorded_runs(con, home.snapshot)
            # Right to be forgotten: the ingest that loaded the requests removed the
            # customers; the new snapshot is verified not to hold them.
            erased = erased_customer_ids(con)
            tables = _output_tables(con, source_schema)
            if not tables:
                raise PublishError(
                    f"the warehouse has no table in schema {source_schema!r}: build the output "
                    "marts first (`affinity score`, then dbt `build --select tag:outputs`)."
                )
            logical_date = (
                to_date(logical_date) if logical_date is not None else _latest_scored_date(con)
            )
            model_name, model_version = model_of(con, logical_date)
            timings = {**recorded_stage_seconds(con, logical_date), **dict(stage_seconds or {})}
            counts, checksums = _build_snapshot(con, building, source_schema, tables)
            timings["publish"] = round(time.perf_counter() - started, 3)
            run_row = {
                "run_id": run_id,
                "logical_date": logical_date,
                "model_name": model_name,
                "model_version": model_version,
                **{f"{t}_rows": counts.get(t) for t in COUNTED_TABLES},
                "row_counts": counts,
                "table_checksums": checksums,
                "stage_seconds": timings,
                "total_seconds": total_seconds(timings),
                "started_at": started_at,
                "finished_at": utcnow(),
            }
            write_pipeline_runs(con, building, run_row)
            _verify_snapshot(building, counts, run_id, erased)
            archived = _swap_in(building, home.published, keep)
            # A rollback must not bring an erased customer back.
            rewrite_snapshots(erased, list_snapshots(), locked=True)
            # Only a run whose snapshot is live is recorded in the warehouse history.
            append_run(con, run_row)
    finally:
        building.unlink(missing_ok=True)
        Path(f"{building}.wal").unlink(missing_ok=True)
        lock.release()
    seconds = time.perf_counter() - started
    report = PublishReport(
        run_id, logical_date, home.snapshot, counts, checksums, timings, seconds, archived
    )
    log.info("%s", report.summary())
    return report


def _build_snapshot(
    con: duckdb.DuckDBPyConnection, building: Path, schema: str, tables: Sequence[str]
) -> tuple[dict[str, int], dict[str, str]]:
    """Copy ``schema``'s tables into the new file; return row counts and checksums."""
    counts: dict[str, int] = {}
    checksums: dict[str, str] = {}
    con.execute(f"ATTACH '{building}' AS snapshot_new")
    try:
        for table in tables:
            order = TABLE_ORDER.get(table, "ALL")
            con.execute(
                f"CREATE TABLE snapshot_new.main.{table} AS "
                f"SELECT * FROM {schema}.{table} ORDER BY {order}"
            )
            counts[table], checksums[table] = table_checksum(con, f"snapshot_new.main.{table}")
            log.info("snapshot: %s %d rows", table, counts[table])
        con.execute("CHECKPOINT snapshot_new")
    finally:
        con.execute("DETACH snapshot_new")
    return counts, checksums


def _verify_snapshot(
    building: Path, counts: Mapping[str, int], run_id: str, erased: Sequence[str] = ()
) -> None:
    """Re-open the new file read-only and check counts, pipeline_runs, PII, erasures."""
    if Path(f"{building}.wal").exists():
        raise PublishError(f"{building} left a write-ahead log: the copy was not checkpointed")
    with connect(building, read_only=True) as snap:
        problems = []
        for table, expected in counts.items():
            actual = snap.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            if actual != expected:
                problems.append(f"{table}: {actual} rows, expected {expected}")
        latest = snap.execute(
            f"SELECT run_id, row_counts FROM {PIPELINE_RUNS} ORDER BY finished_at DESC LIMIT 1"
        ).fetchone()
        if latest is None or latest[0] != run_id or dict(latest[1]) != dict(counts):
            problems.append(f"{PIPELINE_RUNS} does not end with this run's row counts")
        problems += privacy_problems(snap, erased)
    if problems:
        raise PublishError("the new snapshot failed verification: " + "; ".join(problems))


def _remove_leftovers(published: Path, work: Path) -> None:
    """Delete what a killed publish, rollback or rewrite left behind (under the lock)."""
    leftovers = [p for pattern in LEFTOVER_PATTERNS for p in published.glob(pattern)]
    leftovers += list(work.glob(".*")) if work.is_dir() else []
    for leftover in leftovers:
        log.warning("removing %s, left by an interrupted publish", leftover.name)
        leftover.unlink(missing_ok=True)


def _swap_in(building: Path, published: Path, keep: int) -> list[Path]:
    """Archive the current snapshot (hard link), move the new one over it, prune history."""
    current = published / "affinity.duckdb"
    history = published / HISTORY_DIR
    history.mkdir(parents=True, exist_ok=True)
    archived: list[Path] = []
    if current.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = history / f"affinity-{stamp}.duckdb"
        try:
            os.link(current, target)  # same inode: free, and the file is never written again
        except OSError:
            shutil.copy2(current, target)
        archived.append(target)
    os.replace(building, current)
    fsync_dir(published)
    snapshots = sorted(history.glob("affinity-*.duckdb"))
    for old in snapshots[: max(0, len(snapshots) - keep)]:
        old.unlink()
    return archived


def list_snapshots() -> list[Path]:
    """Return the archived snapshots, oldest first."""
    return sorted((paths().published / HISTORY_DIR).glob("affinity-*.duckdb"))


def rollback(snapshot: Path | str | None = None) -> Path:
    """Put an archived snapshot back in place (default: the most recent one).

    The snapshot being replaced is archived first, so a rollback can itself be undone.

    Returns
    -------
    pathlib.Path
        The archived file that is now live.
    """
    published = paths().published
    candidates = list_snapshots()
    chosen = Path(snapshot) if snapshot is not None else (candidates[-1] if candidates else None)
    if chosen is None or not chosen.exists():
        raise FileNotFoundError(
            f"no archived snapshot to roll back to in {published / HISTORY_DIR}: "
            "publish at least twice first, or pass a file from list_snapshots()."
        )
    work = paths().publish_work
    work.mkdir(parents=True, exist_ok=True)
    staging = work / f".rollback-{uuid.uuid4().hex[:8]}.duckdb"
    lock = acquire_lock(paths().home / PUBLISH_LOCK, timeout=None, label="publish")
    try:
        os.link(chosen, staging)
        # keep + 1: the rolled-back-to file must not be pruned by its own rollback.
        _swap_in(staging, published, keep=len(candidates) + 1)
    finally:
        lock.release()
    log.info("rolled back the analyst snapshot to %s", chosen.name)
    return chosen
