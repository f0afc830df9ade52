"""Typed load of landing files into the warehouse ``raw`` schema, with quarantine.

Every row of every file ends in exactly one place: its ``raw.<entity>`` table, or
``raw.quarantine`` with the rule it broke. ``raw.load_manifest`` records each file
(checksum, received / loaded / quarantined rows), and the ingest re-counts the tables
after loading: ``received = loaded + quarantined`` or the batch fails.

Landing layout: ``DIR/<entity>.{parquet,csv,csv.gz}`` or ``DIR/<entity>/*.{...}`` for the
entities of :mod:`ml.contract`. ``DIR/<entity>/import.quarantine.parquet`` (written by an
importer, see :mod:`ml.importers.quarantine`) holds source lines the importer refused: all of
them go to ``raw.quarantine``, none loads. A file is identified by its path relative to ``DIR``:

* same path, same checksum as the current manifest entry -> skipped (no-op re-run);
* same path, new checksum -> a new version: its old rows (loaded and quarantined) are
  replaced, never duplicated;
* a file that cannot be read at all (empty, binary, truncated gzip, missing required
  column) raises :class:`IngestError` naming the file and the problem, and the whole
  batch is rolled back: the warehouse stays as it was.

Rules (first failing rule wins, in this order): ``malformed_row`` / ``wrong_column_count``
/ ``invalid_utf8`` (CSV rows the parser rejects), ``missing_value``, ``bad_integer`` /
``bad_number`` / ``bad_boolean`` / ``unparseable_timestamp``, ``text_too_long``,
``future_timestamp``, entity rules (``negative_price``, ``zero_quantity``,
``unknown_event_type``, ``unknown_order_status``, ``rating_out_of_range``,
``bad_control_share``, ``bad_time_window``, ``unknown_target_type``,
``negative_max_audience``), ``duplicate_key`` (the first occurrence loads), then
``orphan_reference`` (a reference to a row that is not loaded).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np

from ml.contract import (
    CAMPAIGN_TARGET_TYPES,
    ENTITIES,
    EVENT_TYPES,
    LOAD_MANIFEST_DDL,
    MAX_TEXT_CHARS,
    ORDER_STATUSES,
    QUARANTINE_DDL,
    Entity,
    raw_table_ddl,
)
from ml.importers.quarantine import is_import_quarantine, stage_import_quarantine
from ml.warehouse import connect

log = logging.getLogger(__name__)

SUFFIXES = (".parquet", ".csv", ".csv.gz")
# Tolerance for clocks of source systems slightly ahead of ours.
FUTURE_TOLERANCE = timedelta(days=1)

_TYPE_RULES = {
    "INTEGER": "bad_integer",
    "BIGINT": "bad_integer",
    "DOUBLE": "bad_number",
    "BOOLEAN": "bad_boolean",
    "TIMESTAMP": "unparseable_timestamp",
}
_CSV_REJECT_RULES = {
    "MISSING COLUMNS": "wrong_column_count",
    "TOO MANY COLUMNS": "wrong_column_count",
    "INVALID ENCODING": "invalid_utf8",
}


class IngestError(RuntimeError):
    """A landing file cannot be loaded at all; the batch was rolled back."""


@dataclass
class FileReport:
    """What happened to one landing file."""

    source_file: str
    entity: str
    checksum: str
    received_rows: int = 0
    loaded_rows: int = 0
    quarantined_rows: int = 0
    skipped: bool = False
    rules: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestReport:
    """The outcome of one ingest batch."""

    batch_id: str
    files: list[FileReport]
    seconds: float

    @property
    def received_rows(self) -> int:
        return sum(f.received_rows for f in self.files)

    @property
    def loaded_rows(self) -> int:
        return sum(f.loaded_rows for f in self.files)

    @property
    def quarantined_rows(self) -> int:
        return sum(f.quarantined_rows for f in self.files)

    def summary(self) -> str:
        lines = [
            f"batch {self.batch_id}: {len(self.files)} file(s), {self.received_rows:,} received, "
            f"{self.loaded_rows:,} loaded, {self.quarantined_rows:,} quarantined "
            f"in {self.seconds:.1f}s"
        ]
        for f in self.files:
            state = (
                "unchanged, skipped"
                if f.skipped
                else (
                    f"{f.received_rows:,} received = {f.loaded_rows:,} loaded + "
                    f"{f.quarantined_rows:,} quarantined"
                )
            )
            rules = ", ".join(f"{k}: {v:,}" for k, v in sorted(f.rules.items()))
            lines.append(
                f"  {f.source_file} [{f.entity}]: {state}" + (f" ({rules})" if rules else "")
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- discovery


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


# --------------------------------------------------------------------------- reading


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
    if b"\x00" in head:
        raise IngestError(f"{path}: binary content (NUL bytes), not a CSV text file.")
    first_line = head.splitlines()[0]
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path}: the header line is not valid UTF-8 ({exc}).") from exc
    return next(csv.reader(io.StringIO(text)))


def _stage_csv(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> tuple[list[str], int]:
    """Load a CSV as VARCHAR columns into temp ``table`` with ``_row``; quarantine parser rejects.

    Returns the header names and the number of rows the parser rejected (their
    quarantine rows are staged in ``{table}_rejects``).
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
    # Record numbers of rejected rows (header is line 1), then the k-th surviving record.
    rejected_rows = np.array([line - 1 for line, *_ in rejects], dtype=np.int64)
    good = con.execute(f"select count(*) from {table}_read").fetchall()[0][0]
    ordinals = np.arange(1, good + 1, dtype=np.int64)
    if len(rejected_rows):
        shifted = rejected_rows - np.arange(len(rejected_rows))
        row_numbers = ordinals + np.searchsorted(shifted, ordinals, side="right")
    else:
        row_numbers = ordinals
    con.register("_row_map", {"_ordinal": ordinals, "_row": row_numbers})
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
    con.execute(
        f"create or replace temp table {table}_rejects "
        "(source_row BIGINT, rule VARCHAR, detail VARCHAR, raw_values VARCHAR)"
    )
    if rejects:
        con.executemany(
            f"insert into {table}_rejects values (?, ?, ?, ?)",
            [
                (line - 1, _CSV_REJECT_RULES.get(kind, "malformed_row"), message, raw)
                for line, kind, raw, message in rejects
            ],
        )
    return header, len(rejects)


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> tuple[list[str], int]:
    """Load a Parquet file into temp ``table`` with a 1-based ``_row``."""
    try:
        con.execute(
            f"""
            create or replace temp table {table} as
            select file_row_number + 1 as _row, * exclude (file_row_number)
            from read_parquet(?, file_row_number = true)
            order by _row
            """,
            [str(path)],
        )
    except duckdb.Error as exc:
        raise IngestError(
            f"{path}: cannot be read as Parquet ({str(exc).splitlines()[0]})."
        ) from exc
    header = [r[0] for r in con.execute(f"describe {table}").fetchall() if r[0] != "_row"]
    con.execute(
        f"create or replace temp table {table}_rejects "
        "(source_row BIGINT, rule VARCHAR, detail VARCHAR, raw_values VARCHAR)"
    )
    return header, 0


