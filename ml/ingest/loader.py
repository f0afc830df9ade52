"""Typed load of landing files into the warehouse ``raw`` schema, with quarantine.

Every row of every file ends in exactly one place: its ``raw.<entity>`` table, or
``raw.quarantine`` with the rule it broke. ``raw.load_manifest`` records each file
(checksum, received / loaded / quarantined rows), and the ingest re-counts the tables
after loading: ``received = loaded + quarantined`` or the batch fails.

Landing layout: ``DIR/<entity>.{parquet,csv,csv.gz}`` or ``DIR/<entity>/*.{...}`` for the
entities of :mod:`ml.ingest.contract`. ``DIR/<entity>/import.quarantine.parquet`` (written
by an importer, see :mod:`ml.ingest.importers.quarantine`) holds source lines the importer
refused: all of them go to ``raw.quarantine``, none loads. A file is identified by its path relative to ``DIR``:

* same path, same checksum as the current manifest entry -> skipped (no-op re-run);
* same path, new checksum -> a new version: its old rows (loaded and quarantined) are
  replaced, never duplicated;
* a file that cannot be read at all (empty, binary, truncated gzip, missing required
  column) raises :class:`IngestError` naming the file and the problem, and the whole
  batch is rolled back: the warehouse stays as it was.

Rules (first failing rule wins, in this order): ``malformed_row`` / ``wrong_column_count``
/ ``invalid_utf8`` (CSV rows the parser rejects), ``blank_line``, ``nul_byte``, then per
column ``missing_value``, ``non_finite_number``, ``unparseable_time_zone``,
``bad_integer`` / ``bad_number`` / ``bad_boolean`` / ``unparseable_timestamp``,
``text_too_long``; then ``future_timestamp``, ``value_out_of_range``, entity rules
(``negative_price``, ``zero_quantity``, ``unknown_event_type``, ``unknown_order_status``,
``rating_out_of_range``, ``bad_control_share``, ``bad_time_window``,
``unknown_target_type``, ``negative_max_audience``), ``duplicate_key`` (the first occurrence loads), then
``orphan_reference`` (a reference to a row that is not loaded).
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from ml.ingest.contract import ENTITIES, LOAD_MANIFEST_DDL, QUARANTINE_DDL, Entity, raw_table_ddl
from ml.ingest.files import IngestError, discover, file_checksum
from ml.ingest.report import FileReport, IngestReport
from ml.ingest.timestamps import check_timezone, shop_timezone
from ml.ingest.validation import FileToValidate, Validator, validate_in_duckdb
from ml.warehouse import connect
from ml.warehouse.erasure import apply_erasure
from ml.warehouse.raw_erasure import ensure_erasure_audit, erased_counts, retire_erasure_audit

log = logging.getLogger(__name__)

# Tolerance for clocks of source systems slightly ahead of ours.
FUTURE_TOLERANCE = timedelta(days=1)


def _load_file(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    path: Path,
    report: FileReport,
    batch_id: str,
    future_cutoff: datetime,
    shop_zone: str = "UTC",
    validator: Validator = validate_in_duckdb,
) -> None:
    """Stage, validate and load one file inside the caller's transaction."""
    stage = f"stage_{entity.name}"
    validated = validator(
        con, FileToValidate(entity, path, stage, report, future_cutoff, shop_zone)
    )

    # A new version of a file replaces everything the previous version produced.
    con.execute(f"delete from raw.{entity.name} where _source_file = ?", [report.source_file])
    con.execute("delete from raw.quarantine where source_file = ?", [report.source_file])

    cols = ", ".join(entity.column_names)
    con.execute(
        f"""
        insert into raw.{entity.name} by name
        select {cols}, ? as _source_file, _row as _source_row, ? as _batch_id
        from {stage}_typed where _rule is null order by _row
        """,
        [report.source_file, batch_id],
    )
    con.execute(
        f"""
        insert into raw.quarantine
        select '{entity.name}', ?, t._row, t._rule, t._detail, {validated.raw_values}, ?
        from {stage}_typed t {validated.raw_join}
        where t._rule is not null
        union all
        select '{entity.name}', ?, source_row, rule, detail, raw_values, ? from {stage}_rejects
        order by 3
        """,
        [report.source_file, batch_id, report.source_file, batch_id],
    )
    report.received_rows = validated.received_rows
    for rule, count in con.execute(
        f"select _rule, count(*) from {stage}_typed where _rule is not null group by 1 "
        f"union all select rule, count(*) from {stage}_rejects group by 1"
    ).fetchall():
        report.rules[rule] = report.rules.get(rule, 0) + count
    staged_as_view = con.execute(
        "select count(*) from duckdb_views() where temporary and view_name = ?", [stage]
    ).fetchall()[0][0]
    con.execute(f"drop {'view' if staged_as_view else 'table'} if exists {stage}")
    for suffix in ("_typed", "_rejects"):
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
    """Create the ``raw`` schema, its entity tables, quarantine, manifest and erasure audit."""
    con.execute("create schema if not exists raw")
    for entity in ENTITIES.values():
        con.execute(raw_table_ddl(entity))
        # A column added to the contract since the table was created (always optional:
        # older files lack it) is added to it; inserts go by name.
        for column in entity.columns:
            con.execute(
                f"alter table raw.{entity.name} add column if not exists {column.name} "
                f"{column.dtype}"
            )
    con.execute(QUARANTINE_DDL)
    con.execute(LOAD_MANIFEST_DDL)
    # Homes created before the manifest carried warnings.
    con.execute("alter table raw.load_manifest add column if not exists warnings varchar")
    ensure_erasure_audit(con)


