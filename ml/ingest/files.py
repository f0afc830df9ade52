"""Landing files: finding them, fingerprinting them, and staging their rows untyped.

A CSV is read as text columns with DuckDB's strict parser; rows it rejects are staged as
quarantine records (``wrong_column_count``, ``invalid_utf8``, ``malformed_row``), and so are
blank lines (``blank_line``), which DuckDB skips. Every staged row keeps ``_row``, the
number of the line it starts on counted from the line after the header (line ``n`` of the
file is row ``n - 1``; see :mod:`ml.ingest.lines`). A Parquet row's ``_row`` is its 1-based
position.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import os
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ml.ingest.contract import ENTITIES, Entity
from ml.ingest.lines import count_lines, record_lines

log = logging.getLogger(__name__)

SUFFIXES = (".parquet", ".csv", ".csv.gz")
_CSV_REJECT_RULES = {
    "MISSING COLUMNS": "wrong_column_count",
    "TOO MANY COLUMNS": "wrong_column_count",
    "INVALID ENCODING": "invalid_utf8",
}


class IngestError(RuntimeError):
    """A landing file cannot be loaded at all; the batch was rolled back."""


def discover(landing_dir: Path) -> list[tuple[Entity, Path]]:
    """Return ``(entity, file)`` pairs under ``landing_dir`` in load order.

    Raises
    ------
    IngestError
        If the directory does not exist or holds no contract file.
    """
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        raise IngestError(
            f"{landing_dir}: not a directory; point `affinity ingest` at a landing folder."
        )
    found: list[tuple[Entity, Path]] = []
    for entity in ENTITIES.values():
        candidates = [landing_dir / f"{entity.name}{s}" for s in SUFFIXES]
        folder = landing_dir / entity.name
        if folder.is_dir():
            candidates += sorted(p for p in folder.iterdir() if p.name.endswith(SUFFIXES))
        found += [(entity, p) for p in candidates if p.is_file()]
    if not found:
        names = ", ".join(ENTITIES)
        raise IngestError(
            f"{landing_dir}: no landing files found; expected <entity>.parquet|.csv|.csv.gz "
            f"or <entity>/ folders for entities: {names}."
        )
    return found


def file_checksum(path: Path) -> str:
    """SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_csv_header(path: Path) -> list[str]:
    """Return the header fields of a CSV (plain or gzip), refusing unreadable files."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(64 * 1024)
    except (OSError, EOFError) as exc:
        raise IngestError(f"{path}: cannot be read ({exc}); is it a valid gzip file?") from exc
    if not head.strip():
        raise IngestError(f"{path}: the file is empty; expected a CSV header line.")
    # Only the header decides whether the file is text: a NUL byte in a data row is that
    # row's defect (rule nul_byte), wherever in the file it is.
    first_line = head.splitlines()[0]
    binary = "binary content (NUL bytes), not a CSV text file"
    if b"\x00" in first_line:
        raise IngestError(f"{path}: {binary}: the header line holds a NUL byte.")
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if b"\x00" in head:
            raise IngestError(f"{path}: {binary}: the header line is not UTF-8.") from exc
        raise IngestError(f"{path}: the header line is not valid UTF-8 ({exc}).") from exc
    return next(csv.reader(io.StringIO(text)))


def stage_csv(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> tuple[list[str], int]:
    """Load a CSV as VARCHAR columns into temp ``table`` with ``_row``; quarantine parser rejects.

    Returns the header names and the number of lines quarantined before typing: the
    records the parser rejected and the blank lines (their quarantine rows are staged in
    ``{table}_rejects``).
    """
    header = _read_csv_header(path)
    if len(set(header)) != len(header):
        raise IngestError(f"{path}: duplicate column names in the header: {header}")
    columns = {name: "VARCHAR" for name in header}
    # DuckDB appends to existing rejects tables: without this, the rejects of an earlier
    # file of the same entity in this batch would be quarantined again under this file.
    con.execute(f"drop table if exists {table}_rej")
    con.execute(f"drop table if exists {table}_scan")
    try:
        con.execute(
            f"""
            create or replace temp table {table}_read as
            select row_number() over () as _ordinal, *
            from read_csv(?, header = true, auto_detect = false, columns = ?, delim = ',',
                          quote = '"', escape = '"', all_varchar = true, strict_mode = true,
                          store_rejects = true, rejects_table = '{table}_rej',
                          rejects_scan = '{table}_scan', max_line_size = 20000000)
            """,
            [str(path), columns],
        )
    except duckdb.Error as exc:
        raise IngestError(f"{path}: cannot be parsed as CSV ({str(exc).splitlines()[0]}).") from exc
    rejects = con.execute(
        # One reject per row: the parser reports each missing column of a short row.
        f"select line, first(error_type::varchar order by column_idx), first(csv_line), "
        f"first(error_message order by column_idx) from {table}_rej group by line order by line"
    ).fetchall()
    good = con.execute(f"select count(*) from {table}_read").fetchall()[0][0]
    row_numbers, reject_rows, blank_rows = _line_numbers(path, good, [r[0] for r in rejects])
    con.register("_row_map", {"_ordinal": np.arange(1, good + 1), "_row": row_numbers})
    con.execute(
        f"""
        create or replace temp table {table} as
        select m._row, r.* exclude (_ordinal)
        from {table}_read r join _row_map m using (_ordinal)
        order by m._row
        """
    )
    con.unregister("_row_map")
    con.execute(f"drop table {table}_read")
    create_rejects(con, table)
    staged_rejects = [
        (int(row), _CSV_REJECT_RULES.get(kind, "malformed_row"), message, raw)
        for row, (_, kind, raw, message) in zip(reject_rows, rejects, strict=True)
    ]
    # A blank line is received like any other line: quarantined, so it is counted.
    staged_rejects += [(int(row), "blank_line", "an empty line", '""') for row in blank_rows]
    if staged_rejects:
        con.executemany(f"insert into {table}_rejects values (?, ?, ?, ?)", staged_rejects)
    return header, len(staged_rejects)


def _line_numbers(
    path: Path, good: int, reject_lines: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (line number - 1) of the good records, the rejects and the blank lines.

    ``reject_lines`` are DuckDB's numbers of its rejected records: the header is 1 and each
    later record *or blank line* one more, so they are line numbers exactly when every
    record is one line and no line is blank, which :func:`count_lines` tells cheaply.
    """
    rejected = np.asarray(reject_lines, dtype=np.int64)
    records = good + len(rejected)
    try:
        lines = count_lines(path)
    except (OSError, EOFError) as exc:
        raise IngestError(f"{path}: cannot be read ({exc}); is it a valid gzip file?") from exc
    ordinals = np.arange(1, good + 1, dtype=np.int64)
    if lines != records + 1:
        try:
            layout = record_lines(path)
        except csv.Error as exc:
            layout = None
            log.warning("%s: reading its line structure failed (%s)", path, exc)
        items = rejected - 2  # DuckDB's item number -> position after the header
        if (
            layout is not None
            and len(layout.records) == records
            and (items < len(layout.items)).all()
            and not layout.blank[items].any()
        ):
            is_reject = np.zeros(len(layout.items), dtype=bool)
            is_reject[items] = True
            kept = ~layout.blank & ~is_reject
            return layout.items[kept] - 1, layout.items[items] - 1, layout.blank_lines - 1
        log.warning(
            "%s: its records could not be matched to lines; rows are numbered by record", path
        )
    # One line per record: record k after the header is line k + 1 (row k).
    reject_rows = rejected - 1
    shifted = reject_rows - np.arange(len(reject_rows))
    good_rows = ordinals + np.searchsorted(shifted, ordinals, side="right")
    return good_rows, reject_rows, np.empty(0, dtype=np.int64)