# --------------------------------------------------------------------------- validation


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _typed_expr(dtype: str, source: str) -> str:
    """SQL turning a staged value (any type) into the contract type, NULL if unparseable."""
    text = f"nullif(trim({source}::varchar), '')"
    if dtype == "VARCHAR":
        return f"nullif({source}::varchar, '')"
    if dtype == "BOOLEAN":
        return (
            f"case lower({text}) when 'yes' then true when 'y' then true when 'no' then false "
            f"when 'n' then false else try_cast({text} as boolean) end"
        )
    if dtype in ("INTEGER", "BIGINT"):
        # Accept '3.0' (spreadsheet exports) but not '3.5': DuckDB's own cast would round
        # '2.5' to 3, silently changing a quantity, so integrality is checked first.
        number = f"try_cast({text} as double)"
        return (
            f"case when {number} = floor({number}) then coalesce(try_cast({text} as {dtype}), "
            f"try_cast({number} as {dtype})) end"
        )
    return f"try_cast({text} as {dtype})"


def _entity_rules(entity: Entity) -> list[tuple[str, str]]:
    """Business rules as ``(rule, SQL condition true when broken)`` over typed columns."""
    rules = {
        "products": [("negative_price", "price < 0")],
        "orders": [("unknown_order_status", f"status not in ({_sql_list(ORDER_STATUSES)})")],
        "order_lines": [("negative_price", "unit_price < 0"), ("zero_quantity", "quantity = 0")],
        "events": [("unknown_event_type", f"event_type not in ({_sql_list(EVENT_TYPES)})")],
        "reviews": [("rating_out_of_range", "rating not between 1 and 5")],
        "campaigns": [
            ("unknown_target_type", f"target_type not in ({_sql_list(CAMPAIGN_TARGET_TYPES)})"),
            ("bad_control_share", "control_share not between 0 and 1"),
            ("negative_max_audience", "max_audience < 0"),
            ("bad_time_window", "ends_at < starts_at"),
        ],
    }
    return rules.get(entity.name, [])


