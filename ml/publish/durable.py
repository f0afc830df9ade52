"""Durable renames of snapshot files."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Flush ``directory``'s entries to disk.

    Call it after ``os.replace`` into the directory: it makes the rename durable (a crash
    right after must not bring back the old name).
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
