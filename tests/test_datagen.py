"""Synthetic shop generator: determinism, contract, integrity, model signal, defects."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ml.config import DEFAULT_SHOP_END
from ml.datagen import EXPECTED_DEFECTS_FILE, GENERATED_ENTITIES, generate_shop
from ml.datagen.common import id_expr, numbered_ids
from ml.datagen.defects import RULES, as_text
from ml.datagen.shop import POLARS_TYPES
from ml.datagen.vocab import REVIEW_TITLES
from ml.ingest.contract import CAMPAIGN_TARGET_TYPES, ENTITIES, EVENT_TYPES, ORDER_STATUSES

SMALL = {"customers": 2000, "products": 500, "days": 90, "seed": 7}
TINY = {"customers": 300, "products": 80, "days": 30, "seed": 11}
PERIOD_END = datetime.strptime(DEFAULT_SHOP_END, "%Y-%m-%d") + timedelta(days=1)
PERIOD_START = PERIOD_END - timedelta(days=SMALL["days"])


def read_shop(folder: Path) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(folder / f"{name}.parquet") for name in GENERATED_ENTITIES}


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    generate_shop(folder, **SMALL)
    return folder


@pytest.fixture(scope="module")
def shop(shop_dir: Path) -> dict[str, pl.DataFrame]:
    return read_shop(shop_dir)


@pytest.fixture(scope="module")
def defective_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("defective")
    generate_shop(folder, **SMALL, defect_rate=0.03)
    return folder


# --- files and determinism ------------------------------------------------------------


def test_returns_rows_written_per_entity(tmp_path: Path) -> None:
    counts = generate_shop(tmp_path, **TINY)
    assert list(counts) == list(GENERATED_ENTITIES)
    for name, rows in counts.items():
        assert pl.read_parquet(tmp_path / f"{name}.parquet").height == rows
    assert counts["campaigns"] == 6
    assert not (tmp_path / EXPECTED_DEFECTS_FILE).exists()


@pytest.mark.parametrize("defect_rate", [0.0, 0.05])
def test_same_arguments_give_byte_identical_files(tmp_path: Path, defect_rate: float) -> None:
    generate_shop(tmp_path / "a", **TINY, defect_rate=defect_rate)
    generate_shop(tmp_path / "b", **TINY, defect_rate=defect_rate)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_another_seed_gives_another_shop(tmp_path: Path) -> None:
    generate_shop(tmp_path / "a", **TINY)
    generate_shop(tmp_path / "b", **{**TINY, "seed": TINY["seed"] + 1})
    assert (tmp_path / "a" / "events.parquet").read_bytes() != (
        tmp_path / "b" / "events.parquet"
    ).read_bytes()


def test_schema_matches_contract(shop: dict[str, pl.DataFrame]) -> None:
    for name, frame in shop.items():
        entity = ENTITIES[name]
        assert frame.columns == entity.column_names, name
        for column in entity.columns:
            assert frame.schema[column.name] == POLARS_TYPES[column.dtype], (name, column.name)
            if not column.nullable:
                assert frame[column.name].null_count() == 0, (name, column.name)


def test_smallest_shop_works(tmp_path: Path) -> None:
    counts = generate_shop(tmp_path, customers=1, products=1, days=1, seed=0)
    assert counts["customers"] == 1 and counts["products"] == 1


@pytest.mark.parametrize(
    "bad", [{"customers": 0}, {"products": 0}, {"days": 0}, {"defect_rate": 1.5}]
)
def test_invalid_arguments_are_refused(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(ValueError):
        generate_shop(tmp_path, **{**TINY, **bad})


def test_progress_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ml.datagen"):
        generate_shop(tmp_path, **TINY)
    text = caplog.text
    assert all(name in text for name in GENERATED_ENTITIES)
    assert "rows/s" in text and "per customer-day" in text


# --- integrity -------------------------------------------------------------------------


def test_ids_are_unique_and_readable(shop: dict[str, pl.DataFrame]) -> None:
    patterns = {
        "customers": ("customer_id", r"^C\d{7}$"),
        "products": ("product_id", r"^P\d{6}$"),
        "orders": ("order_id", r"^O\d{8}$"),
        "events": ("event_id", r"^E\d{10}$"),
        "reviews": ("review_id", r"^R\d{8}$"),
        "campaigns": ("campaign_id", r"^CMP\d{3}$"),
    }
    for name, (column, pattern) in patterns.items():
        ids = shop[name][column]
        assert ids.is_unique().all(), name
        assert ids.str.contains(pattern).all(), name
    lines = shop["order_lines"]
    assert lines.select(pl.struct("order_id", "line_no").is_unique().all()).item()


def test_references_resolve_in_a_clean_shop(shop: dict[str, pl.DataFrame]) -> None:
    customers = shop["customers"]["customer_id"].implode()
    products = shop["products"]["product_id"].implode()
    orders = shop["orders"]["order_id"].implode()
    lines, events = shop["order_lines"], shop["events"]
    assert lines["order_id"].is_in(orders).all()
    assert lines["product_id"].is_in(products).all()
    assert events["product_id"].is_in(products).all()
    for name in ("orders", "events", "reviews"):
        known = shop[name]["customer_id"].drop_nulls()
        assert known.is_in(customers).all(), name
    assert shop["reviews"]["product_id"].is_in(products).all()
    assert shop["orders"]["order_id"].is_in(lines["order_id"].implode()).all()


def test_everything_happens_inside_the_period(shop: dict[str, pl.DataFrame]) -> None:
    for name, column in (
        ("events", "occurred_at"),
        ("orders", "ordered_at"),
        ("reviews", "created_at"),
    ):
        times = shop[name][column]
        assert times.min() >= PERIOD_START and times.max() < PERIOD_END, name


def test_activity_follows_sign_up_and_launch(shop: dict[str, pl.DataFrame]) -> None:
    events = shop["events"]
    with_customer = events.join(shop["customers"], on="customer_id")
    assert (with_customer["occurred_at"] >= with_customer["signed_up_at"]).all()
    with_product = events.join(shop["products"], on="product_id")
    assert (with_product["occurred_at"] >= with_product["first_seen_at"]).all()


def test_purchase_events_are_the_order_lines(shop: dict[str, pl.DataFrame]) -> None:
    purchases = (
        shop["events"]
        .filter(pl.col("event_type") == "purchase")
        .select("customer_id", pl.col("occurred_at").alias("at"), "product_id")
    )
    bought = (
        shop["order_lines"]
        .join(shop["orders"], on="order_id")
        .select("customer_id", pl.col("ordered_at").alias("at"), "product_id")
    )
    columns = ["at", "customer_id", "product_id"]
    assert purchases.sort(columns).equals(bought.sort(columns))
    assert shop["orders"]["customer_id"].null_count() > 0  # guest orders
    assert shop["events"]["customer_id"].null_count() > 0  # anonymous sessions


def test_unit_prices_follow_shelf_prices(shop: dict[str, pl.DataFrame]) -> None:
    lines = shop["order_lines"].join(shop["products"], on="product_id")
    ratio = lines["unit_price"] / lines["price"]
    assert ratio.max() <= 1.0 + 1e-9 and ratio.min() >= 0.75
    assert (ratio < 1).mean() > 0.05  # some discounts
    assert (lines["quantity"] >= 1).all()


# --- realism and model signal ----------------------------------------------------------


def test_customers_concentrate_on_their_tastes(shop: dict[str, pl.DataFrame]) -> None:
    """Category concentration per customer (Herfindahl) is far above the overall mix."""
    views = (
        shop["events"]
        .filter(pl.col("event_type") == "view", pl.col("customer_id").is_not_null())
        .join(shop["products"].select("product_id", "category"), on="product_id")
    )
    per_category = views.group_by("customer_id", "category").agg(n=pl.len())
    per_category = per_category.with_columns(
        share=pl.col("n") / pl.col("n").sum().over("customer_id"),
        total=pl.col("n").sum().over("customer_id"),
    )
    personal = (
        per_category.filter(pl.col("total") >= 10)
        .group_by("customer_id")
        .agg(h=(pl.col("share") ** 2).sum())["h"]
        .mean()
    )
    overall = views.group_by("category").agg(n=pl.len())
    chance = ((overall["n"] / overall["n"].sum()) ** 2).sum()
    assert personal > 4 * chance


def test_popularity_has_a_long_tail(shop: dict[str, pl.DataFrame]) -> None:
    bought = shop["order_lines"].group_by("product_id").agg(n=pl.len()).sort("n", descending=True)
    top_tenth = len(shop["products"]) // 10
    assert bought["n"].head(top_tenth).sum() / bought["n"].sum() > 0.4


def test_funnel_drops_off_realistically(shop: dict[str, pl.DataFrame]) -> None:
    counts = dict(shop["events"]["event_type"].value_counts().iter_rows())
    assert set(counts) <= set(EVENT_TYPES)
    assert 0.15 < counts["add_to_cart"] / counts["view"] < 0.35
    assert 0.25 < counts["purchase"] / counts["add_to_cart"] < 0.5


def test_orders_are_cancelled_returned_and_repeated(shop: dict[str, pl.DataFrame]) -> None:
    status = shop["orders"]["status"]
    assert set(status.unique()) == set(ORDER_STATUSES)
    assert 0.01 < (status != "placed").mean() < 0.15
    repeats = (
        shop["order_lines"]
        .join(shop["orders"], on="order_id")
        .filter(pl.col("customer_id").is_not_null())
        .group_by("customer_id", "product_id")
        .agg(orders=pl.col("order_id").n_unique())
        .filter(pl.col("orders") > 1)
    )
    assert repeats.height > 10


def test_customers_have_fake_unique_emails_and_opt_outs(shop: dict[str, pl.DataFrame]) -> None:
    customers = shop["customers"]
    emails = customers["email"]
    assert emails.is_unique().all()
    assert emails.str.contains(r"^[a-z]+\.[a-z]+\d+@example\.(com|org|net)$").all()
    assert 0.15 < (~customers["marketing_opt_in"]).mean() < 0.35
    assert customers["first_name"].n_unique() > 100


def test_new_customers_and_products_appear_during_the_period(
    shop: dict[str, pl.DataFrame],
) -> None:
    events = shop["events"]
    new_products = shop["products"].filter(pl.col("first_seen_at") >= PERIOD_START)
    new_customers = shop["customers"].filter(pl.col("signed_up_at") >= PERIOD_START)
    assert 0 < new_products.height < 0.3 * len(shop["products"])
    assert 0 < new_customers.height < 0.5 * len(shop["customers"])
    assert events["product_id"].is_in(new_products["product_id"].implode()).any()
    assert events["customer_id"].is_in(new_customers["customer_id"].implode()).any()


def test_catalog_reads_like_a_shop(shop: dict[str, pl.DataFrame]) -> None:
    products = shop["products"]
    assert 15 <= products["category"].n_unique() <= 25
    assert products["brand"].n_unique() >= 40
    assert products["name"].str.split(" ").list.len().min() >= 3
    assert (products["price"] > 0).all()
    assert 0 < (~products["is_active"]).sum() < 0.2 * len(products)
    median_price = products.group_by("category").agg(pl.col("price").median())["price"]
    assert median_price.max() > 5 * median_price.min()  # furniture is not snacks


def test_review_text_agrees_with_rating(shop: dict[str, pl.DataFrame]) -> None:
    reviews = shop["reviews"]
    assert reviews.height > 0
    assert reviews["rating"].is_between(1, 5).all()
    for rating, titles in enumerate(REVIEW_TITLES, start=1):
        chosen = reviews.filter(pl.col("rating") == rating)["title"]
        assert chosen.is_in(list(titles)).all(), rating
    assert reviews["body"].str.len_chars().min() > 20
    assert reviews["rating"].mean() > 3.3  # shoppers are mostly happy


def test_campaigns_are_targeted_and_templated(shop: dict[str, pl.DataFrame]) -> None:
    campaigns = shop["campaigns"]
    assert set(campaigns["target_type"]) <= set(CAMPAIGN_TARGET_TYPES)
    assert set(campaigns["channel"]) == {"email", "sms", "push"}
    assert campaigns["control_share"].is_between(0.1, 0.5).all()
    assert campaigns["message_template"].str.contains("{{first_name}}", literal=True).all()
    assert (campaigns["ends_at"] > campaigns["starts_at"]).all()
    categories = campaigns.filter(pl.col("target_type") == "category")["target_value"]
    assert categories.len() > 0
    assert categories.is_in(shop["products"]["category"].implode()).all()
    assert campaigns["starts_at"].min() >= PERIOD_START


# --- defects ---------------------------------------------------------------------------


def test_defect_file_lists_every_rule_kind(defective_dir: Path) -> None:
    expected = pl.read_parquet(defective_dir / EXPECTED_DEFECTS_FILE)
    assert expected.schema == {"entity": pl.Utf8, "source_row": pl.Int64, "rule": pl.Utf8}
    for name, rules in RULES.items():
        found = set(expected.filter(pl.col("entity") == name)["rule"])
        if name == "campaigns":  # 6 rows: too few for a 3% rate
            continue
        assert found == set(rules), name
    rows = {name: pl.read_parquet(defective_dir / f"{name}.parquet").height for name in RULES}
    assert expected.select(pl.struct("entity", "source_row").is_unique().all()).item()
    for name, frame in expected.group_by("entity"):
        assert frame["source_row"].is_between(1, rows[name[0]]).all()


def test_defective_files_are_text_and_keep_the_clean_rows(
    defective_dir: Path, shop_dir: Path
) -> None:
    """Dropping the listed rows from a defective file leaves the clean shop, as text."""
    expected = pl.read_parquet(defective_dir / EXPECTED_DEFECTS_FILE)
    for name in GENERATED_ENTITIES:
        mixed = pl.read_parquet(defective_dir / f"{name}.parquet")
        clean = pl.read_parquet(shop_dir / f"{name}.parquet")
        bad_rows = expected.filter(pl.col("entity") == name)["source_row"].to_numpy()
        if len(bad_rows) == 0:
            assert mixed.equals(clean), name
            continue
        assert all(dtype == pl.Utf8 for dtype in mixed.schema.values()), name
        keep = np.ones(mixed.height, dtype=bool)
        keep[bad_rows - 1] = False
        assert mixed.filter(pl.Series(keep)).equals(as_text(clean)), name


def test_each_defect_breaks_its_rule(defective_dir: Path) -> None:
    expected = pl.read_parquet(defective_dir / EXPECTED_DEFECTS_FILE)

    def rows(name: str, rule: str) -> pl.DataFrame:
        frame = pl.read_parquet(defective_dir / f"{name}.parquet").with_row_index("row", 1)
        wanted = expected.filter(pl.col("entity") == name, pl.col("rule") == rule)
        return frame.join(wanted, left_on="row", right_on="source_row")

    events = pl.read_parquet(defective_dir / "events.parquet").with_row_index("row", 1)
    duplicates = rows("events", "duplicate_key")
    for row, event_id in duplicates.select("row", "event_id").iter_rows():
        earlier = events.filter(pl.col("event_id") == event_id, pl.col("row") < row)
        assert earlier.height == 1
    missing = rows("orders", "missing_value")
    required = [c.name for c in ENTITIES["orders"].columns if not c.nullable]
    assert missing.select(pl.any_horizontal(pl.col(required).is_null()).all()).item()
    assert rows("events", "unknown_event_type")["event_type"].is_in(EVENT_TYPES).not_().all()
    assert rows("events", "future_timestamp")["occurred_at"].str.starts_with("2099").all()
    unparseable = rows("customers", "unparseable_timestamp")["signed_up_at"]
    assert unparseable.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False).null_count() == len(
        unparseable
    )
    assert (rows("order_lines", "negative_price")["unit_price"].cast(pl.Float64) < 0).all()
    assert (rows("order_lines", "zero_quantity")["quantity"] == "0").all()
    assert (
        rows("order_lines", "bad_integer")["quantity"].cast(pl.Int64, strict=False).is_null().all()
    )
    ratings = rows("reviews", "rating_out_of_range")["rating"].cast(pl.Int64)
    assert (~ratings.is_between(1, 5)).all()
    products = pl.read_parquet(defective_dir / "products.parquet")["product_id"].implode()
    assert rows("order_lines", "orphan_reference")["product_id"].is_in(products).not_().all()


def test_a_clean_run_removes_a_stale_defect_list(tmp_path: Path) -> None:
    generate_shop(tmp_path, **TINY, defect_rate=0.1)
    assert (tmp_path / EXPECTED_DEFECTS_FILE).exists()
    generate_shop(tmp_path, **TINY)
    assert not (tmp_path / EXPECTED_DEFECTS_FILE).exists()


@pytest.mark.parametrize(("prefix", "count"), [("C", 25), ("CMP", 1200)])
def test_id_tables_match_the_id_format(prefix: str, count: int) -> None:
    """The fast id table and the per-row formatter agree, also past the padded width."""
    expected = pl.select(id_expr(prefix, pl.int_range(1, count + 1))).to_series()
    assert numbered_ids(prefix, count).to_list() == expected.to_list()
