"""Ingest on Spark: the same shop ingested by DuckDB and by Spark SQL gives the same
``raw`` tables, the same ``raw.quarantine`` and the same ``raw.load_manifest``.

One Spark session (slow: a JVM). The shop is generated with injected defects (Parquet,
text columns) and extended with the CSV files of ``tests/test_ingest.py`` plus zoned,
blank and fall-back-hour timestamps (CSV: DuckDB's parser, Spark's rules), read in a
non-UTC shop zone. Without the Spark extra the test is skipped locally and fails under
``CI=true``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from test_ingest import write_landing

from ml.ingest import ingest
from ml.ingest.contract import ENTITIES, Column, Entity
from ml.ingest.dialect import SPARK
from ml.ingest.rules import typing_sql

NOW = datetime(2026, 6, 1)
ZONE = "Europe/Paris"
EVENTS_WITH_ZONES = """event_id,customer_id,session_id,product_id,event_type,occurred_at
E1,C1,S1,P1,view,2026-02-01 09:00:00
E5,C1,S1,P1,view,2026-02-01 09:00:00-05:00
E6,C1,S1,P1,view,2026-02-01 09:00:00 Mars/Olympus

E7,C1,S1,P1,view,2026-02-01 09:00 Europe/Paris
E8,C1,S1,P1,view,2025-10-26 02:30:00
E9,C1,S1,P1,view,2026-02-01T09:00:00Z
E10,C1,S1,P1,view,2026
E11,C1,S1,P1,view,2026-02-01 09:00:00+25:00
"""


# Values each engine types on its own, compared column by column. Where the engines
# cannot agree, the difference is listed (and documented in ml.ingest.dialect).
EDGE_VALUES = {
    "seen_at": [
        "2026-02-01 09:00:00", "2026-02-01", "2026-2-1 9:05", "2026-02-01T09:00:00",
        "2026-02-01 09:00:00.1234567", "2026", "2026-02", "2026-02-30 10:00:00", "yesterday",
        "2026-02-01 09:00:00-05:00", "2026-02-01 09:00+0530", "2026-02-01 09:00:00Z",
        "2026-02-01 09:00 Europe/Paris", "2026-02-01 09:00:00 EST", "2026-02-01 09:00 GMT+2",
        "2026-02-01 09:00:00+15:00", "2026-02-01 09:00:00+25:00", "2026-02-01 09:00 Mars/Olympus",
        "2025-10-26 02:30:00", "2026-03-29 02:30:00", "2026-02-01 09:00:00 utc",
        "2026-02-01 09:00:00 europe/paris",
    ],
    "amount": ["1.5", " 2 ", "1e3", "inf", "-Infinity", "NaN", "1e400", "1.5d", "2f", "0x10",
               "1_000", ".5", "3.", "+4", "abc"],
    "units": ["3", "3.0", "2.5", "3.", "-7", "1e2", "3000000000", "0x10", "three", "inf"],
    "opted_in": ["yes", "Y", "no", "n", "true", "F", "1", "0", "maybe", "on"],
}  # fmt: skip
# (column, value): (DuckDB's rule or None when loaded, Spark's rule or None).
EDGE_DIFFERENCES = {
    ("amount", "1_000"): (None, "bad_number"),
    ("seen_at", "2026-02-01 09:00:00 utc"): (None, "unparseable_time_zone"),
    ("seen_at", "2026-02-01 09:00:00 europe/paris"): (None, "unparseable_time_zone"),
}
PROBE = Entity(
    "probe",
    (
        Column("id", "VARCHAR"),
        Column("seen_at", "TIMESTAMP"),
        Column("amount", "DOUBLE"),
        Column("units", "INTEGER"),
        Column("opted_in", "BOOLEAN"),
    ),
    primary_key=("id",),
)


def _edge_rows() -> pl.DataFrame:
    rows = [
        {"id": "x", "seen_at": None, "amount": None, "units": None, "opted_in": None}
        | {column: value}
        for column, values in EDGE_VALUES.items()
        for value in values
    ]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.Utf8))
    return frame.with_columns(_row=pl.int_range(1, len(rows) + 1, dtype=pl.Int64))


def _typed_edges(spark) -> tuple[list[tuple], list[tuple]]:
    """The edge values typed by DuckDB and by Spark: ``(_row, at, number, count, flag, rule)``."""
    frame = _edge_rows()
    header = [c for c in frame.columns if c != "_row"]
    con = duckdb.connect()
    con.register("probe_rows", frame.to_arrow())
    con.execute("create temp table probe as select * from probe_rows")
    cast_sql, typed_sql = typing_sql(
        PROBE, "probe", header, dict.fromkeys(header, "VARCHAR"), NOW, ZONE
    )
    con.execute(f"create temp table probe_cast as {cast_sql}")
    duck = con.execute(f"select * from ({typed_sql}) order by _row").fetchall()
    con.close()
    schema = ", ".join(f"{c} {'bigint' if c == '_row' else 'string'}" for c in frame.columns)
    spark.createDataFrame(frame.rows(), schema=schema).createOrReplaceTempView("probe")
    cast_sql, typed_sql = typing_sql(
        PROBE, "probe", header, dict.fromkeys(header, "string"), NOW, ZONE, SPARK
    )
    spark.sql(cast_sql).createOrReplaceTempView("probe_cast")
    ours = [tuple(r) for r in spark.sql(f"select * from ({typed_sql}) order by _row").collect()]

    # NaN is a value here (never equal to itself): compared by its name.
    def plain(row):
        return tuple("NaN" if v != v else v for v in (row[0], *row[2:6], row[6]))

    return [plain(r) for r in duck], [plain(r) for r in ours]


def _spark_available() -> bool:
    return importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None


def _landing(root: Path) -> Path:
    from ml.datagen import generate_shop

    landing = root / "shop"
    generate_shop(
        landing, customers=300, products=60, days=30, seed=5, defect_rate=0.05,
        end_date="2026-05-20",
    )  # fmt: skip
    extra = write_landing(root / "extra", events=EVENTS_WITH_ZONES)
    for csv_file in extra.iterdir():
        folder = landing / csv_file.name.removesuffix(".csv")
        folder.mkdir(exist_ok=True)
        csv_file.rename(folder / "extra.csv")
    return landing


def _tables(warehouse: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        frames = {
            name: con.sql(f"select * from raw.{name} order by all").pl()
            for name in [*ENTITIES, "quarantine"]
        }
        frames["load_manifest"] = con.sql(
            "select * exclude (path) from raw.load_manifest order by source_file"
        ).pl()
    return frames


@pytest.mark.slow
def test_spark_ingest_loads_and_quarantines_what_duckdb_does(tmp_path, monkeypatch):
    if not _spark_available():
        message = "the Spark extra is not installed (make setup-spark)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from ml.spark.ingest import ingest_on_spark
    from ml.spark.session import spark_session, stop_spark_session

    landing = _landing(tmp_path)
    duck = ingest(landing, warehouse=tmp_path / "duck.duckdb", now=NOW, timezone=ZONE)
    home = tmp_path / "home-spark"
    monkeypatch.setenv("AFFINITY_HOME", str(home))
    try:
        spark = ingest_on_spark(
            landing, warehouse=home / "warehouse.duckdb", now=NOW, timezone=ZONE, home=home
        )
        in_lake = {
            table: spark_session().table(f"raw.{table}").count()
            for table in ("quarantine", "load_manifest", "orders")
        }
        duck_edges, spark_edges = _typed_edges(spark_session())
    finally:
        stop_spark_session()

    # The report: the same files, each with received = loaded + quarantined, same rules.
    assert [(f.source_file, f.received_rows, f.loaded_rows, f.quarantined_rows, f.rules)
            for f in spark.files] == [
        (f.source_file, f.received_rows, f.loaded_rows, f.quarantined_rows, f.rules)
        for f in duck.files
    ]  # fmt: skip
    assert all(f.received_rows == f.loaded_rows + f.quarantined_rows for f in spark.files)
    assert duck.quarantined_rows > 100 and duck.loaded_rows > 2_000
    # Every rule the generator injects and the CSV cases raise, on both engines.
    rules = {rule for f in spark.files for rule in f.rules}
    assert {"duplicate_key", "orphan_reference", "unparseable_time_zone", "blank_line"} <= rules

    # The tables: every loaded row, quarantine row (rule, detail, raw values) and manifest
    # figure equal (the batch id derives from the files' checksums: the same too).
    expected, got = _tables(tmp_path / "duck.duckdb"), _tables(home / "warehouse.duckdb")
    for name, frame in expected.items():
        assert got[name].height == frame.height, name
        assert got[name].equals(frame), f"raw.{name} differs:\n{got[name]}\n{frame}"
    # The generator's list of defects is what both quarantined from the generated files.
    defects = pl.read_parquet(landing / "_expected_defects.parquet")
    generated = got["quarantine"].filter(~pl.col("source_file").str.ends_with("extra.csv"))
    assert set(generated.select("entity", "source_row", "rule").iter_rows()) == set(
        defects.select("entity", "source_row", "rule").iter_rows()
    )
    # Spark's lake holds the result, registered for dbt.
    assert in_lake == {
        "quarantine": expected["quarantine"].height,
        "load_manifest": expected["load_manifest"].height,
        "orders": expected["orders"].height,
    }

    # Value by value: the same typed value and rule, but for the listed differences.
    values = [(c, v) for c, vs in EDGE_VALUES.items() for v in vs]
    differences = {
        values[d[0] - 1]: (d[5], s[5])
        for d, s in zip(duck_edges, spark_edges, strict=True)
        if d != s
    }
    assert differences == EDGE_DIFFERENCES
