"""One writer per Affinity home at a time: an exclusive advisory lock file.

``affinity run`` (:func:`ml.orchestration.run.run_pipeline`) holds
``$AFFINITY_HOME/run.lock`` for the whole run, and so does every other command that writes
the home (``affinity ingest``, ``build-features``, ``train``, ``score``, ``campaigns``,
``publish``, ``measure``: :func:`writer_lock`) for its duration. A writer started meanwhile
is refused at once with a message naming the holder (pid, host, start time, command), or,
when asked to, waits for the lock up to a timeout (``AFFINITY_RUN_LOCK_TIMEOUT`` seconds;
``0``, the default, refuses at once).

The stages of a run do not take the lock again: a holder advertises its descriptor in
``AFFINITY_RUN_LOCK_FD`` and passes it to the DAG process it starts, and a writer whose
process tree already holds the lock (that descriptor is open here and is the lock file, or
the recorded holder is an ancestor process) goes ahead (:func:`held_by_this_process_tree`).

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
# One publish, rollback or snapshot rewrite at a time per home (in the home, not in
# published/: analysts see only snapshots there).
PUBLISH_LOCK = "publish.lock"
TIMEOUT_ENV = "AFFINITY_RUN_LOCK_TIMEOUT"
# The descriptor of the held run lock, for the processes the holder starts.
LOCK_FD_ENV = "AFFINITY_RUN_LOCK_FD"
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
        waited_text = f" after waiting {waited:.0f}s" if waited >= 0.5 else ""
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
    """Hold the home's run lock for the ``with`` block (see :func:`acquire_run_lock`).

    While held, ``AFFINITY_RUN_LOCK_FD`` names its descriptor, so a child process given
    it (``pass_fds``) and the stages of this process know the home is theirs to write.
    """
    lock = acquire_run_lock(home, timeout=timeout, purpose=purpose)
    previous = os.environ.get(LOCK_FD_ENV)
    os.environ[LOCK_FD_ENV] = str(lock.fd)
    try:
        yield lock
    finally:
        if previous is None:
            os.environ.pop(LOCK_FD_ENV, None)
        else:
            os.environ[LOCK_FD_ENV] = previous
        lock.release()


def _lock_path(home: Path | str | None) -> Path:
    return (Path(home).resolve() if home is not None else paths().home) / LOCK_FILE_NAME


def _holds_by_descriptor(path: Path) -> bool:
    """Whether ``AFFINITY_RUN_LOCK_FD`` is an open descriptor here holding ``path``'s lock."""
    raw = os.environ.get(LOCK_FD_ENV, "").strip()
    if not raw.isdigit():
        return False
    fd = int(raw)
    try:
        mine, lock_file = os.fstat(fd), os.stat(path)
    except OSError:  # not open in this process (a stale variable), or no lock file
        return False
    if (mine.st_dev, mine.st_ino) != (lock_file.st_dev, lock_file.st_ino):
        return False
    try:
        # On the description that holds the lock this succeeds and changes nothing.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _ancestors(pid: int) -> set[int]:
    """Pids of the parent chain of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    found: set[int] = set()
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if pid in found:  # a cycle cannot happen, but never loop
            break
        found.add(pid)
    return found


def _is_held(path: Path) -> bool:
    """Whether some process holds the lock on ``path`` (probed without keeping it)."""
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def held_by_this_process_tree(home: Path | str | None = None) -> bool:
    """Whether this process, or the run that started it, holds the home's run lock.

    True when ``AFFINITY_RUN_LOCK_FD`` is a descriptor of this process holding the lock
    file (the holder itself, or the DAG process it passed the descriptor to), or when the
    holder recorded in the file is an ancestor of this process on this host and the lock
    is held (a task process its DAG process started without the descriptor).
    """
    path = _lock_path(home)
    if _holds_by_descriptor(path):
        return True
    holder = read_holder(path)
    pid = holder.get("pid")
    if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
        return False
    return pid in _ancestors(os.getpid()) and _is_held(path)


@contextlib.contextmanager
def writer_lock(
    home: Path | str | None = None, *, purpose: str | None = None
) -> Iterator[RunLock | None]:
    """Hold the run lock for a command that writes the home, unless its tree holds it.

    A run's own stages (in its DAG process, or a task process below it) go ahead without
    taking it again (yielding None); any other writer takes it like ``affinity run`` does,
    with the same refusal, or the same wait under ``AFFINITY_RUN_LOCK_TIMEOUT``.

    Raises
    ------
    RunLockedError
        Another process holds the lock (after the configured wait).
    """
    if held_by_this_process_tree(home):
        yield None
        return
    with run_lock(home, timeout=lock_timeout_from_env(), purpose=purpose) as lock:
        yield lock
