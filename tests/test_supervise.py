"""Stopping a local server: SIGINT/SIGTERM to us, Ctrl-C in a terminal, or a signal to make.

A real child process counts the SIGINTs it gets; the supervisor (``ml.orchestration.supervise``) must
deliver exactly one, whichever way the stop was asked for, and then return.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

import pytest

from ml.orchestration.supervise import caught_signals, find_make_ancestor, make_stop_requested

# The "server": records every SIGINT, stops half a second after the first one (time for a
# duplicate to arrive and be counted), and says when it is ready.
SERVER = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path

    out = Path(sys.argv[1])
    got = []

    def on_sigint(signum, frame):
        got.append(time.monotonic())
        out.write_text(str(len(got)))

    signal.signal(signal.SIGINT, on_sigint)
    Path(str(out) + ".ready").write_text("ok")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (got and time.monotonic() - got[0] > 0.5):
        time.sleep(0.05)
    sys.exit(0 if got else 3)
    """
)
# The supervisor, as `affinity airflow` / `affinity dashboard` run it.
DRIVER = textwrap.dedent(
    """
    import os, sys
    from ml.orchestration.supervise import run_until_stopped

    sys.exit(run_until_stopped([sys.executable, sys.argv[1], sys.argv[2]], os.environ))
    """
)


@pytest.fixture
def scripts(tmp_path: Path) -> tuple[Path, Path, Path]:
    server, driver = tmp_path / "server.py", tmp_path / "driver.py"
    server.write_text(SERVER)
    driver.write_text(DRIVER)
    return server, driver, tmp_path / "sigints"


def _wait_ready(out: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while not Path(f"{out}.ready").exists():
        assert process.poll() is None, "the supervisor exited before the server started"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    time.sleep(0.3)  # the supervisor is in its wait loop


def _sigints(out: Path) -> int:
    return int(out.read_text()) if out.exists() else 0


@pytest.mark.parametrize(
    "sent", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
def test_a_signal_to_the_supervisor_becomes_one_sigint(scripts, sent: signal.Signals) -> None:
    server, driver, out = scripts
    supervisor = subprocess.Popen([sys.executable, str(driver), str(server), str(out)])
    _wait_ready(out, supervisor)
    os.kill(supervisor.pid, sent)
    assert supervisor.wait(timeout=30) == 0
    assert _sigints(out) == 1


def test_ctrl_c_in_a_terminal_reaches_the_server_once(scripts) -> None:
    """The terminal signals the whole foreground group: the supervisor must not add one."""
    server, driver, out = scripts
    master, slave = os.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    supervisor = subprocess.Popen(
        [sys.executable, str(driver), str(server), str(out)],
        stdin=slave,
        preexec_fn=controlling_terminal,
        pass_fds=(slave,),
    )
    try:
        _wait_ready(out, supervisor)
        os.write(master, b"\x03")  # Ctrl-C: the tty sends SIGINT to its foreground group
        assert supervisor.wait(timeout=30) == 0
        assert _sigints(out) == 1
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_to_make_stops_the_server(scripts, tmp_path: Path, sent) -> None:
    """GNU make only waits for its children on SIGINT: the supervisor notices and stops."""
    server, driver, out = scripts
    (tmp_path / "Makefile").write_text(
        f"SHELL := /bin/bash\nserve:\n\t{sys.executable} {driver} {server} {out}\n"
    )
    make = subprocess.Popen(
        ["make", "-s", "-C", str(tmp_path), "serve"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        start_new_session=True,
    )
    try:
        _wait_ready(out, make)
        os.kill(make.pid, sent)
        make.wait(timeout=30)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
    assert _sigints(out) == 1


# --------------------------------------------------------------------------- /proc reading


def _fake_process(proc: Path, pid: int, name: str, ppid: int, caught: int = 0) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    (folder / "stat").write_text(f"{pid} ({name}) S {ppid} {pid} {pid} 0 -1 4194560 0 0\n")
    (folder / "status").write_text(
        f"Name:\t{name}\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
        f"SigCgt:\t{caught:016x}\n"
    )


def _mask(*signals: int) -> int:
    return sum(1 << (s - 1) for s in signals)


def test_make_is_found_through_shells_only(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _fake_process(proc, 10, "make", 1)
    _fake_process(proc, 11, "bash", 10)
    _fake_process(proc, 12, "affinity", 11)
    _fake_process(proc, 20, "tmux: server", 1)
    _fake_process(proc, 21, "affinity", 20)
    _fake_process(proc, 30, "make", 1)
    _fake_process(proc, 31, "python (x)", 30)  # a name with a space and parentheses
    assert find_make_ancestor(12, proc=proc) == 10
    assert find_make_ancestor(21, proc=proc) is None
    assert find_make_ancestor(31, proc=proc) == 30
    assert find_make_ancestor(99, proc=proc) is None


def test_make_stop_is_read_from_its_signal_dispositions(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _fake_process(proc, 10, "make", 1, caught=_mask(signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
    at_start = caught_signals(10, proc=proc)
    assert at_start == {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    assert not make_stop_requested(10, at_start, proc=proc)
    # make's handler resets SIGINT to the default while it waits for its children.
    (proc / "10" / "status").write_text(f"SigCgt:\t{_mask(signal.SIGTERM, signal.SIGHUP):016x}\n")
    assert make_stop_requested(10, at_start, proc=proc)
    # make gone (killed): stop too.
    assert make_stop_requested(11, at_start, proc=proc)


def test_this_process_signal_dispositions_are_read_from_proc() -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("no /proc on this system")
    previous = signal.signal(signal.SIGHUP, lambda *_: None)
    try:
        assert signal.SIGHUP in caught_signals(os.getpid())
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert signal.SIGINT in caught_signals(os.getpid())  # Python's KeyboardInterrupt handler
