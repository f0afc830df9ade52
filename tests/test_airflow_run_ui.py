"""Runs made the way ``affinity run`` makes them look right in the Airflow UI.

A probe DAG runs through :func:`ml.orchestration.airflow.run_dag` (``airflow dags test``,
output to a run log, the metadata followed by :class:`~ml.orchestration.dag_watch.DagWatch`)
for a logical date years back, as a run on an old export does. Then ``airflow api-server``
serves the same metadata: the run's start must be when it ran (``dags test`` records the
logical date, apache/airflow#66127), and each task's log must be readable ("Log file not
found on worker" before). The stage line comes from the task's return value.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import urllib.parse
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_airflow_links import _login
from test_airflow_server import free_port, group_alive, http_json

from ml.config import paths
from ml.dates import utcnow
from ml.orchestration.airflow import airflow_env, run_dag
from ml.orchestration.dag_watch import DagWatch
from ml.orchestration.progress import ProgressPrinter
from ml.pipeline import Stage

pytestmark = pytest.mark.slow

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PROBE_DAG = "affinity_run_ui_probe"
LOGICAL_DATE = "2010-12-09"
PROBE_STAGES = (Stage("ingest", "probe", (), (), run="probe:ingest"),)

PROBE_DAG_SOURCE = textwrap.dedent(
    f'''
    """Probe DAG for tests/test_airflow_run_ui.py."""
    import logging
    from datetime import datetime

    from airflow.sdk import dag, task


    @dag(dag_id="{PROBE_DAG}", schedule=None, start_date=datetime(2000, 1, 1), catchup=False)
    def probe():
        @task(task_id="ingest")
        def ingest():
            logging.getLogger("ml.probe").warning("probe task says hello")
            return {{"received_rows": 12, "loaded_rows": 10, "quarantined_rows": 2, "rows": 10}}

        ingest()


    probe()
    '''
)


def test_a_dags_test_run_has_its_real_start_and_readable_task_logs(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "probe.py").write_text(PROBE_DAG_SOURCE)
    port = free_port()
    env = airflow_env(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AFFINITY_TASK_RETRIES": "0",
        }
    )
    home = paths()
    screen = io.StringIO()
    started = utcnow()
    watch = DagWatch(
        home.airflow_home,
        PROBE_DAG,
        started,
        ProgressPrinter(screen, PROBE_STAGES, live=False, clock=utcnow),
    )
    run_log = tmp_path / "run.log"
    with run_log.open("a") as output:
        run_dag(LOGICAL_DATE, {}, output=output, on_poll=watch.poll, dag_id=PROBE_DAG, env=env)
    state = watch.finish(run_log)
    finished = utcnow()

    assert state is not None and state.returns["ingest"]["received_rows"] == 12
    assert "12 rows received = 10 loaded + 2 quarantined" in screen.getvalue()
    assert "probe task says hello" in run_log.read_text()  # the full log keeps everything

    log = open(tmp_path / "api-server.log", "w")  # noqa: SIM115 - closed in finally below
    server = subprocess.Popen(
        [AIRFLOW, "api-server", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        token = _login(base, Path(env["AIRFLOW_HOME"]), server, tmp_path / "api-server.log")
        runs = http_json(f"{base}/api/v2/dags/{PROBE_DAG}/dagRuns", token=token)["dag_runs"]
        run_id = urllib.parse.quote(runs[0]["dag_run_id"], safe="")
        task_log = http_json(
            f"{base}/api/v2/dags/{PROBE_DAG}/dagRuns/{run_id}/taskInstances/ingest/logs/1",
            token=token,
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        finally:
            if group_alive(server.pid):
                os.killpg(server.pid, signal.SIGKILL)
            log.close()

    [run] = runs
    assert run["logical_date"].startswith(LOGICAL_DATE)
    start = datetime.fromisoformat(run["start_date"]).replace(tzinfo=None)
    end = datetime.fromisoformat(run["end_date"]).replace(tzinfo=None)
    assert started - timedelta(seconds=5) <= start <= end <= finished + timedelta(seconds=5)
    events = [entry.get("event", "") for entry in task_log["content"]]
    assert not any("Log file not found" in e for e in events), events
    hello = [e for e in task_log["content"] if "probe task says hello" in e.get("event", "")]
    assert hello and hello[0]["level"] == "warning" and hello[0]["logger"] == "ml.probe"
