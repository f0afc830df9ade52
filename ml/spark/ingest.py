"""Ingest on Spark: the contract's validation and quarantine as Spark SQL over landing files.

With ``AFFINITY_ENGINE=spark`` the ingest stage runs :func:`ingest_on_spark`. The batch is
the DuckDB loader's (:func:`ml.ingest.loader.ingest`: one transaction, the manifest,
``received = loaded + quarantined`` re-counted per file and over the whole manifest,
erasure), with each file staged and validated by Spark instead of DuckDB:

1. Spark reads the file: a Parquet file directly (``_row`` is its 1-based row index); a
   CSV is first parsed by DuckDB's strict reader (:func:`ml.ingest.files.stage_csv`: the
   same line numbers, ``malformed_row`` / ``wrong_column_count`` / ``invalid_utf8`` /
   ``blank_line`` rejects), staged as Parquet, and read by Spark from there;
2. the rules run as Spark SQL: the same queries as DuckDB's, generated in Spark's
   dialect (:func:`ml.ingest.rules.typing_sql`, :func:`ml.ingest.rules.key_rules_sql`,
   :data:`ml.ingest.dialect.SPARK`); the keys already loaded (for ``duplicate_key`` and
   ``orphan_reference``) are the warehouse's, inside the batch's transaction;
3. Spark writes every row, typed, with its rule, detail and (when quarantined) its values
   as received, to Parquet; the loader moves them into ``raw.<entity>`` and
   ``raw.quarantine`` and records ``raw.load_manifest``;
4. after the commit, the ``raw`` tables, the quarantine and the manifest are written to
   the lake and registered in Spark (:func:`ml.spark.lake.sync_sources_to_spark`), where
   dbt reads them.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ml.ingest.contract import ENTITIES, Entity
from ml.ingest.dialect import SPARK
from ml.ingest.files import IngestError, create_rejects, stage_csv
from ml.ingest.importers.quarantine import is_import_quarantine
from ml.ingest.loader import ingest
from ml.ingest.report import IngestReport
from ml.ingest.rules import key_rules_sql, typing_sql
from ml.ingest.validation import (
    FileToValidate,
    Validated,
    Validator,
    check_header,
    validate_in_duckdb,
)
from ml.spark.lake import sql_path

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

# Session settings the Spark dialect's SQL relies on (see ml.spark.session.spark_conf).
REQUIRED_CONF = {"spark.sql.session.timeZone": "UTC", "spark.sql.ansi.enabled": "false"}


def check_session(spark: SparkSession) -> None:
    """Refuse a session whose settings would change what the rules' SQL means."""
    wrong = {
        key: spark.conf.get(key, None)
        for key, value in REQUIRED_CONF.items()
        if (spark.conf.get(key, None) or "").lower() != value.lower()
    }
    if wrong:
        raise RuntimeError(
            f"the Spark session has {wrong}; the ingest's Spark SQL needs {REQUIRED_CONF} "
            "(ml.spark.session.spark_session sets them)"
        )


def _read_staged(
    spark: SparkSession, con: duckdb.DuckDBPyConnection, path: Path, stage: str, work: Path
) -> tuple[DataFrame, list[str], int]:
    """The file's rows in Spark with ``_row``, its header, and the rows refused before typing.

    Leaves ``{stage}_rejects`` in DuckDB (CSV parser rejects and blank lines; none for
    Parquet).
    """
    from pyspark.sql import functions as F

    if path.name.endswith(".parquet"):
        try:
            frame = spark.read.parquet(str(path))
            header = list(frame.columns)
            frame = frame.select(
                (F.col("_metadata.row_index") + 1).alias("_row"),
                *[F.col(SPARK.ident(name)) for name in header],
            )
        except Exception as exc:  # AnalysisException and friends: the file is unreadable
            raise IngestError(
                f"{path}: cannot be read as Parquet by Spark ({str(exc).splitlines()[0]})."
            ) from exc
        create_rejects(con, stage)
        return frame, header, 0
    # CSV: DuckDB's strict parser decides what a record and its line number are.
    header, rejected = stage_csv(con, path, stage)
    staged = work / f"{stage}.parquet"
    con.execute(f"COPY {stage} TO '{sql_path(staged)}' (FORMAT parquet)")
    con.execute(f"drop table {stage}")
    return spark.read.parquet(str(staged)), header, rejected


