"""Server mode: `make airflow` serves the DAG, quietly, and stops cleanly on SIGINT to make."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

AFFINITY = str(Path(sys.executable).with_name("affinity"))
REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_json(url: str, *, data: dict | None = None, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_standalone_serves_the_dag_and_stops_on_sigint(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "AFFINITY_HOME": str(tmp_path / "home")}
    log = open(tmp_path / "standalone.log", "w")  # noqa: SIM115 - closed in finally below
    # Through make, as README says: a SIGINT to make alone must stop everything.
    server = subprocess.Popen(
        ["make", "-s", "airflow", f"ARGS=--port {port}"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the leftover check below
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        health = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = http_json(f"{base}/api/v2/monitor/health")
                if health["scheduler"]["status"] == "healthy":
                    break
            except OSError:
                pass
            time.sleep(2)
        assert health and health["metadatabase"]["status"] == "healthy", (
            tmp_path / "standalone.log"
        ).read_text()[-4000:]

        # Log in as the generated admin and find the DAG through the REST API.
        passwords = tmp_path / "home" / "airflow" / "simple_auth_manager_passwords.json.generated"
        username, password = next(iter(json.loads(passwords.read_text()).items()))
        token = http_json(f"{base}/auth/token", data={"username": username, "password": password})[
            "access_token"
        ]
        dag = None
        while time.monotonic() < deadline:
            try:
                dag = http_json(f"{base}/api/v2/dags/affinity_daily", token=token)
                break
            except urllib.error.HTTPError as exc:  # not parsed yet
                if exc.code != 404:
                    raise
                time.sleep(2)
        assert dag is not None and dag["dag_id"] == "affinity_daily"
        assert not dag["is_stale"]
    finally:
        # SIGINT to make only (not to its process group): make merely waits for its
        # children, so `affinity airflow` must notice and stop airflow standalone.
        os.kill(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=90)
        finally:
            stopped = time.monotonic() + 30
            while group_alive(server.pid) and time.monotonic() < stopped:
                time.sleep(1)
            leftovers = group_alive(server.pid)
            if leftovers:
                os.killpg(server.pid, signal.SIGKILL)
            log.close()
    assert not leftovers, "SIGINT left Airflow processes behind"
    output = (tmp_path / "standalone.log").read_text()
    # A local SQLite standalone bound to 127.0.0.1 is not mistaken for production.
    assert "deployment shape looks like production" not in output
    assert "SimpleAuthManager is active" not in output
