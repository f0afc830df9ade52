"""The analyst snapshot: one consistent, read-only DuckDB file swapped in atomically.

Also the bookkeeping every output stage shares: idempotent writes of the warehouse ``ml``
schema (:func:`write_partition`) and the stage log (:func:`record_stage`) that
``pipeline_runs`` reads its timings from.

How a publish works
-------------------
1. Every table of the warehouse schema ``outputs`` (the dbt output marts) is copied, in a
   fixed row order, into a **new** file ``published/.building-<run>.duckdb`` beside the
   current snapshot, together with ``pipeline_runs`` (all earlier runs plus this one, with
   row counts, checksums and stage timings).
2. The new file is **verified** through a fresh read-only connection: each table has the
   row count recorded in ``pipeline_runs``, and no table carries a PII column or an
   e-mail-like value. A file that fails is deleted; the current snapshot stays.
3. The current snapshot is hard-linked into ``published/history/`` (the previous
   ``keep`` snapshots stay for :func:`rollback`) and the new file is moved over
   ``published/affinity.duckdb`` with :func:`os.replace`, an atomic rename.

Why readers never see a mix or a lock error: the published file is written once, before it
gets its name, and never opened read-write again. Analysts open it read-only (shared
locks only). A reader that opened the old file keeps its open descriptor on the old inode
until it disconnects; the next connection opens the new file. Nothing is ever written in
place.
"""

from __future__ import annotations

import json
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
from typing import Any

import duckdb
import polars as pl

from ml.config import paths
from ml.contract import ENTITIES
from ml.locking import acquire_lock
from ml.warehouse import connect

log = logging.getLogger(__name__)

ML_SCHEMA = "ml"
OUTPUT_SCHEMA = "outputs"
PIPELINE_RUNS = "pipeline_runs"
HISTORY_DIR = "history"
# Dated ml.* tables keep this many logical dates (older ones are pruned on write).
DEFAULT_KEEP_DATES = 3
# Published snapshots kept in published/history/ for rollback.
DEFAULT_KEEP_SNAPSHOTS = 3
# One publish (or rollback) at a time per home; under it, files a killed publish left in
# published/ are removed. In the home, not in published/: analysts see only snapshots there.
PUBLISH_LOCK = "publish.lock"
LEFTOVER_PATTERNS = (".building-*.duckdb", ".building-*.duckdb.wal", ".rollback-*.duckdb")

# Row order of the published tables (keys first), so equal data gives equal files.
TABLE_ORDER = {
    "recommendations": "customer_id, rank",
    "similar_products": "product_id, rank",
    "customer_segments": "customer_id",
    "customer_features": "customer_id",
    "cluster_profiles": "cluster_id",
    "affinity_audiences": "category, rank",
    "campaign_audiences": "campaign_id, rank",
    "campaign_results": "campaign_id",
    "campaign_insights": "campaign_id, dimension, dimension_value",
}
# The published tables pipeline_runs gives their own row-count column (the rest are in
# the row_counts map).
COUNTED_TABLES = ("recommendations", "similar_products", "customer_segments", "customer_features")

PII_COLUMNS = frozenset(
    column.name for entity in ENTITIES.values() for column in entity.columns if column.pii
)
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"

PIPELINE_RUNS_COLUMNS = {
    "run_id": "VARCHAR",
    "logical_date": "DATE",
    "model_version": "VARCHAR",
    "model_name": "VARCHAR",
    **{f"{table}_rows": "BIGINT" for table in COUNTED_TABLES},
    "row_counts": "MAP(VARCHAR, BIGINT)",
    "table_checksums": "MAP(VARCHAR, VARCHAR)",
    "stage_seconds": "MAP(VARCHAR, DOUBLE)",
    "total_seconds": "DOUBLE",
    "started_at": "TIMESTAMP",
    "finished_at": "TIMESTAMP",
}

STAGE_RUNS_COLUMNS = {
    "logical_date": "DATE",
    "stage": "VARCHAR",
    "rows": "BIGINT",
    "seconds": "DOUBLE",
    "detail": "VARCHAR",
    "finished_at": "TIMESTAMP",
}


class PublishError(RuntimeError):
    """The snapshot could not be built or failed verification; the current one stays."""


# --------------------------------------------------------------------------- ml schema


def _table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return dict(rows)