def ingest(
    landing_dir: Path | str,
    *,
    warehouse: Path | str | None = None,
    now: datetime | None = None,
    timezone: str | None = None,
    validator: Validator = validate_in_duckdb,
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
    timezone : str, optional
        The shop's zone, in which naive timestamps are read (default:
        ``AFFINITY_SHOP_TIMEZONE``, else UTC).
    validator : Validator, optional
        Stages and validates each file (default: in DuckDB, :func:`validate_in_duckdb`;
        :func:`ml.spark.ingest.ingest_on_spark` passes Spark's).

    Returns
    -------
    IngestReport
        Per-file counts; ``received = loaded + quarantined`` holds for every file.

    Raises
    ------
    IngestError
        If a file cannot be read at all or the counts do not reconcile; nothing is
        written in that case.
    ValueError
        If the shop's zone is not a time zone.
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
        zone = check_timezone(con, shop_timezone(timezone))
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
                _load_file(con, entity, path, report, batch_id, future_cutoff, zone, validator)
                _reconcile(con, report, batch_id)
                con.execute(
                    "update raw.load_manifest set is_current = false where source_file = ?",
                    [source_file],
                )
                # The old version's rows are gone, and with them what erasure took from them.
                retire_erasure_audit(con, source_file)
                con.execute(
                    "insert into raw.load_manifest (source_file, entity, path, checksum, "
                    "received_rows, loaded_rows, quarantined_rows, loaded_at, _batch_id, "
                    "is_current, warnings) values (?, ?, ?, ?, ?, ?, ?, ?, ?, true, ?)",
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
                        "; ".join(report.warnings) or None,
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
            # Erasure first: the re-count below then proves that every received row is
            # loaded, quarantined, or accounted for as erased in raw.erased_rows.
            erased = apply_erasure(con, now)
            check_manifest(con)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return IngestReport(batch_id, reports, time.perf_counter() - started, erased)


def check_manifest(con: duckdb.DuckDBPyConnection) -> None:
    """Verify ``received = loaded + quarantined`` for every current file against the tables.

    Rows an erasure request removed since the file was loaded are counted from the
    erasure audit (``raw.erased_rows``): a file reconciles when its rows in ``raw.<entity>``
    plus those erased equal ``loaded``, and likewise for ``raw.quarantine``.

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
    erased = erased_counts(con)
    for source_file, entity, received, loaded, quarantined in rows:
        in_table = con.execute(
            f"select count(*) from raw.{entity} where _source_file = ?", [source_file]
        ).fetchall()[0][0]
        in_quarantine = con.execute(
            "select count(*) from raw.quarantine where source_file = ?", [source_file]
        ).fetchall()[0][0]
        erased_loaded = erased.get((source_file, "loaded"), 0)
        erased_quarantined = erased.get((source_file, "quarantined"), 0)
        if (
            received != loaded + quarantined
            or in_table + erased_loaded != loaded
            or in_quarantine + erased_quarantined != quarantined
        ):
            problems.append(
                f"{source_file}: manifest says received {received} = loaded {loaded} + "
                f"quarantined {quarantined}; tables hold {in_table} loaded, {in_quarantine} "
                f"quarantined, and {erased_loaded} + {erased_quarantined} were erased"
            )
    if problems:
        raise IngestError("load manifest does not reconcile:\n" + "\n".join(problems))