def stage_parquet(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> tuple[list[str], int]:
    """Stage a Parquet file as the temp view ``table`` with a 1-based ``_row``.

    A view, not a copy: Parquet is typed and cheap to read again, and a copy of a 100M-row
    file (sorted by ``_row``) was the first of several full copies spilled to disk.
    """
    try:
        # A view cannot take a prepared parameter: the path is quoted as a literal.
        literal = "'" + str(path).replace("'", "''") + "'"
        con.execute(
            f"""
            create or replace temp view {table} as
            select file_row_number + 1 as _row, * exclude (file_row_number)
            from read_parquet({literal}, file_row_number = true)
            """
        )
        con.execute(f"select * from {table} limit 0")  # unreadable files fail here
    except duckdb.Error as exc:
        raise IngestError(
            f"{path}: cannot be read as Parquet ({str(exc).splitlines()[0]})."
        ) from exc
    header = [r[0] for r in con.execute(f"describe {table}").fetchall() if r[0] != "_row"]
    create_rejects(con, table)
    return header, 0


def create_rejects(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create (empty) the temp ``{table}_rejects``: rows refused before typing, with their
    source row, rule, detail and values as received."""
    con.execute(
        f"create or replace temp table {table}_rejects "
        "(source_row BIGINT, rule VARCHAR, detail VARCHAR, raw_values VARCHAR)"
    )


def write_parquet_atomically(frame: pl.DataFrame, path: Path) -> None:
    """Write a landing file beside ``path`` and rename it, so readers never see half a file."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    frame.write_parquet(partial)
    os.replace(partial, path)