def _export_loaded_keys(
    spark: SparkSession, con: duckdb.DuckDBPyConnection, entity: Entity, work: Path
) -> None:
    """Register ``loaded_<entity>`` views in Spark: the keys ``raw`` holds right now.

    The entity's own key (with ``_source_file``, for cross-file duplicates) and the
    columns its references point at, read inside the batch's transaction, so parents
    loaded earlier in this batch count.
    """
    needed: dict[str, list[str]] = {entity.name: [*entity.primary_key, "_source_file"]}
    for fk in entity.foreign_keys:
        needed.setdefault(fk.parent, []).append(fk.parent_column)
    for name, columns in needed.items():
        target = work / f"loaded_{name}.parquet"
        distinct = ", ".join(dict.fromkeys(columns))
        con.execute(
            f"COPY (select distinct {distinct} from raw.{name}) TO '{sql_path(target)}' "
            "(FORMAT parquet)"
        )
        spark.read.parquet(str(target)).createOrReplaceTempView(f"loaded_{name}")


def _raw_values_sql(header: list[str], staged_types: dict[str, str]) -> str:
    """Spark SQL: a row's values as received, as JSON text (DuckDB's ``to_json`` layout).

    Temporal values are written as text (``2026-01-02 03:04:05``, as DuckDB writes them);
    null fields are kept.
    """
    fields = []
    for name in header:
        value = f"s.{SPARK.ident(name)}"
        if SPARK.staged_time_kind(staged_types[name]) is not None:
            value = SPARK.text(value)
        fields.append(f"{SPARK.literal(name)}, {value}")
    return f"to_json(named_struct({', '.join(fields)}), map('ignoreNullFields', 'false'))"


def spark_validator(spark: SparkSession, work: Path) -> Validator:
    """A :data:`ml.ingest.validation.Validator` that stages and validates files in Spark.

    ``work`` holds the batch's intermediate Parquet (staged CSV, loaded keys, results).
    """
    check_session(spark)
    files = iter(range(1_000_000_000))  # unique names: Spark may cache a path's listing

    def validate_on_spark(con: duckdb.DuckDBPyConnection, job: FileToValidate) -> Validated:
        if is_import_quarantine(job.path):  # every line quarantined already: no rule to run
            return validate_in_duckdb(con, job)
        entity, path, stage, report = job.entity, job.path, job.stage, job.report
        scratch = work / f"{stage}_{next(files)}"
        scratch.mkdir(parents=True)
        frame, header, rejected = _read_staged(spark, con, path, stage, scratch)
        check_header(entity, path, header, report)
        staged_types = dict(frame.dtypes)
        frame.createOrReplaceTempView(stage)
        cast_sql, typed_sql = typing_sql(
            entity, stage, header, staged_types, job.future_cutoff, job.shop_zone, SPARK
        )
        spark.sql(cast_sql).createOrReplaceTempView(f"{stage}_cast")
        spark.sql(typed_sql).createOrReplaceTempView(f"{stage}_checked")
        _export_loaded_keys(spark, con, entity, scratch)
        keyed = key_rules_sql(
            entity, f"{stage}_checked", report.source_file, SPARK, lambda name: f"loaded_{name}"
        )
        result = scratch / "typed"
        spark.sql(
            f"select k.*, case when k._rule is not null then "
            f"{_raw_values_sql(header, staged_types)} end as _raw_values "
            f"from ({keyed}) k join {stage} s on k._row = s._row"
        ).write.mode("overwrite").parquet(str(result))
        received = frame.count() + rejected
        con.execute(
            f"create or replace temp table {stage}_typed as "
            f"select * from read_parquet('{sql_path(result)}/*.parquet')"
        )
        for view in (stage, f"{stage}_cast", f"{stage}_checked"):
            spark.catalog.dropTempView(view)
        return Validated(received, "t._raw_values")

    return validate_on_spark


def ingest_on_spark(
    landing_dir: Path | str,
    *,
    warehouse: Path | str | None = None,
    now: datetime | None = None,
    timezone: str | None = None,
    home: Path | str | None = None,
) -> IngestReport:
    """:func:`ml.ingest.loader.ingest` with every file validated by Spark SQL.

    Parameters are the loader's; ``home`` is the Affinity home whose Spark session and
    lake are used (default ``$AFFINITY_HOME``). After the batch commits, ``raw.*`` (with
    ``raw.quarantine`` and ``raw.load_manifest``) is written to the lake and registered
    in Spark.
    """
    from ml.spark.lake import register_lake_table, sync_sources_to_spark, write_lake_table
    from ml.spark.session import spark_paths, spark_session
    from ml.warehouse import connect

    spark = spark_session(home)
    where = spark_paths(home)
    work = where.root / "ingest_work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        report = ingest(
            landing_dir,
            warehouse=warehouse,
            now=now,
            timezone=timezone,
            validator=spark_validator(spark, work),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with connect(warehouse) as con:
        written = set(sync_sources_to_spark(con, spark, schemas={"raw"}, home=where.home))
        for table in ("quarantine", "load_manifest", *ENTITIES):
            if f"raw.{table}" not in written:
                location = write_lake_table(con, "raw", table, where)
                register_lake_table(spark, "raw", table, location)
    return report