def ensure_table(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, columns: Mapping[str, str]
) -> None:
    """Create ``schema.table`` with ``columns``; recreate it when its columns changed.

    A table written by an older version of the code (other columns) is dropped: the ``ml``
    schema holds derived data only, rebuilt by the next run.
    """
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    existing = _table_columns(con, schema, table)
    if existing and list(existing) != list(columns):
        log.warning("%s.%s has other columns than this code writes: recreating it", schema, table)
        con.execute(f"DROP TABLE {schema}.{table}")
        existing = {}
    if not existing:
        ddl = ", ".join(f"{name} {dtype}" for name, dtype in columns.items())
        con.execute(f"CREATE TABLE {schema}.{table} ({ddl})")


def write_partition(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pl.DataFrame,
    logical_date: date,
    *,
    columns: Mapping[str, str],
    order_by: str,
    keep_dates: int | None = DEFAULT_KEEP_DATES,
) -> int:
    """Replace the rows of one logical date in ``ml.<table>`` (idempotent).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Read-write warehouse connection (from :func:`ml.warehouse.connect`).
    table : str
        Table name in the ``ml`` schema.
    frame : polars.DataFrame
        The rows, with every column of ``columns`` except ``logical_date``.
    logical_date : datetime.date
        The run's logical date: rows of that date are replaced, never appended twice.
    columns : mapping of str to str
        Column name to DuckDB type, ``logical_date DATE`` first.
    order_by : str
        SQL ordering of the inserted rows (deterministic physical order).
    keep_dates : int or None
        Keep only this many most recent logical dates (``None`` keeps all).

    Returns
    -------
    int
        Rows written.
    """
    ensure_table(con, ML_SCHEMA, table, columns)
    names = [name for name in columns if name != "logical_date"]
    casts = ", ".join(f"CAST({name} AS {columns[name]}) AS {name}" for name in names)
    arrow = frame.select(names).to_arrow()
    con.register("_partition_rows", arrow)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(f"DELETE FROM {ML_SCHEMA}.{table} WHERE logical_date = ?", [logical_date])
        con.execute(
            f"INSERT INTO {ML_SCHEMA}.{table} SELECT CAST(? AS DATE) AS logical_date, {casts} "
            f"FROM _partition_rows ORDER BY {order_by}",
            [logical_date],
        )
        if keep_dates is not None:
            con.execute(
                f"DELETE FROM {ML_SCHEMA}.{table} WHERE logical_date NOT IN ("
                f"SELECT DISTINCT logical_date FROM {ML_SCHEMA}.{table} "
                f"ORDER BY logical_date DESC LIMIT {int(keep_dates)})"
            )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_partition_rows")
    return frame.height


