"""One pipeline run per Affinity home at a time: an exclusive advisory lock file.

``affinity run`` (:func:`ml.pipeline.run_pipeline`) holds ``$AFFINITY_HOME/run.lock`` for
the whole run. A second run started meanwhile is refused at once with a message naming
the holder (pid, host, start time, command), or, when asked to, waits for the lock up to a
timeout (``AFFINITY_RUN_LOCK_TIMEOUT`` seconds; ``0``, the default, refuses at once).

Why ``fcntl.flock`` on a file that is never deleted:

* the kernel releases the lock when the holder's last descriptor closes, also when the
  process is killed with SIGKILL, so a crashed run never leaves a stale lock behind and
  nobody has to guess whether a pid in a file is still alive;
* the lock belongs to the open file description, so a child process that inherits the
  descriptor (the ``airflow dags test`` process of a run) keeps the home locked while it
  runs, even if its parent was killed alone;
* deleting a lock file lets two processes lock two different inodes at once; this file
  therefore stays, and only its content (who holds it) is rewritten.

The lock is advisory and local: it protects one machine's home (not a home on a network
file system shared by several hosts).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ml.config import paths

log = logging.getLogger(__name__)

LOCK_FILE_NAME = "run.lock"
TIMEOUT_ENV = "AFFINITY_RUN_LOCK_TIMEOUT"
# How often a waiting run retries the lock.
POLL_SECONDS = 0.5


class RunLockedError(RuntimeError):
    """Another process holds the lock (and the wait, if any, timed out).

    Attributes
    ----------
    path : pathlib.Path
        The lock file.
    holder : dict
        What the holder wrote into the lock file (``pid``, ``host``, ``started_at``,
        ``command``); empty when it could not be read.
    """

    def __init__(self, path: Path, holder: dict, waited: float, label: str = "run") -> None:
        self.path = path
        self.holder = holder
        self.waited = waited
        who = describe_holder(holder)
        waited_text = f" after waiting {waited:.0f}s" if waited > 0 else ""
        super().__init__(
            f"another Affinity {label} holds {path}{waited_text}: {who}. Only one {label} may "
            f"write an Affinity home at a time; wait for it to finish (or stop it), or set "
            f"{TIMEOUT_ENV}=<seconds> to wait for the lock instead of refusing."
        )


@dataclass
class RunLock:
    """A held run lock; release it with :meth:`release` (or leave the ``with`` block).

    Attributes
    ----------
    path : pathlib.Path
        The lock file.
    fd : int
        The open descriptor holding the lock; pass it to child processes
        (``subprocess.run(..., pass_fds=[lock.fd])``) that must keep the home locked.
    holder : dict
        What this holder wrote into the file.
    """

    path: Path
    fd: int
    holder: dict

    def release(self) -> None:
        """Forget the holder information, unlock and close (idempotent)."""
        if self.fd < 0:
            return
        try:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)
            self.fd = -1


def describe_holder(holder: dict) -> str:
    """One line naming a lock holder, e.g. ``pid 4242 on host h, started ... (affinity run)``."""
    if not holder.get("pid"):
        return "holder unknown (the lock was taken a moment ago)"
    text = f"pid {holder['pid']} on host {holder.get('host', '?')}"
    if holder.get("started_at"):
        text += f", started {holder['started_at']}"
    if holder.get("command"):
        text += f" ({holder['command']})"
    if holder.get("host") == socket.gethostname() and not _alive(int(holder["pid"])):
        text += "; that process is gone, a process it started (its DAG run) still holds the lock"
    return text


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_holder(path: Path) -> dict:
    """Return the holder information written in a lock file (empty dict if none)."""
    try:
        return json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def lock_timeout_from_env(default: float = 0.0) -> float | None:
    """Seconds to wait for the run lock from ``AFFINITY_RUN_LOCK_TIMEOUT``.

    ``0`` refuses at once, a positive number waits that long, ``inf`` or a negative number
    waits forever (returned as ``None``).
    """
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from exc
    return None if value < 0 or value == float("inf") else value


def acquire_run_lock(
    home: Path | str | None = None,
    *,
    timeout: float | None = 0.0,
    purpose: str | None = None,
) -> RunLock:
    """Take the exclusive run lock of an Affinity home.

    Parameters
    ----------
    home : path-like, optional
        The Affinity home (default: ``$AFFINITY_HOME``); the lock is ``<home>/run.lock``.
    timeout : float or None
        Seconds to wait for a held lock: ``0`` refuses at once, ``None`` waits forever.
    purpose : str, optional
        What the holder is doing, recorded for the message a refused run prints
        (default: the command line of this process).

    Returns
    -------
    RunLock
        The held lock.

    Raises
    ------
    RunLockedError
        The lock is held by another process (after ``timeout`` seconds of waiting).
    """
    home_dir = Path(home).resolve() if home is not None else paths().home
    return acquire_lock(home_dir / LOCK_FILE_NAME, timeout=timeout, purpose=purpose)


def acquire_lock(
    path: Path | str,
    *,
    timeout: float | None = 0.0,
    purpose: str | None = None,
    label: str = "run",
) -> RunLock:
    """Take an exclusive lock on the file ``path`` (created if missing).

    Parameters are those of :func:`acquire_run_lock`; ``label`` names the holder's kind in
    the refusal message ("another Affinity <label> holds ...").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_CLOEXEC (Python's default): only children given the fd explicitly inherit it.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    started = time.monotonic()
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
        waited = time.monotonic() - started
        if timeout is not None and waited >= timeout:
            os.close(fd)
            raise RunLockedError(path, read_holder(path), waited, label) from None
        if not announced:
            log.warning(
                "waiting for the lock %s held by %s", path, describe_holder(read_holder(path))
            )
            announced = True
        time.sleep(POLL_SECONDS if timeout is None else min(POLL_SECONDS, timeout - waited))
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": (purpose or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]))[:300],
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)
    log.debug("took the lock %s", path)
    return RunLock(path, fd, holder)


@contextlib.contextmanager
def run_lock(
    home: Path | str | None = None,
    *,
    timeout: float | None = 0.0,
    purpose: str | None = None,
) -> Iterator[RunLock]:
    """Hold the home's run lock for the ``with`` block (see :func:`acquire_run_lock`)."""
    lock = acquire_run_lock(home, timeout=timeout, purpose=purpose)
    try:
        yield lock
    finally:
        lock.release()
