"""One data set per home: a run on another data set refuses, or replaces it when asked."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from ml.config import paths
from ml.datagen import generate_shop
from ml.ingest import ingest
from ml.orchestration.datasets import (
    DatasetConflict,
    check_dataset,
    current_landings,
    landing_of,
    other_landings,
    read_current_landings,
)
from ml.orchestration.run import input_counts, run_pipeline

NOW = datetime(2026, 11, 27, 12, 0, 0)
# What an Online Retail import holds: no events, reviews or campaigns.
SALES_ONLY = ("customers", "products", "orders", "order_lines")


@pytest.fixture
def two_shops(tmp_path: Path) -> tuple[Path, Path]:
    """A full generated shop and, in another folder, a sales-only data set."""
    full, sales = tmp_path / "shop", tmp_path / "sales"
    generate_shop(full, customers=60, products=20, days=20, seed=1)
    generate_shop(sales, customers=40, products=15, days=20, seed=2)
    for extra in sales.glob("*.parquet"):
        if extra.name.split(".")[0] not in SALES_ONLY:
            extra.unlink()
    return full, sales


def test_the_landing_folder_of_a_manifest_entry():
    assert landing_of("orders.parquet", "/h/landing/x/orders.parquet") == Path("/h/landing/x")
    assert landing_of("events/p1.csv", "/d/shop/events/p1.csv") == Path("/d/shop")
    counts = current_landings(
        [("orders.parquet", "/a/orders.parquet"), ("events/1.csv", "/a/events/1.csv")]
        + [("orders.parquet", "/b/orders.parquet")]
    )
    assert counts == {Path("/a"): 2, Path("/b"): 1}
    assert other_landings(counts, Path("/a")) == {Path("/b"): 1}
    assert other_landings({Path("/a"): 2}, Path("/a")) == {}


def test_a_second_data_set_leaves_the_first_ones_files_current(two_shops):
    """What the rule prevents: the ingest alone keeps both data sets' files current."""
    full, sales = two_shops
    ingest(full)
    ingest(sales)
    current = read_current_landings(paths().warehouse)
    # Same-named files were replaced; events, reviews and campaigns of the shop stay.
    assert current == {full.resolve(): 3, sales.resolve(): 4}
    received_sales = input_counts(sales.resolve())[0]
    received_all = sum(input_counts(folder)[0] for folder in current)
    assert 0 < received_sales < received_all  # the summary counts this run's input only


def test_a_run_on_another_data_set_is_refused_with_the_commands_to_use(two_shops):
    full, sales = two_shops
    ingest(full)
    home = paths()
    with pytest.raises(DatasetConflict) as refused:
        check_dataset(
            home, sales.resolve(), replace=False, command="affinity run --data x{extra}", now=NOW
        )
    message = str(refused.value)
    assert str(full.resolve()) in message and "(7 files)" in message
    assert "AFFINITY_HOME=/path/to/another/home affinity run --data x" in message
    assert f"rm -rf {home.home}" in message  # not the default home: `make clean` would miss it
    assert "affinity run --data x --replace" in message
    # The same data set again is no conflict.
    assert check_dataset(home, full.resolve(), replace=False, command="-", now=NOW) is None


def test_replace_sets_the_other_data_set_aside_and_starts_afresh(two_shops):
    full, sales = two_shops
    ingest(full)
    home = paths()
    home.published.mkdir(parents=True, exist_ok=True)
    (home.published / "affinity.duckdb").write_bytes(b"old snapshot")
    home.mlflow_db.write_bytes(b"old runs")

    moved = check_dataset(home, sales.resolve(), replace=True, command="-", now=NOW)

    assert moved == home.home / "replaced" / "20261127T120000Z"
    assert (moved / "warehouse.duckdb").exists() and (moved / "mlflow.db").exists()
    assert (moved / "published" / "affinity.duckdb").read_bytes() == b"old snapshot"
    assert not home.warehouse.exists() and not home.snapshot.exists()
    ingest(sales)
    assert read_current_landings(home.warehouse) == {sales.resolve(): 4}


def test_affinity_run_refuses_before_preparing_anything(two_shops):
    full, sales = two_shops
    ingest(full)
    imported = Path(shutil.copytree(sales, sales.parent / "copy"))
    logs = paths().home / "logs"
    with pytest.raises(DatasetConflict, match="--replace"):
        run_pipeline(data=imported, command="affinity run --data copy")
    assert not logs.exists()  # refused before the run log, the dbt parse or Airflow
    assert read_current_landings(paths().warehouse) == {full.resolve(): 7}
