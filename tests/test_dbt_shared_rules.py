"""The shared rules dbt owns, against what the Python steps compute today.

Each mart below is meant to replace a computation of the Python side. Every test
recomputes that computation independently (polars over the fact tables, as the Python
step does it) and checks that the mart gives the same rows, so the switch cannot change
a recommendation, an audience or a cluster profile:

* ``dim_products.is_recommendable``: the ``eligible`` flag of ml/score.py, ml/similar.py,
  ml/campaigns/audiences.py and ml/segments.py;
* ``product_popularity``: cold-start lists (ml/score.py ``load_inputs``), the popularity
  baseline (``popularity_scoring_model``), campaign bestsellers (``load_bestsellers``) and
  training's ``item_popularity`` at the as-of cut-off;
* ``interactions``: scoring's per-pair ``history``;
* ``customer_category_affinity.purchases``: the customer x category purchase counts of
  ml/segments.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from dbt_helpers import SHOP_AS_OF, generate_and_ingest, warehouse

from ml.warehouse import connect
from ml.warehouse.dbt import build_features, run_dbt

AS_OF_END = datetime.fromisoformat(SHOP_AS_OF) + timedelta(days=1)
DEFAULT_DAYS = 90  # dbt var popularity_days (dbt_project.yml)
SHORT_DAYS = 20  # shorter than the shop's 60 days, so the window matters


@pytest.fixture(scope="module")
def shop_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("dbt_shared_rules")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AFFINITY_PII_SALT", raising=False)
        generate_and_ingest(home)
        build_features(SHOP_AS_OF, home=home)
    return home


def frame(home: Path, sql: str) -> pl.DataFrame:
    with connect(warehouse(home), read_only=True) as con:
        return con.sql(sql).pl()


def purchase_events(home: Path) -> pl.DataFrame:
    """Purchase signals as the Python steps read them (interaction_events)."""
    return frame(
        home,
        "select customer_id, product_id, occurred_at from marts.interaction_events "
        "where event_kind = 'purchase'",
    )


def purchases(home: Path) -> pl.DataFrame:
    """Purchase signals of known customers with the buyer's country and RFM segment, as
    ml/score.py joins them (dim_customers, customer_rfm_segments)."""
    events = purchase_events(home)
    customers = frame(home, "select customer_id, country from marts.dim_customers")
    segments = frame(home, "select customer_id, segment from marts.customer_rfm_segments")
    return events.join(customers, on="customer_id").join(segments, on="customer_id", how="left")


def distinct_buyers(buys: pl.DataFrame, kind: str, column: str | None) -> pl.DataFrame:
    """``group_kind, group_value, product_id, buyers`` as ml/score.py builds ``popular``."""
    value = pl.col(column) if column else pl.lit("")
    return (
        buys.filter(value.is_not_null())
        .group_by(value.alias("group_value"), "product_id")
        .agg(pl.col("customer_id").n_unique().alias("buyers"))
        .select(pl.lit(kind).alias("group_kind"), "group_value", "product_id", "buyers")
    )


def popularity(home: Path) -> pl.DataFrame:
    return frame(home, "select * from marts.product_popularity")


def _rows(table: pl.DataFrame, columns: list[str]) -> list[tuple]:
    return sorted(table.select(columns).rows())


# --- one recommendable-product rule ---------------------------------------------------------


def test_is_recommendable_is_the_eligible_flag_of_every_python_step(shop_home: Path) -> None:
    # ml/score.py:318 and its three copies: coalesce(is_product, true) and coalesce(is_active, true)
    eligible = frame(
        shop_home,
        "select p.product_id, coalesce(r.is_product, true) and coalesce(r.is_active, true) "
        "and nullif(trim(r.name), '') is not null "
        "as eligible from marts.dim_products p join raw.products r using (product_id)",
    )
    mart = frame(shop_home, "select product_id, is_recommendable from marts.dim_products")
    joined = eligible.join(mart, on="product_id")
    assert joined.height == mart.height > 0
    assert (joined["eligible"] == joined["is_recommendable"]).all()
    assert joined["eligible"].sum() < joined.height  # the shop has products not to suggest


# --- one popularity mart --------------------------------------------------------------------


def test_recent_buyers_replace_the_cold_start_lists(shop_home: Path) -> None:
    """ml/score.py load_inputs ``popular``: distinct buyers in the last popularity_days per
    RFM segment, country and overall; the mart's rows with recent_buyers > 0."""
    buys = purchases(shop_home).filter(
        pl.col("occurred_at") >= AS_OF_END - timedelta(days=DEFAULT_DAYS)
    )
    expected = pl.concat(
        [
            distinct_buyers(buys, "segment", "segment"),
            distinct_buyers(buys, "country", "country"),
            distinct_buyers(buys, "overall", None),
        ]
    )
    mart = popularity(shop_home).filter(
        (pl.col("group_kind") != "category") & (pl.col("recent_buyers") > 0)
    )
    columns = ["group_kind", "group_value", "product_id", "recent_buyers"]
    assert _rows(mart, columns) == _rows(expected.rename({"buyers": "recent_buyers"}), columns)
    assert set(mart["group_kind"]) == {"segment", "country", "overall"}
    # Cold start ranks a group's eligible products by buyers, then product id.
    ranked = mart.filter(pl.col("is_recommendable")).sort("recent_buyers_rank")
    for (_, _), group in ranked.group_by("group_kind", "group_value"):
        ordered = group.sort(["recent_buyers", "product_id"], descending=[True, False])
        assert group["product_id"].to_list() == ordered["product_id"].to_list()


