"""What ``affinity query`` prints: DuckDB's box renderer for people, CSV or JSON for scripts.

The table view shows at most ``limit`` rows (default :data:`DEFAULT_TABLE_ROWS`) in
DuckDB's own box renderer, fitted to the terminal (or :data:`DEFAULT_WIDTH` columns
when there is none): wide results elide middle columns with ``…`` instead of wrapping
every cell. ``--csv`` and ``--json`` print every row unless ``--limit`` says otherwise,
with nested values (lists, maps) as JSON and dates as ISO 8601.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import shutil
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

import duckdb
import pyarrow as pa

from ml.config import paths
from ml.warehouse import connect

FORMATS = ("table", "csv", "json")
DEFAULT_TABLE_ROWS = 20
# Width of the table when stdout is not a terminal (piped, redirected, CI logs).
DEFAULT_WIDTH = 120
_FETCH_BATCH = 10_000


def resolve_limit(limit: int | None, fmt: str) -> int | None:
    """Rows to print: ``None`` means all.

    Parameters
    ----------
    limit : int or None
        What the user asked for; ``0`` means no limit, ``None`` the format's default
        (:data:`DEFAULT_TABLE_ROWS` for the table, everything for CSV and JSON).
    fmt : str
        One of :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}: use one of {', '.join(FORMATS)}")
    if limit is not None and limit < 0:
        raise ValueError(f"--limit must be 0 (no limit) or a positive number of rows, not {limit}")
    if limit is None:
        return DEFAULT_TABLE_ROWS if fmt == "table" else None
    return None if limit == 0 else limit


def terminal_width() -> int:
    """Columns of the terminal on stdout, or :data:`DEFAULT_WIDTH` when there is none."""
    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns


def print_query(
    sql: str,
    out: TextIO,
    *,
    fmt: str = "table",
    limit: int | None = None,
    width: int | None = None,
    snapshot: Path | str | None = None,
) -> int:
    """Run ``sql`` read-only on the analyst snapshot and print the result to ``out``.

    Parameters
    ----------
    sql : str
        One SQL statement.
    out : text stream
        Where the result goes (``sys.stdout`` for the command).
    fmt : {"table", "csv", "json"}
    limit : int, optional
        See :func:`resolve_limit`.
    width : int, optional
        Table width in characters (default: :func:`terminal_width`).
    snapshot : path-like, optional
        DuckDB file to query (default: ``$AFFINITY_HOME/published/affinity.duckdb``).

    Returns
    -------
    int
        Number of rows printed.

    Raises
    ------
    FileNotFoundError
        Nothing was published yet.
    duckdb.Error
        The statement failed (syntax, unknown table, or a write on the read-only file).
    """
    rows_limit = resolve_limit(limit, fmt)
    with connect(snapshot or paths().snapshot, read_only=True) as con:
        relation = con.sql(sql)
        if relation is None:  # a statement without a result (SET, PRAGMA ...)
            return 0
        if fmt == "table":
            return _print_table(con, relation, out, rows_limit, width or terminal_width())
        columns = list(relation.columns)
        rows = _rows(relation, rows_limit)
        if fmt == "csv":
            return write_csv(columns, rows, out)
        return write_json(columns, rows, out)


def _print_table(
    con: duckdb.DuckDBPyConnection,
    relation: duckdb.DuckDBPyRelation,
    out: TextIO,
    limit: int | None,
    width: int,
) -> int:
    # One execution: fetch one row more than shown to know whether the result goes on.
    table = (relation if limit is None else relation.limit(limit + 1)).to_arrow_table()
    more = limit is not None and table.num_rows > limit
    shown = table.slice(0, limit) if more else table
    out.write(render_box(con, shown, width))
    if more:
        out.write(f"(first {limit} rows shown; more exist: --limit N, 0 for all; --csv/--json)\n")
    return shown.num_rows


def render_box(con: duckdb.DuckDBPyConnection, table: Any, width: int) -> str:
    """Return DuckDB's box rendering of an Arrow table, every row shown, ``width`` wide."""
    buffer = io.StringIO()
    # show() prints through Python's sys.stdout; capture it to write where asked.
    with contextlib.redirect_stdout(buffer):
        con.from_arrow(table).show(max_width=width, max_rows=max(table.num_rows, 1))
    return buffer.getvalue()


def _rows(relation: duckdb.DuckDBPyRelation, limit: int | None) -> Iterator[tuple]:
    """Stream the rows as Python values, one Arrow batch at a time (one execution)."""
    limited = relation if limit is None else relation.limit(limit)
    reader = limited.to_arrow_reader(_FETCH_BATCH)
    # Arrow gives a MAP as a list of (key, value) pairs: make it a dict again.
    maps = [pa.types.is_map(field.type) for field in reader.schema]
    for batch in reader:
        columns = [
            [None if v is None else dict(v) for v in column] if is_map else column
            for column, is_map in zip((c.to_pylist() for c in batch.columns), maps, strict=True)
        ]
        yield from zip(*columns, strict=True)


def plain(value: Any) -> Any:
    """A JSON-ready form of a DuckDB value: ISO dates, numbers, lists and dicts; NaN -> None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def csv_cell(value: Any) -> Any:
    """A CSV cell: empty for NULL, ``true``/``false``, nested values as JSON."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def write_csv(columns: Sequence[str], rows: Iterator[tuple], out: TextIO) -> int:
    """Write a header and the rows as RFC 4180 CSV; return the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
        count += 1
    return count


def write_json(columns: Sequence[str], rows: Iterator[tuple], out: TextIO) -> int:
    """Write a JSON array of objects, one row per line; return the number of rows."""
    out.write("[")
    count = 0
    for row in rows:
        record = {name: plain(value) for name, value in zip(columns, row, strict=True)}
        out.write(("\n" if count == 0 else ",\n") + json.dumps(record, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
