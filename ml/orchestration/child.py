"""Run a declared stage in a child process, so its memory goes back to the OS when it ends.

``airflow dags test`` (what ``affinity run`` uses) runs every task in one process, and
CPython, NumPy and DuckDB keep much of what a stage allocated: train's arrays were still
resident while score ran (8.5 GB at 10M events). Stages declared with
``own_process=True`` (:mod:`ml.pipeline`) therefore run through :func:`run_stage_in_child`
when the DAG runs them: ``python -m ml.orchestration.child`` runs the same
:func:`ml.orchestration.runner.run_stage` and hands its summary back in a file. The
child dies with its parent (``PR_SET_PDEATHSIG``), so a killed run never leaves a stage
writing the warehouse behind it; its logs go to the task's log.

In-process callers (``affinity`` sub-commands, the reliability tests) keep calling
``run_stage`` directly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ml.pipeline import RunContext

log = logging.getLogger(__name__)


def _die_with_parent(parent: int) -> None:
    """Have Linux SIGKILL this process when its parent dies (no-op elsewhere).

    Set by the child itself (no ``preexec_fn``: unsafe in a threaded parent), then checked:
    a parent that died before the call leaves the child adopted, and it stops at once.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def _lock_descriptor() -> tuple[int, ...]:
    """The run lock's descriptor, for the child to inherit (it holds the lock through it,
    as the DAG process does: :mod:`ml.locking`); empty when this process has none."""
    from ml.locking import LOCK_FD_ENV

    raw = os.environ.get(LOCK_FD_ENV, "").strip()
    if not raw.isdigit():
        return ()
    try:
        os.fstat(int(raw))
    except OSError:
        return ()
    return (int(raw),)


def run_stage_in_child(name: str, ctx: RunContext, pipeline: str = "affinity_daily") -> dict:
    """Run stage ``name`` of ``pipeline`` for ``ctx`` in a child Python process.

    Returns
    -------
    dict
        The stage's summary, as :func:`~ml.orchestration.runner.run_stage` returns it.

    Raises
    ------
    RuntimeError
        When the child fails (its traceback is in the log above) or is killed.
    """
    with tempfile.TemporaryDirectory(prefix=f"affinity-{name}-") as scratch:
        summary_path = Path(scratch) / "summary.json"
        args = [
            sys.executable,
            "-m",
            "ml.orchestration.child",
            pipeline,
            name,
            json.dumps(dataclasses.asdict(ctx)),
            str(summary_path),
            str(os.getpid()),
        ]
        log.info("stage %s: running in a child process", name)
        sys.stdout.flush()
        sys.stderr.flush()
        done = subprocess.run(args, env=dict(os.environ), pass_fds=_lock_descriptor())
        if done.returncode != 0 or not summary_path.exists():
            how = (
                f"was killed by signal {-done.returncode}"
                if done.returncode < 0
                else f"exited with status {done.returncode}"
            )
            raise RuntimeError(
                f"stage {name} {how} in its child process; its log above says why. Fix the "
                "cause and re-run the same date: every stage replaces its outputs."
            )
        return json.loads(summary_path.read_text())


def _main(argv: list[str]) -> int:
    pipeline_name, name, context, summary_path, parent = argv
    _die_with_parent(int(parent))
    from ml.orchestration.runner import run_stage
    from ml.pipeline import PIPELINES

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    summary: dict[str, Any] = run_stage(
        name, RunContext(**json.loads(context)), PIPELINES[pipeline_name]
    )
    Path(summary_path).write_text(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