def test_the_window_is_the_last_popularity_days(shop_home: Path) -> None:
    run_dbt(
        ["run", "--select", "product_popularity", "--vars", f"{{popularity_days: {SHORT_DAYS}}}"],
        as_of=SHOP_AS_OF,
        home=shop_home,
    )
    try:
        since = AS_OF_END - timedelta(days=SHORT_DAYS)
        buys = purchases(shop_home)
        expected = distinct_buyers(buys.filter(pl.col("occurred_at") >= since), "overall", None)
        mart = popularity(shop_home).filter(pl.col("group_kind") == "overall")
        assert set(mart["popularity_days"]) == {SHORT_DAYS}
        got = mart.filter(pl.col("recent_buyers") > 0)
        assert _rows(got, ["product_id", "recent_buyers"]) == _rows(
            expected.rename({"buyers": "recent_buyers"}), ["product_id", "recent_buyers"]
        )
        # The window matters here: some products were bought, but not recently.
        assert (mart["recent_buyers"] < mart["buyers"]).any()
    finally:
        run_dbt(["run", "--select", "product_popularity"], as_of=SHOP_AS_OF, home=shop_home)


def test_all_time_buyers_replace_the_popularity_baseline(shop_home: Path) -> None:
    """popularity_scoring_model: distinct buyers per product up to the as-of end (also
    training's item_popularity when the training cut-off is the as-of end)."""
    expected = distinct_buyers(purchase_events(shop_home), "overall", None)
    mart = popularity(shop_home).filter(
        (pl.col("group_kind") == "overall") & (pl.col("buyers") > 0)
    )
    assert _rows(mart, ["product_id", "buyers"]) == _rows(expected, ["product_id", "buyers"])


def test_overall_recent_ranking_replaces_campaign_bestsellers(shop_home: Path) -> None:
    """load_bestsellers: every eligible product with its buyers (net quantity > 0) over the
    last popularity_days, 0 when none, by buyers then product id."""
    lines = frame(
        shop_home,
        "select customer_id, product_id, ordered_at, net_quantity from marts.fct_order_lines",
    )
    buyers = (
        lines.filter(
            (pl.col("net_quantity") > 0)
            & (pl.col("ordered_at") >= AS_OF_END - timedelta(days=DEFAULT_DAYS))
            & (pl.col("ordered_at") < AS_OF_END)
        )
        .group_by("product_id")
        .agg(pl.col("customer_id").drop_nulls().n_unique().alias("buyers"))
    )
    eligible = frame(
        shop_home,
        "select product_id from marts.dim_products "
        "where coalesce(is_product, true) and coalesce(is_active, true)",
    )
    expected = (
        eligible.join(buyers, on="product_id", how="left")
        .with_columns(pl.col("buyers").fill_null(0))
        .sort(["buyers", "product_id"], descending=[True, False])
    )
    mart = (
        popularity(shop_home)
        .filter((pl.col("group_kind") == "overall") & pl.col("is_recommendable"))
        .sort("recent_buyers_rank")
    )
    assert mart.select("product_id", "recent_buyers").rows() == expected.rows()
    assert (mart["recent_buyers"] == 0).any()  # unsold products are listed too


def test_category_groups_count_the_buyers_of_each_category(shop_home: Path) -> None:
    products = frame(shop_home, "select product_id, category from marts.dim_products")
    expected = distinct_buyers(
        purchases(shop_home).join(products, on="product_id"), "category", "category"
    )
    mart = popularity(shop_home).filter(pl.col("group_kind") == "category")
    columns = ["group_value", "product_id", "buyers"]
    assert _rows(mart, columns) == _rows(expected, columns)
    assert (mart["group_value"] == mart["category"]).all()


# --- histories and category purchases -------------------------------------------------------


def test_interactions_replace_the_scoring_history(shop_home: Path) -> None:
    """ml/score.py load_inputs ``history``: per pair, bought at all and when last."""
    events = frame(
        shop_home,
        "select customer_id, product_id, occurred_at, event_kind from marts.interaction_events",
    )
    expected = events.group_by("customer_id", "product_id").agg(
        (pl.col("event_kind") == "purchase").any().alias("bought"),
        pl.col("occurred_at").filter(pl.col("event_kind") == "purchase").max().alias("last"),
    )
    mart = frame(
        shop_home,
        "select customer_id, product_id, purchases > 0 as bought, last_bought_at as last "
        "from marts.interactions",
    )
    columns = ["customer_id", "product_id", "bought", "last"]
    assert _rows(mart, columns) == _rows(expected, columns)
    assert mart["bought"].any() and not mart["bought"].all()


def test_category_affinity_purchases_replace_the_cluster_profile_counts(shop_home: Path) -> None:
    """ml/segments.py: purchase signals per customer and category (count of lines)."""
    products = frame(shop_home, "select product_id, category from marts.dim_products")
    expected = (
        purchase_events(shop_home)
        .join(products, on="product_id")
        .group_by("customer_id", "category")
        .agg(pl.len().alias("purchases"))
    )
    mart = frame(
        shop_home,
        "select customer_id, category, purchases from marts.customer_category_affinity "
        "where purchases > 0",
    )
    columns = ["customer_id", "category", "purchases"]
    assert _rows(mart, columns) == _rows(expected, columns)
