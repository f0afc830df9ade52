"""The dbt project on the real Online Retail II import (no events, reviews or categories).

RFM inputs and revenue are checked against values computed here straight from the CSV
(polars), independently of the importer, the ingest and the SQL.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import ONLINE_RETAIL_AS_OF as AS_OF
from dbt_helpers import MART_TABLES, query, scalar

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retail_csv(online_retail_csv: Path) -> pl.DataFrame:
    frame = pl.read_csv(
        online_retail_csv,
        schema_overrides={"Invoice": pl.String, "StockCode": pl.String, "Customer ID": pl.String},
    )
    return frame.with_columns(
        pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S"),
        pl.col("Customer ID").str.replace(r"\.0$", ""),
        pl.col("Invoice").str.starts_with("C").alias("is_cancellation"),
    )


@pytest.fixture(scope="module")
def retail_home(online_retail_home: Path) -> Path:
    """The export through the pipeline's own ingest and dbt_features stages."""
    return online_retail_home


def test_build_is_green_and_degrades_gracefully(retail_home: Path) -> None:
    for table in MART_TABLES:
        if table in ("fct_events", "product_review_insights"):  # no events, no reviews
            assert scalar(retail_home, f"select count(*) from marts.{table}") == 0
        else:
            assert scalar(retail_home, f"select count(*) from marts.{table}") > 0, table
    # No events or reviews: zero/NULL features.
    assert query(
        retail_home,
        "select max(views_30d), max(carts_30d), max(review_count), count(mean_rating) "
        "from marts.customer_features",
    ) == [(0, 0, 0, 0)]
    assert query(
        retail_home,
        "select count(cart_conversion_rate), count(purchase_conversion_rate), max(views) "
        "from marts.product_features",
    ) == [(0, 0, 0)]
    # The export has no categories: every recommendable product's comes from its text
    # (the product_text stage runs before the features).
    sources = dict(
        query(
            retail_home,
            "select category_source, count(*) from marts.dim_products "
            "where is_recommendable group by 1",
        )
    )
    assert set(sources) == {"inferred"} and sources["inferred"] > 3_000, sources
    assert query(
        retail_home,
        "select count(*) from marts.dim_products "
        "where is_recommendable and category = 'Uncategorized'",
    ) == [(0,)]
    assert {
        r[0] for r in query(retail_home, "select distinct event_kind from marts.interaction_events")
    } == {"purchase"}
    # Non-merchandise codes stay in the facts but never reach the models.
    assert scalar(retail_home, "select count(*) from marts.dim_products where not is_product") > 0
    for table in ("product_features", "product_popularity", "interactions", "interaction_events"):
        assert (
            scalar(
                retail_home,
                f"select count(*) from marts.{table} t join marts.dim_products p using (product_id) "
                "where not p.is_product",
            )
            == 0
        ), table
    assert scalar(retail_home, "select count(*) from marts.customer_features") == 4_383


def _expected_rfm(csv: pl.DataFrame) -> pl.DataFrame:
    """recency, frequency, monetary per customer whose stock codes are all merchandise.

    Restricted to customers whose codes all start with a digit (merchandise whatever the
    importer's non-product rule), so the check does not depend on that rule.
    """
    known = csv.filter(pl.col("Customer ID").is_not_null())
    merchandise_only = (
        known.group_by("Customer ID")
        .agg(pl.col("StockCode").str.contains(r"^\d").all().alias("all_merchandise"))
        .filter("all_merchandise")
        .select("Customer ID")
    )
    rows = known.join(merchandise_only, on="Customer ID")
    # Signed-quantity rule: a C invoice's (negative) lines count, its positive lines never.
    counted = rows.filter(~(pl.col("is_cancellation") & (pl.col("Quantity") > 0)))
    purchases = rows.filter(~pl.col("is_cancellation") & (pl.col("Quantity") > 0))
    as_of = date.fromisoformat(AS_OF)
    return (
        purchases.group_by("Customer ID")
        .agg(
            pl.col("Invoice").n_unique().alias("frequency"),
            pl.col("InvoiceDate").max().dt.date().alias("last_purchase"),
        )
        .join(
            counted.group_by("Customer ID").agg(
                (pl.col("Quantity") * pl.col("Price")).sum().alias("monetary")
            ),
            on="Customer ID",
        )
        .with_columns(
            (pl.lit(as_of) - pl.col("last_purchase")).dt.total_days().alias("recency_days")
        )
        .rename({"Customer ID": "customer_id"})
    )