def read_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> pl.DataFrame:
    """Run a query and return its result as a polars DataFrame (through Arrow)."""
    frame = pl.from_arrow(con.sql(sql, params=params or None).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def record_stage(
    con: duckdb.DuckDBPyConnection,
    logical_date: date,
    stage: str,
    *,
    rows: int,
    seconds: float,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Record (replace) one stage's row count and duration in ``ml.stage_runs``."""
    ensure_table(con, ML_SCHEMA, "stage_runs", STAGE_RUNS_COLUMNS)
    con.execute(
        f"DELETE FROM {ML_SCHEMA}.stage_runs WHERE logical_date = ? AND stage = ?",
        [logical_date, stage],
    )
    con.execute(
        f"INSERT INTO {ML_SCHEMA}.stage_runs VALUES (?, ?, ?, ?, ?, ?)",
        [
            logical_date,
            stage,
            int(rows),
            float(seconds),
            json.dumps(dict(detail or {}), sort_keys=True, default=str),
            _utcnow(),
        ],
    )


def _utcnow() -> datetime:
    # Naive UTC, like every timestamp of the contract.
    return datetime.now(UTC).replace(tzinfo=None)


def to_date(value: date | datetime | str) -> date:
    """Return a ``date`` from a date, datetime or ``YYYY-MM-DD...`` string."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


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
    if not _table_columns(con, ML_SCHEMA, "recommendations"):
        raise PublishError(
            "ml.recommendations does not exist: run `affinity score` before `affinity publish`."
        )
    value = con.execute(f"SELECT max(logical_date) FROM {ML_SCHEMA}.recommendations").fetchone()[0]
    if value is None:
        raise PublishError("ml.recommendations is empty: run `affinity score` first.")
    return value


def _model_of(con: duckdb.DuckDBPyConnection, logical_date: date) -> tuple[str | None, str | None]:
    if not _table_columns(con, ML_SCHEMA, "recommendations"):
        return None, None
    row = con.execute(
        f"SELECT model_name, model_version FROM {ML_SCHEMA}.recommendations "
        "WHERE logical_date = ? AND model_version IS NOT NULL "
        "GROUP BY ALL ORDER BY count(*) DESC, model_version DESC LIMIT 1",
        [logical_date],
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def _stage_seconds(con: duckdb.DuckDBPyConnection, logical_date: date) -> dict[str, float]:
    if not _table_columns(con, ML_SCHEMA, "stage_runs"):
        return {}
    rows = con.execute(
        f"SELECT stage, seconds FROM {ML_SCHEMA}.stage_runs WHERE logical_date = ? ORDER BY stage",
        [logical_date],
    ).fetchall()
    return {stage: float(seconds) for stage, seconds in rows}


def table_checksum(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[int, str]:
    """Return ``(rows, checksum)`` of a table; the checksum ignores row order.

    The checksum is the sum of the row hashes (as HUGEINT), so equal multisets of rows give
    equal checksums whatever the physical order.
    """
    rows, checksum = con.execute(
        f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM {relation} AS t"
    ).fetchone()
    return int(rows), str(checksum)


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
    building = home.published / f".building-{_safe_name(run_id)}-{uuid.uuid4().hex[:8]}.duckdb"
    lock = acquire_lock(home.home / PUBLISH_LOCK, timeout=None, label="publish")
    try:
        _remove_leftovers(home.published)
        with connect() as con:
            _record_unrecorded_runs(con, home.snapshot)
            # Right to be forgotten: erased customers leave the ml outputs before anything
            # is copied, and the new snapshot is verified not to hold them.
            erased = erased_customer_ids(con)
            erase_customers(con, erased)
            tables = _output_tables(con, source_schema)
            if not tables:
                raise PublishError(
                    f"the warehouse has no table in schema {source_schema!r}: build the output "
                    "marts first (`affinity score`, then dbt `build --select tag:outputs`)."
                )
            logical_date = (
                to_date(logical_date) if logical_date is not None else _latest_scored_date(con)
            )
            model_name, model_version = _model_of(con, logical_date)
            timings = {**_stage_seconds(con, logical_date), **dict(stage_seconds or {})}
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
                "total_seconds": round(sum(timings.values()), 3),
                "started_at": started_at,
                "finished_at": _utcnow(),
            }
            _write_pipeline_runs(con, building, run_row)
            _verify_snapshot(building, counts, run_id, erased)
            archived = _swap_in(building, home.published, keep)
            # A rollback must not bring an erased customer back.
            purged = purge_erased_history(erased)
            archived = [path for path in archived if path not in purged]
            # Only a run whose snapshot is live is recorded in the warehouse history.
            _append_run(con, run_row)
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


def _write_pipeline_runs(
    con: duckdb.DuckDBPyConnection, building: Path, run_row: Mapping[str, Any]
) -> None:
    """Write the run history plus this run into the new file's ``pipeline_runs``."""
    ensure_table(con, ML_SCHEMA, PIPELINE_RUNS, PIPELINE_RUNS_COLUMNS)
    con.execute(f"ATTACH '{building}' AS snapshot_new")
    try:
        ddl = ", ".join(f"{name} {dtype}" for name, dtype in PIPELINE_RUNS_COLUMNS.items())
        con.execute(f"CREATE TABLE snapshot_new.main.{PIPELINE_RUNS} ({ddl})")
        con.execute(
            f"INSERT INTO snapshot_new.main.{PIPELINE_RUNS} SELECT * FROM {ML_SCHEMA}.{PIPELINE_RUNS} "
            "WHERE run_id <> ? ORDER BY finished_at, run_id",
            [run_row["run_id"]],
        )
        _insert_run(con, f"snapshot_new.main.{PIPELINE_RUNS}", run_row)
        con.execute("CHECKPOINT snapshot_new")
    finally:
        con.execute("DETACH snapshot_new")


def _insert_run(con: duckdb.DuckDBPyConnection, relation: str, run_row: Mapping[str, Any]) -> None:
    values = []
    params: list[Any] = []
    for name, dtype in PIPELINE_RUNS_COLUMNS.items():
        value = run_row[name]
        if dtype.startswith("MAP"):
            keys = sorted(value)
            values.append(f"CAST(map(?, ?) AS {dtype})")
            params += [keys, [value[k] for k in keys]]
        else:
            values.append(f"CAST(? AS {dtype})")
            params.append(value)
    con.execute(f"INSERT INTO {relation} VALUES ({', '.join(values)})", params)


def _append_run(con: duckdb.DuckDBPyConnection, run_row: Mapping[str, Any]) -> None:
    con.execute(f"DELETE FROM {ML_SCHEMA}.{PIPELINE_RUNS} WHERE run_id = ?", [run_row["run_id"]])
    _insert_run(con, f"{ML_SCHEMA}.{PIPELINE_RUNS}", run_row)


def find_pii(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Return the problems of PII kind in every table of a connection's main schema.

    A column named like a PII column of the input contract (``email``, ``first_name``), or
    a text value that looks like an e-mail address, is a problem.
    """
    problems = []
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_catalog = current_database() ORDER BY table_name"
    ).fetchall()
    for (table,) in tables:
        for column, dtype in _table_columns(con, "main", table).items():
            if column.lower() in PII_COLUMNS:
                problems.append(f"{table}.{column} is a PII column")
            if dtype == "VARCHAR":
                hits = con.execute(
                    f"SELECT count(*) FROM {table} WHERE contains(\"{column}\", '@') "
                    f"AND regexp_matches(\"{column}\", '{EMAIL_PATTERN}')"
                ).fetchone()[0]
                if hits:
                    problems.append(f"{table}.{column} holds {hits} e-mail-like value(s)")
    return problems


def _verify_snapshot(
    building: Path, counts: Mapping[str, int], run_id: str, erased: Sequence[str] = ()
) -> None:
    """Re-open the new file read-only and check counts, pipeline_runs, PII, erasures."""
    if Path(f"{building}.wal").exists():
        raise PublishError(f"{building} left a write-ahead log: the copy was not checkpointed")
    with connect(building, read_only=True) as snap:
        problems = []
        for table, expected in counts.items():
            actual = snap.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            if actual != expected:
                problems.append(f"{table}: {actual} rows, expected {expected}")
        latest = snap.execute(
            f"SELECT run_id, row_counts FROM {PIPELINE_RUNS} ORDER BY finished_at DESC LIMIT 1"
        ).fetchone()
        if latest is None or latest[0] != run_id or dict(latest[1]) != dict(counts):
            problems.append(f"{PIPELINE_RUNS} does not end with this run's row counts")
        problems += find_pii(snap)
        problems += [
            f"{table} holds {rows} row(s) of erased customers"
            for table, rows in erased_rows(snap, erased).items()
        ]
    if problems:
        raise PublishError("the new snapshot failed verification: " + "; ".join(problems))


# --------------------------------------------------------------------------- erasure


def erased_customer_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Customer ids with an erasure request in ``raw.erasure_requests`` (sorted)."""
    if not _table_columns(con, "raw", "erasure_requests"):
        return []
    rows = con.execute(
        "SELECT DISTINCT trim(customer_id) FROM raw.erasure_requests "
        "WHERE customer_id IS NOT NULL ORDER BY 1"
    ).fetchall()
    return [customer_id for (customer_id,) in rows]


def _customer_tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = ? "
        "AND column_name = 'customer_id' AND table_catalog = current_database() ORDER BY 1",
        [schema],
    ).fetchall()
    return [name for (name,) in rows]


def erased_rows(
    con: duckdb.DuckDBPyConnection, customer_ids: Sequence[str], schema: str = "main"
) -> dict[str, int]:
    """``{table: rows}`` of ``schema``'s tables that still hold one of ``customer_ids``."""
    found = {}
    if not customer_ids:
        return found
    for table in _customer_tables(con, schema):
        rows = con.execute(
            f"SELECT count(*) FROM {schema}.{table} WHERE customer_id IN (SELECT unnest(?))",
            [list(customer_ids)],
        ).fetchone()[0]
        if rows:
            found[table] = rows
    return found


def erase_customers(con: duckdb.DuckDBPyConnection, customer_ids: Sequence[str]) -> dict[str, int]:
    """Delete the rows of ``customer_ids`` from every ``ml`` table with a ``customer_id``.

    The dbt models drop erased customers from staging on; this removes them from the
    Python steps' outputs of earlier logical dates too. Returns ``{table: rows deleted}``.
    """
    deleted = {}
    for table in erased_rows(con, customer_ids, ML_SCHEMA):
        deleted[table] = con.execute(
            f"DELETE FROM {ML_SCHEMA}.{table} WHERE customer_id IN (SELECT unnest(?))",
            [list(customer_ids)],
        ).fetchone()[0]
    if deleted:
        log.info("erasure: deleted %s from the ml schema", deleted)
    return deleted


def purge_erased_history(customer_ids: Sequence[str]) -> list[Path]:
    """Delete archived snapshots that hold an erased customer; return the deleted files.

    Rolling back to such a snapshot would publish the customer again.
    """
    removed: list[Path] = []
    if not customer_ids:
        return removed
    for snapshot in list_snapshots():
        with connect(snapshot, read_only=True) as snap:
            holds = erased_rows(snap, customer_ids)
        if holds:
            snapshot.unlink()
            removed.append(snapshot)
            log.warning("erasure: removed archived snapshot %s (it held %s)", snapshot.name, holds)
    return removed


def _record_unrecorded_runs(con: duckdb.DuckDBPyConnection, snapshot: Path) -> None:
    """Add to ``ml.pipeline_runs`` the runs of the live snapshot it does not have.

    A publish killed between its rename and its bookkeeping left a live snapshot (analysts
    read it) whose run is missing from the history; the snapshot itself records it.
    """
    if not snapshot.exists():
        return
    ensure_table(con, ML_SCHEMA, PIPELINE_RUNS, PIPELINE_RUNS_COLUMNS)
    names = ", ".join(PIPELINE_RUNS_COLUMNS)
    con.execute(f"ATTACH '{snapshot}' AS snapshot_live (READ_ONLY)")
    try:
        try:
            missing = con.execute(
                f"SELECT {names} FROM snapshot_live.main.{PIPELINE_RUNS} WHERE run_id NOT IN "
                f"(SELECT run_id FROM {ML_SCHEMA}.{PIPELINE_RUNS}) ORDER BY finished_at"
            ).fetchall()
        except duckdb.Error as exc:  # a snapshot of an older layout: nothing to recover
            log.warning("cannot read the run history of %s: %s", snapshot, exc)
            return
        if missing:
            con.execute(
                f"INSERT INTO {ML_SCHEMA}.{PIPELINE_RUNS} ({names}) "
                f"SELECT {names} FROM snapshot_live.main.{PIPELINE_RUNS} WHERE run_id NOT IN "
                f"(SELECT run_id FROM {ML_SCHEMA}.{PIPELINE_RUNS})"
            )
            log.warning(
                "recorded run(s) %s: their snapshot was published, their bookkeeping "
                "was interrupted",
                ", ".join(str(row[0]) for row in missing),
            )
    finally:
        con.execute("DETACH snapshot_live")


def _remove_leftovers(published: Path) -> None:
    """Delete files a killed publish or rollback left in ``published/`` (under the lock)."""
    for pattern in LEFTOVER_PATTERNS:
        for leftover in published.glob(pattern):
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
    _fsync_dir(published)
    snapshots = sorted(history.glob("affinity-*.duckdb"))
    for old in snapshots[: max(0, len(snapshots) - keep)]:
        old.unlink()
    return archived


def _fsync_dir(directory: Path) -> None:
    # Make the rename durable (a crash right after must not bring back the old name).
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    staging = published / f".rollback-{uuid.uuid4().hex[:8]}.duckdb"
    lock = acquire_lock(paths().home / PUBLISH_LOCK, timeout=None, label="publish")
    try:
        os.link(chosen, staging)
        # keep + 1: the rolled-back-to file must not be pruned by its own rollback.
        _swap_in(staging, published, keep=len(candidates) + 1)
    finally:
        lock.release()
    log.info("rolled back the analyst snapshot to %s", chosen.name)
    return chosen


# --------------------------------------------------------------------------- analysts


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


def snapshot_checksums(path: Path | str | None = None) -> dict[str, str]:
    """Return ``{table: checksum}`` of a snapshot's tables (default: the current one)."""
    with connect(path or paths().snapshot, read_only=True) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY table_name"
        ).fetchall()
        return {name: table_checksum(con, name)[1] for (name,) in tables}


def build_outputs(logical_date: date | str | None = None) -> None:
    """Build (and test) the dbt output marts of ``dbt_project/models/outputs``.

    Runs ``dbt build --select tag:outputs`` as of ``logical_date``; call it after the ML
    steps (score, similar, segments) and before :func:`publish`.
    """
    from ml.transform import run_dbt

    as_of = to_date(logical_date).isoformat() if logical_date is not None else None
    run_dbt(["build", "--select", "tag:outputs"], as_of=as_of)
