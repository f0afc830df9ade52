"""The product_text stage in the pipeline, on the real Online Retail export (slow).

``online_retail_home`` ran ingest -> product_text -> dbt_features: the marts' categories
come from the products' text. Stability is checked on a copy of that home: a re-run of the
date and a next day with new products change no existing product's category.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import ONLINE_RETAIL_AS_OF

from ml.warehouse import connect
from ml.warehouse.tables import read_frame

pytestmark = pytest.mark.slow


def categories(day: str) -> pl.DataFrame:
    with connect(read_only=True) as con:
        return read_frame(
            con,
            "SELECT product_id, category_id, category, category_source FROM ml.product_categories "
            "WHERE logical_date = ? ORDER BY product_id",
            [day],
        )


def test_every_recommendable_product_has_a_named_category_within_the_size_limit(
    online_retail_home: Path,
) -> None:
    with connect(online_retail_home / "warehouse.duckdb", read_only=True) as con:
        products = read_frame(
            con,
            "SELECT product_id, category, category_source FROM marts.dim_products "
            "WHERE is_recommendable",
        )
    assert products.height > 3_000
    assert (products["category"] != "Uncategorized").all()
    assert set(products["category_source"]) == {"inferred"}  # the export has no categories
    sizes = products.group_by("category").len()["len"]
    assert sizes.max() <= 0.10 * products.height
    assert 50 <= sizes.len() <= 400


@pytest.fixture
def home_copy(online_retail_home: Path, tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy2(online_retail_home / "warehouse.duckdb", home / "warehouse.duckdb")
    monkeypatch.setenv("AFFINITY_HOME", str(home))
    return home


def test_rerunning_a_date_and_adding_new_products_moves_no_existing_product(home_copy) -> None:
    from ml.orchestration.runner import run_stage
    from ml.pipeline import RunContext

    before = categories(ONLINE_RETAIL_AS_OF)
    run_stage("product_text", RunContext(ONLINE_RETAIL_AS_OF))
    assert categories(ONLINE_RETAIL_AS_OF).equals(before)  # a re-run replaces, same result

    next_day = (date.fromisoformat(ONLINE_RETAIL_AS_OF) + timedelta(days=1)).isoformat()
    new = {"NEW001": "RED RETROSPOT LUNCH BAG DELUXE", "NEW002": "PINK HEART T-LIGHT HOLDER"}
    with connect() as con:
        for product_id, name in new.items():
            con.execute(
                "INSERT INTO raw.products (product_id, name, is_active, is_product, "
                "_source_file, _source_row, _batch_id) VALUES (?, ?, true, true, 'test', 1, 't')",
                [product_id, name],
            )
    summary = run_stage("product_text", RunContext(next_day))
    assert summary["taxonomy"] == "carried forward" and summary["embedded"] == len(new)
    after = categories(next_day)
    kept = after.join(before, on="product_id", suffix="_before")
    assert kept.height == before.height
    assert (kept["category_id"] == kept["category_id_before"]).all()
    placed = dict(
        after.filter(pl.col("product_id").is_in(list(new)))
        .select("product_id", "category")
        .iter_rows()
    )
    assert placed == {"NEW001": "Lunch bags", "NEW002": "T-light holders"}
