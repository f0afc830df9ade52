"""The stage log ``ml.stage_runs``: one row per (logical date, stage), replaced on re-run.

``pipeline_runs`` reads each published run's stage timings from here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import duckdb

from ml.dates import utcnow
from ml.warehouse.tables import ML_SCHEMA, ensure_table, table_exists

STAGE_RUNS_COLUMNS = {
    "logical_date": "DATE",
    "stage": "VARCHAR",
    "rows": "BIGINT",
    "seconds": "DOUBLE",
    "detail": "VARCHAR",
    "finished_at": "TIMESTAMP",
}


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
            utcnow(),
        ],
    )


def stage_seconds(con: duckdb.DuckDBPyConnection, logical_date: date) -> dict[str, float]:
    """``{stage: seconds}`` recorded for a logical date."""
    if not table_exists(con, ML_SCHEMA, "stage_runs"):
        return {}
    rows = con.execute(
        f"SELECT stage, seconds FROM {ML_SCHEMA}.stage_runs WHERE logical_date = ? ORDER BY stage",
        [logical_date],
    ).fetchall()
    return {stage: float(seconds) for stage, seconds in rows}


def run_started(con: duckdb.DuckDBPyConnection, logical_date: date) -> datetime | None:
    """When a date's run began: the start of its earliest recorded stage (naive UTC)."""
    if not table_exists(con, ML_SCHEMA, "stage_runs"):
        return None
    rows = con.execute(
        "SELECT min(finished_at - to_microseconds(cast(seconds * 1e6 as bigint))) "
        f"FROM {ML_SCHEMA}.stage_runs WHERE logical_date = ?",
        [logical_date],
    ).fetchall()
    return rows[0][0] if rows else None
