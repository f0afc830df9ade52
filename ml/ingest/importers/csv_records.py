"""Read an export CSV record by record, refusing malformed records instead of the whole file.

polars' CSV reader stops at the first record with more fields than the header (a
``ComputeError``) and pads short ones with NULLs; one bad line must not refuse a file of
half a million good ones, and a short line must not pass as a row with missing values. DuckDB's
strict CSV parser (the one the ingest uses) reports each bad record with its position and
text, so bad records become :class:`~ml.ingest.importers.quarantine.RefusedLine` s and the rest load.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ml.ingest.importers.quarantine import RefusedLine

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
# Windows exports are often not UTF-8; tried in order after UTF-8 fails.
FALLBACK_ENCODINGS = ("cp1252", "latin-1")
RECORD = "_record"
_REJECT_RULES = {
    "TOO MANY COLUMNS": "wrong_column_count",
    "MISSING COLUMNS": "wrong_column_count",
    "INVALID ENCODING": "invalid_utf8",
}


def read_utf8(path: Path) -> bytes:
    """Return a file's content as UTF-8 bytes: gunzipped (by content), BOM removed, re-encoded.

    Raises
    ------
    ValueError
        If the file cannot be read at all (a truncated or corrupt gzip, binary content).
    """
    data = Path(path).read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(
                f"{path}: cannot be decompressed ({exc}); is the gzip complete?"
            ) from exc
    if b"\x00" in data[:65536]:
        raise ValueError(f"{path}: binary content (NUL bytes), not a text export")
    data = data.removeprefix(b"\xef\xbb\xbf")  # Excel's UTF-8 byte-order mark
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError:
        pass
    for encoding in FALLBACK_ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        logger.warning("%s is not UTF-8; decoded as %s", path, encoding)
        return text.encode("utf-8")
    raise AssertionError("latin-1 decodes any byte string")  # pragma: no cover


def unique_header(names: list[str]) -> list[str]:
    """Header names made usable: blanks become ``column_<i>`` (1-based), repeats get ``_<n>``."""
    seen: dict[str, int] = {}
    result = []
    for position, name in enumerate(names, start=1):
        name = name.strip() or f"column_{position}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        result.append(name)
    return result


def read_csv_records(path: Path, data: bytes) -> tuple[pl.DataFrame, list[RefusedLine]]:
    """Parse CSV bytes into string columns, setting malformed records aside.

    Parameters
    ----------
    path : Path
        The export (for messages only).
    data : bytes
        Its UTF-8 content (see :func:`read_utf8`), header first.

    Returns
    -------
    records : polars.DataFrame
        One row per well-formed record in file order: ``_record`` (1-based position in the
        file, header not counted) and every header column as a string, as read (an empty field is NULL).
    refused : list of RefusedLine
        Records with more or fewer fields than the header (``wrong_column_count``) or that
        cannot be parsed (``malformed_row``, e.g. an unterminated quote), with their
        position and text.

    Raises
    ------
    ValueError
        If there is no header line or the header cannot be parsed.
    """
    first_line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if not first_line.strip():
        raise ValueError(f"{path}: the file is empty or its first line is blank; expected a header")
    header = unique_header(next(csv.reader(io.StringIO(first_line.decode("utf-8")))))
    positional = {f"c{i}": "VARCHAR" for i in range(len(header))}
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "export.csv"
        copy.write_bytes(data)
        con = duckdb.connect()
        try:
            records = con.sql(
                """
                select row_number() over () as _ordinal, *
                from read_csv(?, header = true, auto_detect = false, columns = ?, delim = ',',
                              quote = '"', escape = '"', all_varchar = true, strict_mode = true,
                              store_rejects = true, rejects_table = 'rejects',
                              rejects_scan = 'reject_scans', max_line_size = 20000000)
                """,
                params=[str(copy), positional],
            ).to_arrow_table()
            rejects = con.execute(
                # One reject per record: a short record is reported once per missing column.
                "select line, first(error_type::varchar order by column_idx), first(csv_line), "
                "first(error_message order by column_idx) from rejects group by line order by line"
            ).fetchall()
        except duckdb.Error as exc:
            raise ValueError(
                f"{path}: cannot be parsed as CSV ({str(exc).splitlines()[0]})"
            ) from exc
        finally:
            con.close()
    # DuckDB numbers records with the header as 1; the k-th good record skips the rejects.
    records = pl.from_arrow(records)
    rejected = np.array([line - 1 for line, *_ in rejects], dtype=np.int64)
    ordinals = records["_ordinal"].to_numpy().astype(np.int64)
    shifted = rejected - np.arange(len(rejected))
    record_numbers = ordinals + np.searchsorted(shifted, ordinals, side="right")
    records = records.drop("_ordinal").rename(dict(zip(positional, header, strict=True)))
    records = records.insert_column(0, pl.Series(RECORD, record_numbers))
    refused = [
        RefusedLine(int(line - 1), _REJECT_RULES.get(kind, "malformed_row"), message, raw or "")
        for line, kind, raw, message in rejects
    ]
    if refused:
        logger.warning("%s: %d malformed record(s) set aside for quarantine", path, len(refused))
    return records, refused
