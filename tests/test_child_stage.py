"""A stage's child process belongs to its run: the run lock covers grandchildren too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ml.locking import LOCK_FD_ENV, run_lock

CHECK = (
    "from ml.locking import held_by_this_process_tree; "
    "print('held' if held_by_this_process_tree() else 'not held')"
)


def _grandchild_sees(home: Path, *, pass_descriptor: bool) -> str:
    """Run CHECK two processes below a run-lock holder (like a stage's child below the
    DAG process below `affinity run`)."""
    with run_lock(home) as lock:
        env = {**os.environ, "AFFINITY_HOME": str(home), LOCK_FD_ENV: str(lock.fd)}
        # The middle process passes the descriptor on (or not) as run_stage_in_child does.
        middle = (
            "import subprocess, sys; from ml.orchestration.child import _lock_descriptor; "
            f"fds = _lock_descriptor() if {pass_descriptor} else (); "
            f"subprocess.run([sys.executable, '-c', {CHECK!r}], pass_fds=fds)"
        )
        done = subprocess.run(
            [sys.executable, "-c", middle],
            env=env,
            pass_fds=(lock.fd,),
            capture_output=True,
            text=True,
            check=True,
        )
    return done.stdout.strip()


def test_a_grandchild_of_the_holder_goes_ahead(affinity_home: Path) -> None:
    # Without the descriptor, through the holder being an ancestor (two levels up).
    assert _grandchild_sees(affinity_home, pass_descriptor=False) == "held"
    # With it, through the descriptor.
    assert _grandchild_sees(affinity_home, pass_descriptor=True) == "held"