# Columns normalised on load: enumerations compare lower-case and trimmed.
_NORMALISED = {("orders", "status"), ("events", "event_type"), ("campaigns", "target_type")}


def _validate(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    stage: str,
    header: list[str],
    source_file: str,
    future_cutoff: datetime,
) -> None:
    """Create temp ``{stage}_typed``: typed contract columns plus ``_rule`` and ``_detail``.

    One projection computes the typed value of every column and, beside it, whether the
    source value was present (``_p_<col>``) and its length (``_len_<col>``), so every rule
    is a condition over that projection.
    """
    by_lower = {h.strip().lower(): h for h in header}
    select, flags, checks = [], [], []
    for col in entity.columns:
        source_name = by_lower.get(col.name)
        if source_name is None:
            default = col.default if col.default is not None else "null"
            select.append(f"cast({default} as {col.dtype}) as {col.name}")
            continue
        source = f"s.{_quote(source_name)}"
        typed = _typed_expr(col.dtype, source)
        if (entity.name, col.name) in _NORMALISED:
            typed = f"lower(trim({typed}))"
        select.append(f"{typed} as {col.name}")
        flags.append(f"nullif(trim({source}::varchar), '') is not null as _p_{col.name}")
        if not col.nullable:
            checks.append(("missing_value", f"not _p_{col.name}", col.name))
        if col.dtype in _TYPE_RULES:
            checks.append(
                (_TYPE_RULES[col.dtype], f"_p_{col.name} and {col.name} is null", col.name)
            )
        if col.dtype == "VARCHAR":
            flags.append(f"length({source}::varchar) as _len_{col.name}")
            checks.append(("text_too_long", f"_len_{col.name} > {MAX_TEXT_CHARS}", col.name))
    cutoff = f"TIMESTAMP '{future_cutoff:%Y-%m-%d %H:%M:%S}'"
    for col_name in entity.time_columns:
        if col_name in by_lower:
            checks.append(("future_timestamp", f"{col_name} > {cutoff}", col_name))
    for rule, broken in _entity_rules(entity):
        checks.append((rule, f"coalesce({broken}, false)", broken))

    rule_expr = "case " + " ".join(f"when {c} then '{r}'" for r, c, _ in checks) + " end"
    detail_expr = (
        "case " + " ".join(f"when {c} then {_sql_list([d])}" for _, c, d in checks) + " end"
    )
    con.execute(
        f"create or replace temp table {stage}_cast as "
        f"select s._row, {', '.join(select + flags)} from {stage} s"
    )
    con.execute(
        f"""
        create or replace temp table {stage}_typed as
        select _row, {", ".join(entity.column_names)}, {rule_expr} as _rule,
               {detail_expr} as _detail
        from {stage}_cast
        """
    )
    con.execute(f"drop table {stage}_cast")
    _mark_duplicates(con, entity, stage, source_file)
    _mark_orphans(con, entity, stage)


def _mark_duplicates(
    con: duckdb.DuckDBPyConnection, entity: Entity, stage: str, source_file: str
) -> None:
    """Flag repeats of a primary key: within the file (after the first) and across files."""
    key = ", ".join(entity.primary_key)
    join_on = " and ".join(f"t.{k} = r.{k}" for k in entity.primary_key)
    con.execute(
        f"""
        update {stage}_typed set _rule = 'duplicate_key', _detail = '{key}'
        where _rule is null and _row in (
            select _row from (
                select _row, row_number() over (partition by {key} order by _row) as copy_no
                from {stage}_typed where _rule is null
            ) where copy_no > 1
            union all
            select t._row from {stage}_typed t
            join raw.{entity.name} r on {join_on}
            where t._rule is null and r._source_file <> ?
        )
        """,
        [source_file],
    )


