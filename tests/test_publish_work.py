"""A killed publish leaves nothing in the analysts' folder (issue 19, finding 5).

The new snapshot is built in ``$AFFINITY_HOME/publish-work/`` and only renamed into
``published/`` once complete, so a publish killed with SIGKILL while copying leaves its
half-built file and WAL in ``publish-work/``, never beside the snapshot analysts browse;
the next publish removes them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_publish import DAY, stage_outputs

from ml.config import paths
from ml.publish import publish

REPO_ROOT = Path(__file__).resolve().parents[1]
KILLED_PUBLISH = r"""
import os, signal, sys
sys.path.insert(0, "tests")
import ml.publish.snapshot as snapshot
from ml.publish import publish

original, calls = snapshot.table_checksum, [0]

def checksum_then_die(*args, **kwargs):
    result = original(*args, **kwargs)
    calls[0] += 1
    if calls[0] == 2:  # two tables copied, the file not complete
        os.kill(os.getpid(), signal.SIGKILL)
    return result

snapshot.table_checksum = checksum_then_die
publish(sys.argv[1], run_id="killed")
"""


def test_a_publish_killed_mid_copy_leaves_nothing_in_published(affinity_home: Path) -> None:
    stage_outputs("one", 10)
    publish(DAY, run_id="one")
    stage_outputs("two", 12)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_PUBLISH, DAY.isoformat()],
        env={**os.environ, "AFFINITY_HOME": str(affinity_home)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]

    home = paths()
    assert {p.name for p in home.published.iterdir()} == {"affinity.duckdb", "history"}
    left = sorted(p.name for p in home.publish_work.iterdir())
    assert left and all(name.startswith(".building-killed-") for name in left), left

    publish(DAY, run_id="two")
    assert {p.name for p in home.published.iterdir()} == {"affinity.duckdb", "history"}
    assert list(home.publish_work.iterdir()) == []
