"""Concurrency: the run lock, and analysts reading through a real ``affinity run``.

* One pipeline run per home (:mod:`ml.locking`): a second run is refused at once with a
  message naming the holder, or waits with ``AFFINITY_RUN_LOCK_TIMEOUT``; a killed holder
  never leaves a stale lock.
* The slow scenario runs the real Airflow DAG (``affinity run``) while 8 reader processes
  query the published snapshot in a loop: a second ``affinity run`` is refused; the first
  run is killed (its main process alone first, the DAG run keeps the home locked; then its
  whole process group, the "kill of a real affinity run" of the crash tests); the analyst
  snapshot is still the previous one; a new run completes and is swapped in. The readers
  see zero errors and only consistent snapshots throughout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from test_reliability_support import (
    REPO_ROOT,
    child_env,
    last_run_id,
    make_shop,
    run_stages,
    snapshot_opens_and_reads,
    snapshot_path,
)

from ml.locking import LOCK_FILE_NAME, RunLockedError, acquire_run_lock, read_holder

AFFINITY = str(Path(sys.executable).with_name("affinity"))
READERS = 8

HOLDER = r"""
import sys, time
from ml.locking import acquire_run_lock
lock = acquire_run_lock(sys.argv[1], purpose="test holder")
print("LOCKED", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
"""


def hold_lock(home: Path, seconds: float) -> subprocess.Popen:
    """A child process holding ``home``'s run lock for ``seconds`` (returns once it holds it)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert holder.stdout.readline().strip() == "LOCKED"
    return holder


def test_a_second_run_is_refused_naming_the_holder_and_a_killed_holder_leaves_no_lock(
    tmp_path: Path,
) -> None:
    holder = hold_lock(tmp_path, 60)
    try:
        with pytest.raises(RunLockedError) as refused:
            acquire_run_lock(tmp_path, timeout=0)
        message = str(refused.value)
        assert f"pid {holder.pid}" in message and "started 20" in message
        assert "test holder" in message and "AFFINITY_RUN_LOCK_TIMEOUT" in message

        began = time.monotonic()
        with pytest.raises(RunLockedError, match="after waiting 1s"):
            acquire_run_lock(tmp_path, timeout=1.0)
        assert time.monotonic() - began >= 1.0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # SIGKILL released it: the kernel drops the lock with the process; nothing is stale.
    lock = acquire_run_lock(tmp_path, timeout=0)
    try:
        assert read_holder(tmp_path / LOCK_FILE_NAME)["pid"] == os.getpid()
    finally:
        lock.release()
    assert read_holder(tmp_path / LOCK_FILE_NAME) == {}


def test_a_waiting_run_takes_the_lock_when_the_holder_finishes(tmp_path: Path) -> None:
    holder = hold_lock(tmp_path, 1.5)
    began = time.monotonic()
    lock = acquire_run_lock(tmp_path, timeout=60)
    waited = time.monotonic() - began
    lock.release()
    holder.wait()
    assert 0.5 < waited < 30


def test_affinity_run_refuses_to_start_while_another_run_holds_the_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    holder = hold_lock(home, 120)
    try:
        began = time.monotonic()
        refused = subprocess.run(
            [AFFINITY, "run", "--data", str(tmp_path / "nowhere")],
            env=child_env(home),
            capture_output=True,
            text=True,
            timeout=120,
        )
        seconds = time.monotonic() - began
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert refused.returncode == 1
    assert f"another Affinity run holds {home / LOCK_FILE_NAME}" in refused.stderr
    assert f"pid {holder.pid}" in refused.stderr
    assert not (home / "warehouse.duckdb").exists()  # refused before touching anything
    assert seconds < 60


# --------------------------------------------------------------------------- real runs

READER = r"""
import json, sys, time
from pathlib import Path
import duckdb

snapshot, stop = sys.argv[1], Path(sys.argv[2])
reads = errors = inconsistent = 0
messages, runs = [], []
while not stop.exists():
    try:
        con = duckdb.connect(snapshot, read_only=True)
        try:
            run_id, logical_date, version, counts = con.execute(
                "select run_id, logical_date, model_version, row_counts from pipeline_runs "
                "order by finished_at desc limit 1"
            ).fetchone()
            for table, expected in sorted(dict(counts).items()):
                actual = con.execute(f"select count(*) from {table}").fetchone()[0]
                if actual != expected:
                    inconsistent += 1
                    messages.append(f"{run_id} {table}: {actual} rows, expected {expected}")
            models = con.execute(
                "select list(distinct model_version), list(distinct logical_date) "
                "from recommendations"
            ).fetchone()
            if models != ([version], [logical_date]):
                inconsistent += 1
                messages.append(f"{run_id}: recommendations of {models}, run of {version}")
        finally:
            con.close()
        reads += 1
        if not runs or runs[-1] != run_id:
            runs.append(run_id)
    except Exception as exc:
        errors += 1
        messages.append(repr(exc)[:300])
    time.sleep(0.2)  # 8 readers on 2 cores beside the pipeline: query, do not spin
print(json.dumps({"reads": reads, "errors": errors, "inconsistent": inconsistent,
                  "runs": runs, "messages": messages[:5]}))
"""


def start_affinity_run(home: Path, landing: Path, log: Path) -> subprocess.Popen:
    """``affinity run`` in its own process group, all output (``--verbose``) to ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen(
            [AFFINITY, "run", "--data", str(landing), "--top-n", "10", "--verbose"],
            env=child_env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO_ROOT,
        )


def wait_for_line(log: Path, text: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        assert process.poll() is None, log.read_text()[-4000:]
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not in the log after {timeout}s:\n{log.read_text()[-4000:]}")


@pytest.mark.slow
def test_readers_and_a_second_run_during_a_real_affinity_run_that_is_killed(
    tmp_path: Path,
) -> None:
    home, landing = tmp_path / "home", make_shop(tmp_path / "landing")
    figures: list[str] = []
    previous = run_stages(home, landing, run_id="previous")
    assert previous.finished, previous.tail()
    previous_inode = snapshot_path(home).stat().st_ino

    stop = tmp_path / "stop-readers"
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(snapshot_path(home)), str(stop)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(home),
        )
        for _ in range(READERS)
    ]
    first = second_log = None
    try:
        began = time.monotonic()
        first_log = tmp_path / "first.log"
        first = start_affinity_run(home, landing, first_log)
        # The DAG is running (ingest done, dbt building the marts).
        wait_for_line(first_log, "starting task_id=dbt_features", first, timeout=600)
        figures.append(f"run 1 reached dbt_features after {time.monotonic() - began:.0f}s")

        refused = subprocess.run(
            [AFFINITY, "run", "--data", str(landing)],
            env=child_env(home),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert refused.returncode == 1, refused.stderr[-3000:]
        assert "another Affinity run holds" in refused.stderr
        assert f"pid {first.pid}" in refused.stderr

        # Kill the main process alone: its DAG run goes on and keeps the home locked.
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        orphan = subprocess.run(
            [AFFINITY, "run", "--data", str(landing)],
            env=child_env(home),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert orphan.returncode == 1 and "still holds the lock" in orphan.stderr, orphan.stderr[
            -3000:
        ]
        # Now the whole run, as an operator (or the OOM killer of a container) would.
        os.killpg(first.pid, signal.SIGKILL)
        time.sleep(1.0)
        figures.append("run 2 refused while run 1 ran, and again after run 1's parent died")

        # The analysts still have the previous complete snapshot.
        assert snapshot_path(home).stat().st_ino == previous_inode
        assert last_run_id(home) == "previous"
        snapshot_opens_and_reads(home)

        began = time.monotonic()
        second_log = tmp_path / "second.log"
        second = start_affinity_run(home, landing, second_log)
        assert second.wait(timeout=1800) == 0, second_log.read_text()[-6000:]
        figures.append(f"run 3 (after the kill) completed in {time.monotonic() - began:.0f}s")
        assert last_run_id(home).startswith("manual__")
        time.sleep(1.0)  # the readers read the new snapshot a few times
    finally:
        stop.touch()
        for process in (first,):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        outputs = [reader.communicate(timeout=120) for reader in readers]

    results = []
    for (stdout, stderr), reader in zip(outputs, readers, strict=True):
        assert reader.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    for result in results:
        assert result["errors"] == 0, result["messages"]
        assert result["inconsistent"] == 0, result["messages"]
        # Each reader saw the previous snapshot, then the new one, never anything else.
        assert result["runs"][0] == "previous" and len(result["runs"]) == 2, result["runs"]
    # The warehouse is whole: every loaded file still reconciles.
    from ml.ingest import check_manifest

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        check_manifest(con)
    finally:
        con.close()
    reads = sum(r["reads"] for r in results)
    figures.append(f"{READERS} readers: {reads} reads, 0 errors, 0 inconsistent, 2 snapshots")
    print("\n" + "\n".join(figures))