def _mark_orphans(con: duckdb.DuckDBPyConnection, entity: Entity, stage: str) -> None:
    """Flag references to rows not loaded in the parent table."""
    for fk in entity.foreign_keys:
        con.execute(
            f"""
            update {stage}_typed set _rule = 'orphan_reference',
                _detail = '{fk.column} -> {fk.parent}.{fk.parent_column}'
            where _rule is null and {fk.column} is not null
              and {fk.column} not in (select {fk.parent_column} from raw.{fk.parent}
                                      where {fk.parent_column} is not null)
            """
        )


# --------------------------------------------------------------------------- loading


def _load_file(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    path: Path,
    report: FileReport,
    batch_id: str,
    future_cutoff: datetime,
) -> None:
    """Stage, validate and load one file inside the caller's transaction."""
    stage = f"stage_{entity.name}"
    if is_import_quarantine(path):  # lines an importer refused: quarantined, none loaded
        header, rejected = stage_import_quarantine(con, path, entity.column_names, stage)
    elif path.name.endswith(".parquet"):
        header, rejected = _stage_parquet(con, path, stage)
    else:
        header, rejected = _stage_csv(con, path, stage)
    present = {h.strip().lower() for h in header}
    missing = [c for c in entity.required_columns if c not in present]
    if missing:
        raise IngestError(
            f"{path}: missing required column(s) {', '.join(missing)} for entity "
            f"'{entity.name}'; the header has: {', '.join(header)}."
        )
    # Columns outside the contract are not loaded: say so, never drop data silently.
    ignored = [h for h in header if h.strip().lower() not in entity.column_names]
    if ignored:
        log.warning(
            "%s: column(s) not in the %s contract ignored: %s",
            report.source_file,
            entity.name,
            ", ".join(ignored),
        )
    _validate(con, entity, stage, header, report.source_file, future_cutoff)
    # The row as received (original column names and values), for the quarantine record.
    raw_struct = "struct_pack(" + ", ".join(f"{_quote(h)} := s.{_quote(h)}" for h in header) + ")"

    # A new version of a file replaces everything the previous version produced.
    con.execute(f"delete from raw.{entity.name} where _source_file = ?", [report.source_file])
    con.execute("delete from raw.quarantine where source_file = ?", [report.source_file])

    cols = ", ".join(entity.column_names)
    con.execute(
        f"""
        insert into raw.{entity.name}
        select {cols}, ? as _source_file, _row as _source_row, ? as _batch_id
        from {stage}_typed where _rule is null order by _row
        """,
        [report.source_file, batch_id],
    )
    con.execute(
        f"""
        insert into raw.quarantine
        select '{entity.name}', ?, t._row, t._rule, t._detail, to_json({raw_struct})::varchar, ?
        from {stage}_typed t join {stage} s using (_row)
        where t._rule is not null
        union all
        select '{entity.name}', ?, source_row, rule, detail, raw_values, ? from {stage}_rejects
        order by 3
        """,
        [report.source_file, batch_id, report.source_file, batch_id],
    )
    staged = con.execute(f"select count(*) from {stage}").fetchall()[0][0]
    report.received_rows = staged + rejected
    for rule, count in con.execute(
        f"select _rule, count(*) from {stage}_typed where _rule is not null group by 1 "
        f"union all select rule, count(*) from {stage}_rejects group by 1"
    ).fetchall():
        report.rules[rule] = report.rules.get(rule, 0) + count
    for suffix in ("", "_typed", "_rejects"):
        con.execute(f"drop table if exists {stage}{suffix}")


