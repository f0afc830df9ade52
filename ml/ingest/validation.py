"""Staging and validating one landing file: the step an engine can take over.

:func:`validate_in_duckdb` is the default :data:`Validator`; :mod:`ml.spark.ingest` gives
Spark's. Either leaves temp tables in the batch's DuckDB transaction (see
:class:`Validated`) for :func:`ml.ingest.loader.ingest` to load and quarantine from.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from ml.ingest.contract import Entity
from ml.ingest.dialect import DUCKDB
from ml.ingest.files import IngestError, stage_csv, stage_parquet
from ml.ingest.importers.quarantine import is_import_quarantine, stage_import_quarantine
from ml.ingest.report import FileReport
from ml.ingest.rules import validate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Validated:
    """What validating one file left in DuckDB: temp ``{stage}_typed`` (``_row``, the typed
    columns, ``_rule``, ``_detail``) and ``{stage}_rejects`` (rows refused before typing).

    ``raw_values`` is the SQL of a quarantined row's values as received (JSON text) over
    ``{stage}_typed t`` and what ``raw_join`` adds to it.
    """

    received_rows: int
    raw_values: str
    raw_join: str = ""


@dataclass(frozen=True)
class FileToValidate:
    """One landing file to stage and validate: its entity, where it is, the temp table
    name its stage uses, the report it fills, and the clock rules of this batch."""

    entity: Entity
    path: Path
    stage: str
    report: FileReport
    future_cutoff: datetime
    shop_zone: str = "UTC"


# Stages and validates one file inside the batch's DuckDB transaction.
Validator = Callable[[duckdb.DuckDBPyConnection, FileToValidate], Validated]


def check_header(entity: Entity, path: Path, header: list[str], report: FileReport) -> None:
    """Refuse a file without a required column; warn about columns the contract ignores."""
    present = {h.strip().lower() for h in header}
    missing = [c for c in entity.required_columns if c not in present]
    if missing:
        raise IngestError(
            f"{path}: missing required column(s) {', '.join(missing)} for entity "
            f"'{entity.name}'; the header has: {', '.join(header)}."
        )
    # Columns outside the contract are not loaded: say so, never drop data silently.
    report.warnings += column_warnings(entity, header)
    for warning in report.warnings:
        log.warning("%s: %s", report.source_file, warning)


def stage_file(con: duckdb.DuckDBPyConnection, path: Path, stage: str) -> tuple[list[str], int]:
    """Stage a CSV or Parquet landing file in DuckDB (temp ``stage``, ``{stage}_rejects``)."""
    if path.name.endswith(".parquet"):
        header, rejected = stage_parquet(con, path, stage)
    else:
        header, rejected = stage_csv(con, path, stage)
    return header, rejected


def validate_in_duckdb(con: duckdb.DuckDBPyConnection, job: FileToValidate) -> Validated:
    """Stage and validate one file in DuckDB (the default :data:`Validator`)."""
    entity, path, stage, report = job.entity, job.path, job.stage, job.report
    if is_import_quarantine(path):  # lines an importer refused: quarantined, none loaded
        header, rejected = stage_import_quarantine(con, path, entity.column_names, stage)
    else:
        header, rejected = stage_file(con, path, stage)
    check_header(entity, path, header, report)
    validate(con, entity, stage, header, report.source_file, job.future_cutoff, job.shop_zone)
    staged = con.execute(f"select count(*) from {stage}").fetchall()[0][0]
    # The row as received (original column names and values), for the quarantine record.
    raw_struct = (
        "struct_pack("
        + ", ".join(f"{DUCKDB.ident(h)} := s.{DUCKDB.ident(h)}" for h in header)
        + ")"
    )
    return Validated(
        staged + rejected, f"to_json({raw_struct})::varchar", f"join {stage} s using (_row)"
    )


def column_warnings(entity: Entity, header: list[str]) -> list[str]:
    """Say which columns of ``header`` the contract ignores, and which defaults replace what.

    A renamed optional column (``marketing_optin`` for ``marketing_opt_in``) would
    otherwise load silently as its default on every row: the warning names the unknown
    column, the default used, and the contract column it probably meant.
    """
    present = {h.strip().lower() for h in header}
    ignored = [h for h in header if h.strip().lower() not in entity.column_names]
    if not ignored:
        return []
    text = f"column(s) not in the {entity.name} contract ignored: {', '.join(ignored)}"
    absent = [c for c in entity.columns if not c.required and c.name not in present]
    if absent:
        defaults = ", ".join(f"{c.name} = {c.default or 'NULL'}" for c in absent)
        text += f"; optional column(s) absent, every row takes the default: {defaults}"
        names = [c.name for c in absent]
        guesses = [
            f"{name!r} looks like {match[0]!r}"
            for name in ignored
            if (match := difflib.get_close_matches(name.strip().lower(), names, n=1, cutoff=0.6))
        ]
        if guesses:
            text += f" ({'; '.join(guesses)}: rename the column in the file)"
    return [text]
