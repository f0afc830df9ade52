"""Writers outside the lock (issue 19, finding 3): every writing command takes the run lock.

``affinity ingest``, ``build-features``, ``train``, ``score``, ``campaigns``, ``publish``
and ``measure`` are refused while another process holds the home's run lock, with the
refusal ``affinity run`` gives, before they write anything. A run's own stages go ahead:
in the holder's process, in a child it passed the descriptor to (the DAG process of
``affinity run``), and in a process below the holder that did not get the descriptor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ml.locking import LOCK_FD_ENV, RunLockedError, run_lock, writer_lock
from ml.orchestration.runner import run_stage
from ml.pipeline import RunContext

REPO_ROOT = Path(__file__).resolve().parents[1]
AFFINITY = str(Path(sys.executable).with_name("affinity"))
AS_OF = "2026-02-28"

HOLDER = r"""
import sys, time
from ml.locking import acquire_run_lock
lock = acquire_run_lock(sys.argv[1], purpose="affinity run (test holder)")
print("LOCKED", flush=True)
time.sleep(float(sys.argv[2]))
"""

WRITING_COMMANDS = {
    "ingest": ["ingest", "{landing}"],
    "build-features": ["build-features", "--as-of", AS_OF],
    "train": ["train", "--as-of", AS_OF],
    "score": ["score", "--as-of", AS_OF],
    "campaigns": ["campaigns", "--as-of", AS_OF],
    "publish": ["publish", "--as-of", AS_OF],
    "measure": ["measure", "--as-of", AS_OF, "--publish"],
}


def write_landing(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "products.csv").write_text("product_id,name,price\nP1,Mug,3.5\n")
    return folder


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in (LOCK_FD_ENV, "AFFINITY_RUN_LOCK_TIMEOUT")
    }
    return {**env, "AFFINITY_HOME": str(home), **extra}


@pytest.fixture
def holder(affinity_home: Path):
    """Another process holding the home's run lock (like a running ``affinity run``)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(affinity_home), "300"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert process.stdout.readline().strip() == "LOCKED"
    yield process
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize("command", sorted(WRITING_COMMANDS))
def test_a_writing_command_is_refused_while_another_process_holds_the_home(
    command: str, holder: subprocess.Popen, affinity_home: Path, tmp_path: Path
) -> None:
    landing = write_landing(tmp_path / "landing")
    argv = [arg.format(landing=landing) for arg in WRITING_COMMANDS[command]]
    done = subprocess.run(
        [AFFINITY, *argv],
        env=env_for(affinity_home),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    message = done.stderr
    assert "another Affinity run holds" in message, message
    assert f"pid {holder.pid}" in message and "affinity run (test holder)" in message
    assert "AFFINITY_RUN_LOCK_TIMEOUT" in message
    # Refused before writing: the warehouse was not even created.
    assert not (affinity_home / "warehouse.duckdb").exists()


def test_the_holder_and_the_processes_it_starts_go_ahead(
    affinity_home: Path, tmp_path: Path
) -> None:
    landing = write_landing(tmp_path / "landing")
    with run_lock(affinity_home, purpose="affinity run (this test)") as lock:
        # The holder's own stages (``affinity run``'s DAG runs them in its child).
        summary = run_stage("ingest", RunContext(None, input_path=str(landing)))
        assert summary["loaded_rows"] == 1
        # A child given the descriptor (how ``affinity run`` starts ``airflow dags test``).
        given = subprocess.run(
            [AFFINITY, "ingest", str(landing)],
            env=env_for(affinity_home, **{LOCK_FD_ENV: str(lock.fd)}),
            pass_fds=(lock.fd,),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert given.returncode == 0, given.stderr
        # A process below the holder without it (a task process of that DAG process).
        below = subprocess.run(
            [AFFINITY, "ingest", str(landing)],
            env=env_for(affinity_home, **{LOCK_FD_ENV: str(lock.fd)}),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert below.returncode == 0, below.stderr
        assert "unchanged, skipped" in below.stdout


def test_a_stale_descriptor_variable_does_not_open_the_lock(
    holder: subprocess.Popen, affinity_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = open(tmp_path / "not-the-lock", "w")  # noqa: SIM115 - its descriptor is the point
    try:
        monkeypatch.setenv(LOCK_FD_ENV, str(other.fileno()))
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"), writer_lock(affinity_home):
            pass
    finally:
        other.close()
