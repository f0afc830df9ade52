"""The full log of one ``affinity run``: a file under ``$AFFINITY_HOME/logs/``.

A quiet run (the default) writes everything Airflow, dbt, Cosmos and Affinity log to the
file and shows the terminal only Affinity's progress, warnings and the summary;
``--verbose`` shows everything as well. :func:`capture_run_output` routes this process's
own logging (and what dbt prints while parsing the project) there.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TextIO

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run_log_path(logs_dir: Path, started: datetime) -> Path:
    """``logs/run-20261127T112912Z.log`` (UTC start; a second run in the same second gets ``-2``)."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    stem = f"run-{started:%Y%m%dT%H%M%SZ}"
    path, n = logs_dir / f"{stem}.log", 1
    while path.exists():
        n += 1
        path = logs_dir / f"{stem}-{n}.log"
    return path


@contextlib.contextmanager
def capture_run_output(log_file: TextIO, *, verbose: bool) -> Iterator[None]:
    """Send this process's logging (and dbt's prints) to ``log_file`` for the block.

    Quiet: the log records go to the file only, except warnings and errors, which the
    terminal (stderr) shows too; whatever is printed to ``sys.stdout`` goes to the file
    (dbt's console output). Verbose: the terminal keeps everything and the file gets a copy
    of the log records. Restores the logging set-up afterwards.
    """
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    to_file = logging.StreamHandler(log_file)
    to_file.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    to_file.setLevel(logging.DEBUG if verbose else logging.INFO)
    if verbose:
        root.addHandler(to_file)
    else:
        to_terminal = logging.StreamHandler(sys.stderr)
        to_terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        to_terminal.setLevel(logging.WARNING)
        root.handlers = [to_file, to_terminal]
    root.setLevel(min(saved_level or logging.INFO, logging.INFO))
    redirect = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(log_file)
    try:
        with redirect:
            yield
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        log_file.flush()
