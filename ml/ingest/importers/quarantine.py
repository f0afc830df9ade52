"""Lines an importer could not turn into contract rows, handed to the ingest's quarantine.

An importer that reads a public format (JSON lines, a ragged CSV) meets lines that never
become a contract row: malformed JSON, a record with more fields than the header, an exact
duplicate. Dropping them would break ``received = loaded + quarantined``, so the importer
writes them to an *import quarantine file* beside the entity's rows::

    OUT/<entity>.parquet                        rows for the ingest to validate and load
    OUT/<entity>/import.quarantine.parquet      lines the importer refused, with the rule

The ingest discovers the second file like any ``<entity>/*.parquet`` landing file and, through
:func:`stage_import_quarantine`, loads nothing from it and puts every line in
``raw.quarantine`` (entity, rule, detail, ``source_row`` = the line's position in the
original export, ``raw_values`` = the line as read). Its manifest entry says
``received = 0 loaded + N quarantined``, so per source file::

    source lines = rows in <entity>.parquet + lines in <entity>/import.quarantine.parquet

and the ingest's own ``received = loaded + quarantined`` covers the rest.

``source_row`` is the 1-based position of the record in the source file, header not
counted: the line number of a JSON-lines file, the data-record number of a CSV (its line
number minus one when no field spans lines). ``detail`` names the source file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

IMPORT_QUARANTINE_FILE = "import.quarantine.parquet"
# Stored raw line text is cut here (raw.quarantine is for reading, not re-parsing).
MAX_RAW_CHARS = 20_000
SCHEMA = {
    "source_row": pl.Int64(),
    "rule": pl.String(),
    "detail": pl.String(),
    "raw_values": pl.String(),
}


@dataclass(frozen=True)
class RefusedLine:
    """One source line an importer could not turn into a row.

    Parameters
    ----------
    source_row : int
        1-based record position in the source file (header not counted).
    rule : str
        The rule it broke, named like the ingest's rules where one fits
        (``missing_value``, ``bad_integer``, ``unparseable_timestamp``, ``text_too_long``,
        ``wrong_column_count``, ``malformed_row``) or importer-specific
        (``malformed_json``, ``exact_duplicate``).
    detail : str
        What was wrong, in words.
    raw_values : str
        The line as read (JSON text, or the CSV line).
    """

    source_row: int
    rule: str
    detail: str
    raw_values: str


def refused_frame(lines: list[RefusedLine], source_name: str) -> pl.DataFrame:
    """Return refused lines as the import-quarantine table, the file name in ``detail``.

    Parameters
    ----------
    lines : list of RefusedLine
        In any order; the result is sorted by ``source_row``.
    source_name : str
        File name of the export (``All_Beauty_5.json.gz``), prefixed to each detail.
    """
    rows = [
        (
            line.source_row,
            line.rule,
            f"{source_name} record {line.source_row}: {line.detail}",
            line.raw_values[:MAX_RAW_CHARS],
        )
        for line in sorted(lines, key=lambda refused: refused.source_row)
    ]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def write_import_quarantine(frame: pl.DataFrame, out_dir: Path, entity: str) -> Path | None:
    """Write ``OUT/<entity>/import.quarantine.parquet``, or remove a stale one if none refused.

    Parameters
    ----------
    frame : polars.DataFrame
        Output of :func:`refused_frame`.
    out_dir : Path
        The landing folder the importer writes.
    entity : str
        Contract entity the lines would have become (``reviews``, ``order_lines``).

    Returns
    -------
    Path or None
        The file written, or None when nothing was refused.
    """
    target = Path(out_dir) / entity / IMPORT_QUARANTINE_FILE
    if frame.height == 0:
        # A file left from an earlier import of another export would be ingested again.
        target.unlink(missing_ok=True)
        if target.parent.is_dir() and not any(target.parent.iterdir()):
            target.parent.rmdir()
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    frame.select(list(SCHEMA)).cast(SCHEMA).write_parquet(partial)
    os.replace(partial, target)
    return target


def is_import_quarantine(path: Path) -> bool:
    """True for an import-quarantine landing file (``<entity>/import.quarantine.parquet``)."""
    return Path(path).name == IMPORT_QUARANTINE_FILE


def stage_import_quarantine(
    con: duckdb.DuckDBPyConnection, path: Path, entity_columns: list[str], table: str
) -> tuple[list[str], int]:
    """Stage an import-quarantine file for the ingest: no rows to load, every line refused.

    Creates the temp tables the ingest's loader expects: ``table`` (empty, the entity's
    columns as VARCHAR plus ``_row``) and ``{table}_rejects`` (``source_row, rule, detail,
    raw_values``) holding the file's lines.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The ingest's connection (inside its transaction).
    path : Path
        The import-quarantine Parquet file.
    entity_columns : list of str
        The entity's contract columns (so the ingest's validation finds its header).
    table : str
        Name of the staging table.

    Returns
    -------
    header, rejected : list of str, int
        The header the ingest validates (the entity's columns) and the number of lines.

    Raises
    ------
    ValueError
        If the file is not an import-quarantine table (the message names the columns).
    """
    columns = ", ".join(f'"{name}" VARCHAR' for name in entity_columns)
    con.execute(f"create or replace temp table {table} (_row BIGINT, {columns})")
    try:
        con.execute(
            f"""
            create or replace temp table {table}_rejects as
            select source_row::BIGINT as source_row, rule::VARCHAR as rule,
                   detail::VARCHAR as detail, raw_values::VARCHAR as raw_values
            from read_parquet(?)
            order by source_row
            """,
            [str(path)],
        )
    except duckdb.Error as exc:
        raise ValueError(
            f"{path}: not an import-quarantine file (expected columns "
            f"{', '.join(SCHEMA)}; {str(exc).splitlines()[0]}); re-run the importer"
        ) from exc
    rejected = con.execute(f"select count(*) from {table}_rejects").fetchall()[0][0]
    return list(entity_columns), rejected


def json_line(values: dict) -> str:
    """A dict as one JSON line (for ``raw_values`` of lines refused after parsing)."""
    return json.dumps(values, ensure_ascii=False, sort_keys=True, default=str)
