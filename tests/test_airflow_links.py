"""The "MLflow run" button: the Airflow API server resolves the plugin's link from the XCom a task pushed.

A probe DAG runs two tasks with ``airflow dags test`` (the same metadata database the
API server reads): one pushes an MLflow link with the plugin's ``push_mlflow_link``, the
other pushes nothing. Then ``airflow api-server`` is started and the task-instance links
endpoint must return the URL for the first and no URL (no button) for the second.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
from pathlib import Path

import pytest
from test_airflow_server import free_port, group_alive, http_json

from ml.orchestration.airflow import airflow_env, ensure_airflow

pytestmark = pytest.mark.slow

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PROBE_DAG = "affinity_links_probe"
EXPERIMENT_ID, MLFLOW_RUN_ID = "7", "0123456789abcdef"
MLFLOW_UI = "http://mlflow.example.test:5000"

PROBE_DAG_SOURCE = textwrap.dedent(
    f'''
    """Probe DAG for tests/test_airflow_links.py: one task pushes the MLflow link."""
    from datetime import datetime

    from airflow.sdk import dag, task


    @dag(dag_id="{PROBE_DAG}", schedule=None, start_date=datetime(2000, 1, 1), catchup=False)
    def probe():
        @task
        def train(**context):
            from affinity_plugin import push_mlflow_link

            return push_mlflow_link(context, "{EXPERIMENT_ID}", "{MLFLOW_RUN_ID}")

        @task
        def score():
            return "no link pushed"

        train() >> score()


    probe()
    '''
)


def test_links_endpoint_returns_the_mlflow_run_url(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "probe.py").write_text(PROBE_DAG_SOURCE)
    port = free_port()
    env = airflow_env(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AFFINITY_MLFLOW_UI_URL": MLFLOW_UI,
            "AFFINITY_TASK_RETRIES": "0",
        },
        home=tmp_path / "home",
    )
    ensure_airflow(env)
    ran = subprocess.run(
        [AIRFLOW, "dags", "test", PROBE_DAG, "2026-01-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]

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
        assert len(runs) == 1 and runs[0]["state"] == "success", runs
        run_id = urllib.parse.quote(runs[0]["dag_run_id"], safe="")
        links = {
            task_id: http_json(
                f"{base}/api/v2/dags/{PROBE_DAG}/dagRuns/{run_id}/taskInstances/{task_id}/links",
                token=token,
            )["extra_links"]
            for task_id in ("train", "score")
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        finally:
            if group_alive(server.pid):
                os.killpg(server.pid, signal.SIGKILL)
            log.close()
    server_log = (tmp_path / "api-server.log").read_text()
    assert "SUPERVISOR_COMMS" not in server_log, server_log[-4000:]
    assert links["train"] == {
        "MLflow run": f"{MLFLOW_UI}/#/experiments/{EXPERIMENT_ID}/runs/{MLFLOW_RUN_ID}"
    }
    # A task that pushed no link gets no button (None), not an error.
    assert links["score"] == {"MLflow run": None}


def _login(base: str, airflow_home: Path, server: subprocess.Popen, log: Path) -> str:
    """Wait for the API server, then log in as the generated admin; return the token."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-4000:]
        try:
            http_json(f"{base}/api/v2/monitor/health")
            break
        except OSError:
            time.sleep(2)
    else:
        raise AssertionError("the API server did not answer in 240 s:\n" + log.read_text()[-4000:])
    passwords = airflow_home / "simple_auth_manager_passwords.json.generated"
    username, password = next(iter(json.loads(passwords.read_text()).items()))
    return http_json(f"{base}/auth/token", data={"username": username, "password": password})[
        "access_token"
    ]
