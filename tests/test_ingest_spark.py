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
from ml.ingest.contract import ENTITIES

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
            name: con.execute(f"select * from raw.{name} order by all").pl()
            for name in [*ENTITIES, "quarantine"]
        }
        frames["load_manifest"] = con.execute(
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
    finally:
        stop_spark_session()

    # The report: the same files, each with received = loaded + quarantined, same rules.
    assert [(f.source_file, f.received_rows, f.loaded_rows, f.quarantined_rows, f.rules)
            for f in spark.files] == [
        (f.source_file, f.received_rows, f.loaded_rows, f.quarantined_rows, f.rules)
        for f in duck.files
    ]  # fmt: skip
    assert all(f.received_rows == f.loaded_rows + f.quarantined_rows for f in spark.files)
    assert duck.quarantined_rows > 100 and duck.loaded_rows > 10_000
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
