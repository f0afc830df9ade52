"""``pipeline_runs``: the history of published runs (row counts, checksums, stage timings).

The warehouse keeps it in ``ml.pipeline_runs``; every snapshot carries the history up to
and including its own run, so a snapshot says which run made it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from ml.pipeline import DAILY
from ml.warehouse.tables import ML_SCHEMA, ensure_table, table_exists

log = logging.getLogger(__name__)

PIPELINE_RUNS = "pipeline_runs"
# The published tables pipeline_runs gives their own row-count column (the rest are in
# the row_counts map).
COUNTED_TABLES = ("recommendations", "similar_products", "customer_segments", "customer_features")

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


def total_seconds(stage_seconds: Mapping[str, float]) -> float:
    """The run's duration: the sum over the declared stages (their sub-steps are inside)."""
    declared = {stage.name for stage in DAILY}
    return round(sum(s for name, s in stage_seconds.items() if name in declared), 3)


def model_of(con: duckdb.DuckDBPyConnection, logical_date: date) -> tuple[str | None, str | None]:
    """``(model_name, model_version)`` that scored the most rows of a date."""
    if not table_exists(con, ML_SCHEMA, "recommendations"):
        return None, None
    row = con.execute(
        f"SELECT model_name, model_version FROM {ML_SCHEMA}.recommendations "
        "WHERE logical_date = ? AND model_version IS NOT NULL "
        "GROUP BY ALL ORDER BY count(*) DESC, model_version DESC LIMIT 1",
        [logical_date],
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def write_pipeline_runs(
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
        insert_run(con, f"snapshot_new.main.{PIPELINE_RUNS}", run_row)
        con.execute("CHECKPOINT snapshot_new")
    finally:
        con.execute("DETACH snapshot_new")


def insert_run(con: duckdb.DuckDBPyConnection, relation: str, run_row: Mapping[str, Any]) -> None:
    """Insert one run row (maps sorted by key) into ``relation``."""
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


def append_run(con: duckdb.DuckDBPyConnection, run_row: Mapping[str, Any]) -> None:
    """Record a run whose snapshot is live in ``ml.pipeline_runs`` (replacing its id)."""
    con.execute(f"DELETE FROM {ML_SCHEMA}.{PIPELINE_RUNS} WHERE run_id = ?", [run_row["run_id"]])
    insert_run(con, f"{ML_SCHEMA}.{PIPELINE_RUNS}", run_row)


def record_unrecorded_runs(con: duckdb.DuckDBPyConnection, snapshot: Path) -> None:
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
