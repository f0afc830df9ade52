"""Incremental facts equal a full refresh, through appends, replaced files, erasure, backfills.

Two homes ingest the same sequence of landing folders. After every step one is built
incrementally (``dbt run``) and the other with ``--full-refresh``; every mart must be equal.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from dbt_helpers import MART_TABLES, SHOP, ingest_files, scalar, table_differences

from ml.warehouse.dbt import run_dbt

MODELS = [
    "--select",
    "path:models/staging/raw",
    "path:models/staging/text",
    "path:models/intermediate",
    "path:models/marts",
]
CUT = datetime(2026, 6, 12)


def _write(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)


def _compiled_incrementally(home: Path, model: str) -> bool:
    """Whether the last run compiled ``model`` through its is_incremental() branch."""
    results = json.loads((home / "dbt" / "target" / "run_results.json").read_text())
    for result in results["results"]:
        if result["unique_id"] == f"model.affinity.{model}":
            return "loaded_until" in (result.get("compiled_code") or "")
    raise AssertionError(f"{model} did not run")


@pytest.mark.slow
def test_incremental_equals_full_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ml.datagen import generate_shop

    monkeypatch.delenv("AFFINITY_PII_SALT", raising=False)
    shop = tmp_path / "shop"
    generate_shop(shop, **{**SHOP, "customers": 800})
    orders = pl.read_parquet(shop / "orders.parquet")
    lines = pl.read_parquet(shop / "order_lines.parquet")
    events = pl.read_parquet(shop / "events.parquet")
    early = orders.filter(pl.col("ordered_at") < CUT)
    late = orders.filter(pl.col("ordered_at") >= CUT)

    landing = tmp_path / "landing"
    for entity in ("customers", "products", "reviews", "campaigns"):
        _write(pl.read_parquet(shop / f"{entity}.parquet"), landing / f"{entity}.parquet")
    _write(early, landing / "orders" / "part-1.parquet")
    _write(
        lines.join(early.select("order_id"), on="order_id"),
        landing / "order_lines" / "part-1.parquet",
    )
    _write(events.filter(pl.col("occurred_at") < CUT), landing / "events" / "part-1.parquet")

    incremental, full = tmp_path / "incremental", tmp_path / "full"

    def step(as_of: str) -> None:
        for home in (incremental, full):
            ingest_files(home, landing)
        run_dbt(["run", *MODELS], as_of=as_of, home=incremental)
        run_dbt(["run", *MODELS, "--full-refresh"], as_of=as_of, home=full)
        differences = table_differences(incremental, full, MART_TABLES)
        assert not differences, f"as of {as_of}: (rows, only incremental, only full) {differences}"

    # 1. First load, as of a day before the cut: both homes build from scratch.
    for home in (incremental, full):
        ingest_files(home, landing)
        run_dbt(["seed"], home=home)
    step("2026-06-09")
    first_events = scalar(incremental, "select count(*) from marts.fct_events")

    # 2. Next files land; as_of moves past the cut (rows of part-1 held back by the earlier
    #    as_of come in through the watermark, part-2 through its new lineage).
    _write(late, landing / "orders" / "part-2.parquet")
    _write(
        lines.join(late.select("order_id"), on="order_id"),
        landing / "order_lines" / "part-2.parquet",
    )
    _write(events.filter(pl.col("occurred_at") >= CUT), landing / "events" / "part-2.parquet")
    step("2026-06-20")
    assert _compiled_incrementally(incremental, "fct_events")
    assert _compiled_incrementally(incremental, "fct_order_lines")
    assert scalar(incremental, "select count(*) from marts.fct_events") > first_events

    # 3. Re-delivered files: part-1 events lose rows and change types, part-1 orders change
    #    status (lines unchanged), and a customer asks to be erased.
    early_events = events.filter(pl.col("occurred_at") < CUT).with_row_index("n")
    replaced_events = early_events.filter(pl.col("n") % 10 != 3).with_columns(
        pl.when((pl.col("n") % 7 == 0) & (pl.col("event_type") == "view"))
        .then(pl.lit("add_to_cart"))
        .otherwise(pl.col("event_type"))
        .alias("event_type")
    )
    _write(replaced_events.drop("n"), landing / "events" / "part-1.parquet")
    placed = early.filter(pl.col("status") == "placed")
    returned_ids = placed["order_id"].gather_every(5)
    _write(
        early.with_columns(
            pl.when(pl.col("order_id").is_in(returned_ids.implode()))
            .then(pl.lit("returned"))
            .otherwise(pl.col("status"))
            .alias("status")
        ),
        landing / "orders" / "part-1.parquet",
    )
    erased = (
        placed.filter(pl.col("customer_id").is_not_null())
        .join(late.select("customer_id"), on="customer_id")
        .join(events.select("customer_id").unique(), on="customer_id")["customer_id"]
        .sort()[0]
    )
    _write(
        pl.DataFrame({"customer_id": [erased], "requested_at": [datetime(2026, 6, 25)]}),
        landing / "erasure_requests.parquet",
    )
    step("2026-06-30")
    keyed = {
        table
        for table in MART_TABLES
        if scalar(
            incremental,
            "select count(*) from information_schema.columns "
            "where table_schema = 'marts' and table_name = ? and column_name = 'customer_id'",
            [table],
        )
    }
    assert {"fct_orders", "interactions", "customer_features"} <= keyed
    for table in sorted(keyed):
        hits = scalar(
            incremental, f"select count(*) from marts.{table} where customer_id = ?", [erased]
        )
        assert hits == 0, table
    assert scalar(
        incremental, "select count(*) from marts.fct_orders where order_status = 'returned'"
    ) >= len(returned_ids)

    # 4. Backfill of an earlier date, then forward again.
    step("2026-06-05")
    step("2026-06-25")