def _reconcile(con: duckdb.DuckDBPyConnection, report: FileReport, batch_id: str) -> None:
    """Re-count what landed and fail unless received = loaded + quarantined."""
    report.loaded_rows = con.execute(
        f"select count(*) from raw.{report.entity} where _source_file = ? and _batch_id = ?",
        [report.source_file, batch_id],
    ).fetchall()[0][0]
    report.quarantined_rows = con.execute(
        "select count(*) from raw.quarantine where source_file = ? and _batch_id = ?",
        [report.source_file, batch_id],
    ).fetchall()[0][0]
    if report.received_rows != report.loaded_rows + report.quarantined_rows:
        raise IngestError(
            f"{report.source_file}: received {report.received_rows} rows but loaded "
            f"{report.loaded_rows} + quarantined {report.quarantined_rows}; rows would be lost, "
            "the batch was rolled back."
        )


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``raw`` schema, its entity tables, quarantine and manifest if missing."""
    con.execute("create schema if not exists raw")
    for entity in ENTITIES.values():
        con.execute(raw_table_ddl(entity))
    con.execute(QUARANTINE_DDL)
    con.execute(LOAD_MANIFEST_DDL)


def ingest(
    landing_dir: Path | str,
    *,
    warehouse: Path | str | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Load every contract file under ``landing_dir`` into the warehouse ``raw`` schema.

    Parameters
    ----------
    landing_dir : path-like
        Folder with ``<entity>.parquet|.csv|.csv.gz`` files or ``<entity>/`` folders.
    warehouse : path-like, optional
        DuckDB file; defaults to ``$AFFINITY_HOME/warehouse.duckdb``.
    now : datetime, optional
        Reference time for the ``future_timestamp`` rule (default: the wall clock, UTC).

    Returns
    -------
    IngestReport
        Per-file counts; ``received = loaded + quarantined`` holds for every file.

    Raises
    ------
    IngestError
        If a file cannot be read at all or the counts do not reconcile; nothing is
        written in that case.
    """
    started = time.perf_counter()
    landing_dir = Path(landing_dir).resolve()
    files = discover(landing_dir)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    future_cutoff = now + FUTURE_TOLERANCE

    sources = [
        (entity, path, path.relative_to(landing_dir).as_posix(), file_checksum(path))
        for entity, path in files
    ]
    batch_id = hashlib.sha256(
        "".join(f"{name}:{checksum};" for _, _, name, checksum in sources).encode()
    ).hexdigest()[:16]
    reports: list[FileReport] = []

    with connect(warehouse) as con:
        ensure_raw_schema(con)
        con.execute("begin transaction")
        try:
            for entity, path, source_file, checksum in sources:
                report = FileReport(source_file, entity.name, checksum)
                reports.append(report)
                current = con.execute(
                    "select received_rows, loaded_rows, quarantined_rows from raw.load_manifest "
                    "where source_file = ? and checksum = ? and is_current",
                    [source_file, checksum],
                ).fetchall()
                if current:
                    report.skipped = True
                    report.received_rows, report.loaded_rows, report.quarantined_rows = current[0]
                    log.info("%s unchanged (checksum %s), skipped", source_file, checksum[:12])
                    continue
                file_started = time.perf_counter()
                _load_file(con, entity, path, report, batch_id, future_cutoff)
                _reconcile(con, report, batch_id)
                con.execute(
                    "update raw.load_manifest set is_current = false where source_file = ?",
                    [source_file],
                )
                con.execute(
                    "insert into raw.load_manifest values (?, ?, ?, ?, ?, ?, ?, ?, ?, true)",
                    [
                        source_file,
                        entity.name,
                        str(path),
                        checksum,
                        report.received_rows,
                        report.loaded_rows,
                        report.quarantined_rows,
                        now,
                        batch_id,
                    ],
                )
                seconds = time.perf_counter() - file_started
                log.info(
                    "%s: %d received, %d loaded, %d quarantined in %.1fs (%.0f rows/s)",
                    source_file,
                    report.received_rows,
                    report.loaded_rows,
                    report.quarantined_rows,
                    seconds,
                    report.received_rows / max(seconds, 1e-9),
                )
            check_manifest(con)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return IngestReport(batch_id, reports, time.perf_counter() - started)


def check_manifest(con: duckdb.DuckDBPyConnection) -> None:
    """Verify ``received = loaded + quarantined`` for every current file against the tables.

    Raises
    ------
    IngestError
        Naming each file whose rows in ``raw`` do not match its manifest entry.
    """
    problems = []
    rows = con.execute(
        "select source_file, entity, received_rows, loaded_rows, quarantined_rows "
        "from raw.load_manifest where is_current order by source_file"
    ).fetchall()
    for source_file, entity, received, loaded, quarantined in rows:
        in_table = con.execute(
            f"select count(*) from raw.{entity} where _source_file = ?", [source_file]
        ).fetchall()[0][0]
        in_quarantine = con.execute(
            "select count(*) from raw.quarantine where source_file = ?", [source_file]
        ).fetchall()[0][0]
        if received != loaded + quarantined or in_table != loaded or in_quarantine != quarantined:
            problems.append(
                f"{source_file}: manifest says received {received} = loaded {loaded} + "
                f"quarantined {quarantined}; tables hold {in_table} loaded, {in_quarantine} quarantined"
            )
    if problems:
        raise IngestError("load manifest does not reconcile:\n" + "\n".join(problems))
