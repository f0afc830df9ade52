"""Read (and, for one known Airflow bug, correct) the SQLite metadata of ``affinity run``.

``affinity run`` runs ``airflow dags test`` in a child process against
``$AFFINITY_HOME/airflow/airflow.db``. Its progress is read from there: the run, its task
instances (state, start, end) and the Python tasks' return values (XCom), all of which
Airflow records as the run goes. SQLite in WAL mode lets this process read while the child
writes.

:func:`fix_test_run_start` corrects ``dag_run.start_date``: ``airflow dags test`` records
the *logical date* as the run's start (apache/airflow#66127, open in 3.3), so the UI showed
the logical date as the start and the time since it as the duration. The real start is the
run's ``run_after``, which ``dags test`` sets to the wall clock when it creates the run.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# How Airflow stores timestamps in SQLite: naive UTC text.
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def to_sqlite_time(moment: datetime) -> str:
    """A naive-UTC datetime as Airflow's SQLite text (sorts like the time it stands for)."""
    return moment.strftime(_SQLITE_TIME)


def from_sqlite_time(text: str | None) -> datetime | None:
    """Airflow's SQLite timestamp text as a naive-UTC datetime (None stays None)."""
    if not text:
        return None
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class TaskState:
    """One task instance of a run, as the metadata database has it."""

    task_id: str
    state: str | None
    try_number: int
    map_index: int
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class RunState:
    """A DAG run with its task instances and the Python tasks' return values."""

    run_id: str
    state: str | None
    tasks: tuple[TaskState, ...]
    returns: dict[str, Any]


@contextmanager
def _read(db: Path) -> Iterator[sqlite3.Connection]:
    # Read-only and short: never hold a lock the running DAG needs.
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as con:
        yield con


def find_run(db: Path, dag_id: str, created_after: datetime) -> str | None:
    """The id of the newest run of ``dag_id`` created at or after ``created_after`` (UTC).

    None while ``airflow dags test`` has not created it yet (or the database is missing).
    """
    if not db.exists():
        return None
    try:
        with _read(db) as con:
            row = con.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? AND run_after >= ? "
                "ORDER BY id DESC LIMIT 1",
                [dag_id, to_sqlite_time(created_after)],
            ).fetchone()
    except sqlite3.OperationalError:  # tables not migrated yet, or briefly locked
        return None
    return row[0] if row else None


def read_run(db: Path, dag_id: str, run_id: str) -> RunState:
    """The run's state, its task instances and the return values pushed so far."""
    with _read(db) as con:
        state = con.execute(
            "SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", [dag_id, run_id]
        ).fetchone()
        tasks = tuple(
            TaskState(
                task_id,
                task_state,
                int(try_number or 0),
                int(map_index),
                from_sqlite_time(start),
                from_sqlite_time(end),
            )
            for task_id, task_state, try_number, map_index, start, end in con.execute(
                "SELECT task_id, state, try_number, map_index, start_date, end_date "
                "FROM task_instance WHERE dag_id = ? AND run_id = ? ORDER BY task_id, map_index",
                [dag_id, run_id],
            )
        )
        returns: dict[str, Any] = {}
        for task_id, value in con.execute(
            "SELECT task_id, value FROM xcom WHERE dag_id = ? AND run_id = ? "
            "AND key = 'return_value' AND map_index = -1",
            [dag_id, run_id],
        ):
            try:
                returns[task_id] = json.loads(value) if isinstance(value, str | bytes) else value
            except json.JSONDecodeError:
                returns[task_id] = value
    return RunState(run_id, state[0] if state else None, tasks, returns)


def log_filename_template(db: Path, dag_id: str, run_id: str) -> str:
    """The Jinja template of the run's task log paths (Airflow records it per run)."""
    with _read(db) as con:
        row = con.execute(
            "SELECT t.filename FROM dag_run r JOIN log_template t ON t.id = r.log_template_id "
            "WHERE r.dag_id = ? AND r.run_id = ?",
            [dag_id, run_id],
        ).fetchone()
    if not row:
        raise LookupError(f"no log template recorded for run {run_id} of {dag_id}")
    return row[0]


def fix_test_run_start(db: Path, dag_id: str, run_id: str) -> bool:
    """Set a ``dags test`` run's start to when it really started (its ``run_after``).

    Only a run whose recorded start is its logical date is changed (apache/airflow#66127);
    returns whether it was.
    """
    with closing(sqlite3.connect(db, timeout=30)) as con, con:
        changed = con.execute(
            "UPDATE dag_run SET start_date = run_after "
            "WHERE dag_id = ? AND run_id = ? AND triggered_by = 'TEST' "
            "AND run_after IS NOT NULL AND start_date = logical_date",
            [dag_id, run_id],
        ).rowcount
    return changed > 0
