"""Where each CSV record starts in its file, and which lines are blank.

DuckDB's CSV reader skips blank lines silently and numbers records, not lines. So that
every line of a file is accounted for (a blank line is received and quarantined) and
``source_row`` is the line's true number, the ingest reads the file's line structure here:

* :func:`count_lines` counts physical lines (``\\n``, ``\\r\\n`` or a lone ``\\r`` end a
  line) at memchr speed. When a file has exactly one line per record plus the header, the
  record numbers DuckDB reports are the line numbers, and nothing more is needed.
* Otherwise (blank lines, or quoted values spanning lines) :func:`record_lines` walks the
  file with Python's CSV reader, whose quoting rules match DuckDB's (a quote opens a value
  only at its start; ``""`` escapes), and returns the first line of every record and the
  blank lines.

Line numbers here are 1-based physical lines: the header is line 1.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CHUNK = 1 << 24


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def count_lines(path: Path) -> int:
    """Physical lines of a (possibly gzipped) text file; a last line without an end counts."""
    lines = 0
    last = b""
    with _open_binary(Path(path)) as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            lines += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
            if last == b"\r" and chunk[:1] == b"\n":
                lines -= 1  # a CRLF split across two chunks ends one line, not two
            last = chunk[-1:]
    if last and last not in (b"\n", b"\r"):
        lines += 1
    return lines


@dataclass(frozen=True)
class RecordLines:
    """The line structure of a CSV file.

    Attributes
    ----------
    items : numpy.ndarray
        First line of every item after the header, in file order: records and blank lines
        alike (DuckDB numbers its rejects by this sequence: the header is 1, the first item
        after it 2, ...).
    blank : numpy.ndarray of bool
        Whether each item is a blank line.
    """

    items: np.ndarray
    blank: np.ndarray

    @property
    def records(self) -> np.ndarray:
        """First line of every non-blank record after the header, in file order."""
        return self.items[~self.blank]

    @property
    def blank_lines(self) -> np.ndarray:
        return self.items[self.blank]


def record_lines(path: Path) -> RecordLines:
    """Walk a CSV (plain or gzip) and return the first line of every item after the header.

    Invalid UTF-8 is replaced while reading (line structure does not depend on it).
    """
    path = Path(path)
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)  # values up to DuckDB's 20 MB line limit
    starts: list[int] = []
    blank: list[bool] = []
    try:
        with _open_binary(path) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
            reader = csv.reader(text, delimiter=",", quotechar='"', doublequote=True)
            line = 0
            header_seen = False
            for row in reader:
                first = line + 1
                line = reader.line_num
                if not header_seen:
                    header_seen = bool(row)
                    continue
                starts.append(first)
                blank.append(not row)
    finally:
        csv.field_size_limit(previous_limit)
    return RecordLines(np.asarray(starts, dtype=np.int64), np.asarray(blank, dtype=bool))
