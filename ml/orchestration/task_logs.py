"""Task logs of ``affinity run`` runs, where the Airflow UI looks for them.

``airflow dags test`` runs the tasks inside its own process and prints their logs to its
output; it writes no task log file, so the UI said "Log file not found on worker" for every
task of such a run. ``affinity run`` keeps that output (the run's full log), and
:func:`write_task_logs` cuts it at the ``[DAG TEST] starting`` / ``[DAG TEST] end task``
lines ``dags test`` prints around each task, then writes each piece as JSON lines (what
Airflow 3's task handler writes and the UI reads) under ``$AIRFLOW_HOME/logs`` at the path
the run's log template names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from ml.orchestration.airflow_db import TaskState

_START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\S+) map_index=(?P<index>-?\d+)")
_END = re.compile(r"\[DAG TEST\] end task task_id=(?P<task>\S+) map_index=(?P<index>-?\d+)")
# structlog's console lines: "2026-11-27T11:30:14.807286Z [info     ] message [logger] k=v"
_CONSOLE = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?) \[(?P<level>\w+)\s*\] (?P<event>.*)$"
)
# The logger is the last "[name]" followed only by key=value pairs.
_LOGGER = re.compile(r"^(?P<event>.*) \[(?P<logger>[\w.]+)\](?P<rest>(?: [\w.]+=\S*)*)$")


@dataclass
class TaskSection:
    """The output lines of one attempt of one task."""

    task_id: str
    map_index: int
    lines: list[str] = field(default_factory=list)


def split_task_sections(lines: Iterable[str]) -> list[TaskSection]:
    """Cut ``dags test`` output into per-task sections, in the order the tasks ran.

    Lines outside any task (the DAG loop, parsing) belong to no section. A section whose
    end line never came (the run was killed) keeps what was printed.
    """
    sections: list[TaskSection] = []
    current: TaskSection | None = None
    for raw in lines:
        line = raw.rstrip("\n")
        started = _START.search(line)
        if started:
            current = TaskSection(started["task"], int(started["index"]), [line])
            sections.append(current)
            continue
        if current is None:
            continue
        current.lines.append(line)
        if _END.search(line):
            current = None
    return sections


def structured(lines: Iterable[str]) -> list[dict[str, str]]:
    """Console log lines as Airflow's JSON log records (``timestamp``, ``level``, ``event``).

    A line without a timestamp (dbt's output, a traceback) keeps the last timestamp seen,
    so the UI keeps it in place.
    """
    records: list[dict[str, str]] = []
    timestamp = ""
    for line in lines:
        match = _CONSOLE.match(line)
        if not match:
            records.append(
                {"timestamp": timestamp, "event": line} if timestamp else {"event": line}
            )
            continue
        timestamp = match["ts"]
        record = {"timestamp": timestamp, "level": match["level"].lower(), "event": match["event"]}
        named = _LOGGER.match(match["event"])
        if named:
            record["event"] = named["event"] + named["rest"]
            record["logger"] = named["logger"]
        records.append(record)
    return records


def render_log_path(template: str, dag_id: str, run_id: str, task: TaskState, attempt: int) -> str:
    """A task log's path relative to the logs folder, from the run's Jinja template."""
    import jinja2

    ti = SimpleNamespace(
        dag_id=dag_id,
        run_id=run_id,
        task_id=task.task_id,
        map_index=task.map_index,
        try_number=attempt,
    )
    return jinja2.Template(template).render(ti=ti, try_number=attempt)


def write_task_logs(
    output: Path,
    logs_dir: Path,
    template: str,
    dag_id: str,
    run_id: str,
    tasks: Iterable[TaskState],
) -> list[Path]:
    """Write each task's part of a ``dags test`` output file as its Airflow task log.

    Parameters
    ----------
    output : Path
        The run's full output (``$AFFINITY_HOME/logs/run-*.log``).
    logs_dir : Path
        Airflow's base log folder (``$AIRFLOW_HOME/logs``).
    template : str
        The run's log filename template (:func:`~ml.orchestration.airflow_db.log_filename_template`).
    dag_id, run_id : str
        The run.
    tasks : iterable of TaskState
        The run's task instances: their final ``try_number`` numbers the attempts (the
        last section of a task is its last attempt).

    Returns
    -------
    list of Path
        The files written.
    """
    with output.open(encoding="utf-8", errors="replace") as handle:
        sections = split_task_sections(handle)
    by_task: dict[tuple[str, int], list[TaskSection]] = {}
    for section in sections:
        by_task.setdefault((section.task_id, section.map_index), []).append(section)
    written = []
    for task in tasks:
        attempts = by_task.get((task.task_id, task.map_index), [])
        first = max(1, task.try_number - len(attempts) + 1)
        for number, section in enumerate(attempts, start=first):
            path = logs_dir / render_log_path(template, dag_id, run_id, task, number)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                "".join(json.dumps(r) + "\n" for r in structured(section.lines)), encoding="utf-8"
            )
            written.append(path)
    return written
