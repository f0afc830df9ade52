"""Run a local server as a child process and stop it cleanly however the user asks.

``airflow standalone`` stops its scheduler, dag-processor, triggerer and api-server only
on SIGINT; SIGTERM kills it alone and leaves them running. And under ``make airflow``
a SIGINT sent to ``make`` itself never reaches the server: GNU make expects its
children to get the same SIGINT from the terminal, so it only waits for them. So
:func:`run_until_stopped` keeps the server as a child and turns every way of asking
into exactly one SIGINT to it:

- SIGINT, SIGTERM or SIGHUP sent to this process (``kill``, or make forwarding SIGTERM);
- a Ctrl-C in the terminal, which the server receives itself (nothing to forward);
- a signal sent to the ``make`` that started this process: make's handler resets the
  signal's disposition to the default while it waits for its children, which
  ``/proc/<make>/status`` shows (Linux; elsewhere Ctrl-C and ``kill`` still work).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# What make catches and, once it got one, stops catching (see make_stop_requested).
MAKE_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# si_code of a signal the kernel sent, e.g. the terminal's Ctrl-C to its whole foreground
# process group: the server got that one itself.
SI_KERNEL = 0x80
SHELLS = frozenset({"sh", "bash", "dash", "zsh"})
POLL_SECONDS = 0.5


def run_until_stopped(
    cmd: Sequence[str], env: Mapping[str, str], *, proc: Path = Path("/proc")
) -> int:
    """Run ``cmd`` until it exits; ask it to stop with one SIGINT when asked to stop.

    Returns
    -------
    int
        The server's exit status, or 0 when it stopped cleanly because it was asked to.
    """
    make = find_make_ancestor(proc=proc)
    make_caught = caught_signals(make, proc=proc) if make else frozenset()
    # Blocked here, received below with their sender: no handler can race the child start.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        child = subprocess.Popen(list(cmd), env=dict(env), preexec_fn=_unblock_stop_signals)
        stop_requested = False
        while child.poll() is None:
            info = signal.sigtimedwait(STOP_SIGNALS, POLL_SECONDS)
            if stop_requested:
                continue
            if info is not None:
                stop_requested = True
                if info.si_code != SI_KERNEL:
                    log.info("stopping (signal %d from pid %d)", info.si_signo, info.si_pid)
                    child.send_signal(signal.SIGINT)
            elif make and make_stop_requested(make, make_caught, proc=proc):
                stop_requested = True
                log.info("stopping: make (pid %d) was interrupted", make)
                child.send_signal(signal.SIGINT)
        status = child.wait()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    return 0 if stop_requested and status in (0, -signal.SIGINT) else status


def _unblock_stop_signals() -> None:
    # The child starts with this process's signal mask: give it its signals back.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _stat(pid: int, proc: Path) -> tuple[str, int] | None:
    """``(command name, parent pid)`` of a process, or None when it is gone."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The name is in parentheses and may itself hold spaces or parentheses.
    name = text[text.index("(") + 1 : text.rindex(")")]
    return name, int(text[text.rindex(")") + 2 :].split()[1])


def find_make_ancestor(pid: int | None = None, *, proc: Path = Path("/proc")) -> int | None:
    """The pid of the ``make`` that runs this process (through shells only), or None."""
    current = _stat(pid or os.getpid(), proc)
    while current is not None:
        parent = _stat(current[1], proc) if current[1] > 1 else None
        if parent is None:
            return None
        if parent[0] in ("make", "gmake"):
            return current[1]
        if parent[0] not in SHELLS:
            return None
        current = parent
    return None


def caught_signals(pid: int, *, proc: Path = Path("/proc")) -> frozenset[int]:
    """The signals among :data:`MAKE_SIGNALS` that process ``pid`` has a handler for."""
    try:
        status = (proc / str(pid) / "status").read_text()
    except OSError:
        return frozenset()
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            mask = int(line.split()[1], 16)
            return frozenset(s for s in MAKE_SIGNALS if mask & (1 << (s - 1)))
    return frozenset()


def make_stop_requested(
    make: int, caught_at_start: frozenset[int], *, proc: Path = Path("/proc")
) -> bool:
    """Whether make received a signal it was catching (its handler then stops catching it)."""
    if not (proc / str(make)).exists():
        return True
    return bool(caught_at_start - caught_signals(make, proc=proc))