def test_rfm_of_real_customers_match_the_csv(retail_home: Path, retail_csv: pl.DataFrame) -> None:
    expected = _expected_rfm(retail_csv)
    has_cancellation = set(
        retail_csv.filter(pl.col("is_cancellation"))["Customer ID"].drop_nulls().to_list()
    )
    # A handful of real customers across the spend distribution, with and without C invoices.
    ordered = expected.sort("monetary", "customer_id")
    picks = {
        ordered["customer_id"][int(q * (ordered.height - 1))] for q in (0.0, 0.1, 0.5, 0.9, 1.0)
    }
    picks |= set(sorted(set(ordered["customer_id"].to_list()) & has_cancellation)[:3])
    assert len(picks) >= 6
    for row in expected.filter(pl.col("customer_id").is_in(sorted(picks))).iter_rows(named=True):
        actual = query(
            retail_home,
            "select recency_days, frequency, monetary from marts.customer_features where customer_id = ?",
            [row["customer_id"]],
        )
        assert actual, row["customer_id"]
        recency, frequency, monetary = actual[0]
        assert (recency, frequency) == (row["recency_days"], row["frequency"]), row
        assert math.isclose(monetary, row["monetary"], rel_tol=1e-9, abs_tol=1e-6), row


def test_revenue_reconciles_with_raw(retail_home: Path, retail_csv: pl.DataFrame) -> None:
    # Lines the ingest quarantined (negative prices) are the only ones missing.
    quarantined = scalar(
        retail_home, "select count(*) from raw.quarantine where entity = 'order_lines'"
    )
    loaded = retail_csv.filter(pl.col("Price") >= 0)
    assert loaded.height == retail_csv.height - quarantined
    csv_total = loaded.select((pl.col("Quantity") * pl.col("Price")).sum()).item()
    csv_net = (
        loaded.filter(~(pl.col("is_cancellation") & (pl.col("Quantity") > 0)))
        .select((pl.col("Quantity") * pl.col("Price")).sum())
        .item()
    )
    lines, amount, net = query(
        retail_home,
        "select count(*), sum(line_amount), sum(net_revenue) from marts.fct_order_lines",
    )[0]
    assert lines == loaded.height
    assert math.isclose(amount, csv_total, rel_tol=1e-12)
    assert math.isclose(net, csv_net, rel_tol=1e-12)
    raw_amount = scalar(retail_home, "select sum(quantity * unit_price) from raw.order_lines")
    assert math.isclose(amount, raw_amount, rel_tol=1e-12)
    # Orders carry the same totals as their lines.
    assert math.isclose(
        scalar(retail_home, "select sum(order_amount) from marts.fct_orders"), amount, rel_tol=1e-12
    )
    # Per invoice: every invoice's line total matches the CSV.
    per_invoice = {
        invoice: total
        for invoice, total in loaded.group_by("Invoice")
        .agg((pl.col("Quantity") * pl.col("Price")).sum())
        .iter_rows()
    }
    mismatched = [
        order_id
        for order_id, total in query(
            retail_home, "select order_id, order_amount from marts.fct_orders"
        )
        if not math.isclose(total, per_invoice.get(order_id, 0.0), rel_tol=1e-9, abs_tol=1e-6)
    ]
    assert not mismatched, mismatched[:5]
