"""Follow an ``airflow dags test`` run from its metadata, then tidy what it left for the UI.

While the DAG runs, :meth:`DagWatch.poll` reads the run's task instances and return values
from Airflow's SQLite metadata and hands them to the progress printer; as soon as the run
exists it corrects the run's start (``dags test`` records the logical date,
apache/airflow#66127) to the moment ``dags test`` created it. Once the run has ended,
:meth:`DagWatch.finish` writes each task's log where the Airflow UI reads it (``dags test``
writes none), cut from the run's output.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from pathlib import Path

import jinja2

from ml.orchestration.airflow_db import (
    RunState,
    find_run,
    fix_test_run_start,
    log_filename_template,
    read_run,
)
from ml.orchestration.progress import ProgressPrinter
from ml.orchestration.task_logs import split_task_sections, write_task_logs

log = logging.getLogger(__name__)

FAILURE_TAIL_LINES = 15


class DagWatch:
    """One DAG run started by this process after ``started`` (naive UTC).

    Parameters
    ----------
    airflow_home : Path
        ``AIRFLOW_HOME`` of the run (``airflow.db``, ``logs/``).
    dag_id : str
        The DAG.
    started : datetime
        Naive-UTC time just before ``airflow dags test`` was started.
    printer : ProgressPrinter, optional
        Receives every state read.
    """

    def __init__(
        self,
        airflow_home: Path,
        dag_id: str,
        started: datetime,
        printer: ProgressPrinter | None = None,
    ):
        self.db = airflow_home / "airflow.db"
        self.logs_dir = airflow_home / "logs"
        self.dag_id = dag_id
        self.started = started
        self.printer = printer
        self.run_id: str | None = None
        self.state: RunState | None = None
        self._start_fixed = False

    def poll(self) -> RunState | None:
        """Read the run's current state (None until ``dags test`` has created the run)."""
        if self.run_id is None:
            self.run_id = find_run(self.db, self.dag_id, self.started)
            if self.run_id is None:
                return None
        if not self._start_fixed:
            # As soon as the run exists, so the UI shows its real start while it runs (dags
            # test reloads the run each loop and keeps a start it finds set).
            try:
                fix_test_run_start(self.db, self.dag_id, self.run_id)
                self._start_fixed = True
            except sqlite3.OperationalError as error:  # busy: next poll
                log.debug("run start not corrected yet: %s", error)
        try:
            self.state = read_run(self.db, self.dag_id, self.run_id)
        except sqlite3.OperationalError as error:  # busy for a moment: next poll
            log.debug("metadata not readable now: %s", error)
            return self.state
        if self.printer is not None:
            self.printer.update(self.state)
        return self.state

    def finish(self, output: Path | None) -> RunState | None:
        """Last read; correct the run's start; write the task logs from ``output``.

        Never raises: tidying what the UI shows must not fail (or hide the failure of) a run.
        """
        try:
            state = self.poll()
            if self.run_id is None:
                return None
            if fix_test_run_start(self.db, self.dag_id, self.run_id):
                log.info("run %s: start corrected to its real start (run_after)", self.run_id)
            if output is not None and state is not None:
                template = log_filename_template(self.db, self.dag_id, self.run_id)
                written = write_task_logs(
                    output, self.logs_dir, template, self.dag_id, self.run_id, state.tasks
                )
                log.info("wrote %d task logs under %s", len(written), self.logs_dir)
        except (sqlite3.Error, OSError, LookupError, ValueError, jinja2.TemplateError) as error:
            log.warning("could not tidy run %s for the Airflow UI: %s", self.run_id, error)
        return self.state

    def failure_detail(self, output: Path | None) -> str:
        """The failed tasks and the last lines of each one's log (for the error message)."""
        if self.state is None:
            return ""
        failed = [t.task_id for t in self.state.tasks if t.state == "failed"]
        if not failed:
            return ""
        lines = [f"failed task(s): {', '.join(failed)}"]
        if output is not None:
            with output.open(encoding="utf-8", errors="replace") as handle:
                sections = split_task_sections(handle)
            for task_id in failed:
                own = [s for s in sections if s.task_id == task_id]
                if own:
                    lines.append(f"last lines of {task_id}'s log:")
                    lines += ["  " + line for line in own[-1].lines[-FAILURE_TAIL_LINES:]]
        return "\n".join(lines)
