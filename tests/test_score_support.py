"""A small synthetic warehouse (the marts scoring reads) and a real ALS fitted on it.

Shared by the scoring, similar-products, segment and publish tests. The marts have the
columns of ``dbt_project/models/marts`` that the ml steps read; the model is a real
``implicit`` ALS wrapped as :class:`ml.serving.model.ScoringModel`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from ml.serving.model import ScoringModel
from ml.warehouse import connect

LOGICAL_DATE = date(2026, 10, 31)
CATEGORIES = ("Kitchen", "Garden", "Toys", "Books", "Lighting", "Textiles")
SEGMENTS = ("Champions", "Loyal", "At risk", "Hibernating")
COUNTRIES = ("France", "Germany", "United Kingdom")
NOUNS = ("mug", "spade", "robot", "novel", "lamp", "cushion")


def build_marts(
    n_customers: int = 240, n_products: int = 90, seed: int = 7, days: int = 400
) -> dict[str, pl.DataFrame]:
    """Write ``marts.*`` fixture tables into the test warehouse; return them as frames."""
    rng = np.random.default_rng(seed)
    end = datetime.combine(LOGICAL_DATE + timedelta(days=1), datetime.min.time())
    product_ids = [f"P{i:04d}" for i in range(n_products)]
    category_index = np.arange(n_products) % len(CATEGORIES)
    products = pl.DataFrame(
        {
            "product_id": product_ids,
            "product_name": [
                f"{CATEGORIES[c].lower()} {NOUNS[c]} model {i}"
                for i, c in enumerate(category_index)
            ],
            "product_description": [
                f"A {NOUNS[c]} for the {CATEGORIES[c].lower()} lover, item {i}"
                for i, c in enumerate(category_index)
            ],
            "category": [CATEGORIES[c] for c in category_index],
            "brand": ["Acme"] * n_products,
            "price": np.round(rng.uniform(2, 80, n_products), 2),
            # Every 15th product is inactive; the last two codes are postage and a fee.
            "is_active": [i % 15 != 14 for i in range(n_products)],
            "is_product": [i < n_products - 2 for i in range(n_products)],
        }
    ).with_columns((pl.col("is_product") & pl.col("is_active")).alias("is_recommendable"))
    customer_ids = [f"C{i:05d}" for i in range(n_customers)]
    customers = pl.DataFrame(
        {
            "customer_id": customer_ids,
            "country": [COUNTRIES[i % len(COUNTRIES)] for i in range(n_customers)],
            "marketing_opt_in": [i % 2 == 0 for i in range(n_customers)],
        }
    )
    rows = []
    favourite = rng.integers(0, len(CATEGORIES), size=(n_customers, 2))
    merch = np.flatnonzero(np.arange(n_products) < n_products - 2)
    for c in range(n_customers):
        if c % 20 == 19:
            continue  # no history at all
        n_events = 1 if c % 20 == 18 else int(rng.integers(4, 30))
        pool = merch[np.isin(category_index[merch], favourite[c])]
        for _ in range(n_events):
            product = int(rng.choice(pool)) if rng.random() < 0.85 else int(rng.choice(merch))
            when = end - timedelta(days=float(rng.uniform(0.01, days)))
            kind = "purchase" if rng.random() < 0.7 else "view"
            rows.append(
                (customer_ids[c], product_ids[product], when, kind, int(rng.integers(1, 4)))
            )
    events = pl.DataFrame(
        rows,
        schema=["customer_id", "product_id", "occurred_at", "event_kind", "quantity"],
        orient="row",
    ).with_columns(pl.col("occurred_at").dt.cast_time_unit("us"))
    # A purchase on the logical day and one after it (the latter must be invisible).
    events = pl.concat(
        [
            events,
            pl.DataFrame(
                {
                    "customer_id": [customer_ids[0], customer_ids[0]],
                    "product_id": [product_ids[1], product_ids[2]],
                    "occurred_at": [end - timedelta(hours=1), end + timedelta(days=2)],
                    "event_kind": ["purchase", "purchase"],
                    "quantity": [1, 1],
                }
            ).with_columns(pl.col("occurred_at").dt.cast_time_unit("us")),
        ]
    )
    purchases = events.filter(
        (pl.col("event_kind") == "purchase") & (pl.col("occurred_at") < end)
    ).join(products.select("product_id", "price"), on="product_id")
    features = (
        customers.join(
            purchases.group_by("customer_id").agg(
                pl.col("occurred_at").max().alias("last_order_at"),
                pl.len().alias("frequency"),
                (pl.col("price") * pl.col("quantity")).sum().alias("monetary"),
            ),
            on="customer_id",
            how="left",
        )
        .with_columns(
            (pl.lit(end) - pl.col("last_order_at")).dt.total_days().alias("recency_days"),
            pl.col("frequency").fill_null(0),
            pl.col("monetary").fill_null(0.0),
        )
        .with_columns(
            (pl.col("monetary") / pl.col("frequency").replace(0, None)).alias("avg_order_value"),
            pl.lit(400).alias("tenure_days"),
        )
        .select(
            "customer_id",
            "recency_days",
            "frequency",
            "monetary",
            "avg_order_value",
            "tenure_days",
            "country",
        )
    )
    rfm = features.filter(pl.col("frequency") > 0).select(
        "customer_id",
        pl.col("customer_id")
        .str.slice(1)
        .cast(pl.Int64)
        .mod(len(SEGMENTS))
        .replace_strict(dict(enumerate(SEGMENTS)), return_dtype=pl.String)
        .alias("segment"),
        pl.lit(3).alias("r_score"),
        pl.lit(3).alias("f_score"),
        pl.lit(3).alias("m_score"),
    )
    frames = {
        "dim_products": products,
        "dim_customers": customers,
        "interaction_events": events,
        "customer_features": features,
        "customer_rfm_segments": rfm,
        **shared_rule_marts(products, customers, events, rfm, end),
    }
    write_marts(frames)
    return frames


def replace_events(frames: dict[str, pl.DataFrame], events: pl.DataFrame) -> None:
    """Swap the fixture's events and rebuild the marts derived from them (in place)."""
    end = datetime.combine(LOGICAL_DATE + timedelta(days=1), datetime.min.time())
    frames["interaction_events"] = events
    frames.update(
        shared_rule_marts(
            frames["dim_products"],
            frames["dim_customers"],
            events,
            frames["customer_rfm_segments"],
            end,
        )
    )
    write_marts(frames)


def write_marts(frames: dict[str, pl.DataFrame]) -> None:
    """Write the fixture frames as ``marts.<name>`` tables of the test warehouse."""
    with connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        for name, frame in frames.items():
            con.register("frame", frame.to_arrow())
            con.execute(f"CREATE OR REPLACE TABLE marts.{name} AS SELECT * FROM frame")
            con.unregister("frame")


def shared_rule_marts(
    products: pl.DataFrame,
    customers: pl.DataFrame,
    events: pl.DataFrame,
    rfm: pl.DataFrame,
    end: datetime,
    popularity_days: int = 90,
) -> dict[str, pl.DataFrame]:
    """The marts of the shared rules, recomputed here from the fixture's events.

    ``interactions`` (pair history), ``product_popularity`` (distinct buyers per group) and
    ``customer_category_affinity`` (purchases per customer and category), with the columns
    the ml steps read.
    """
    seen = events.filter(pl.col("occurred_at") < end)
    is_purchase = pl.col("event_kind") == "purchase"
    interactions = seen.group_by("customer_id", "product_id").agg(
        is_purchase.sum().alias("purchases"),
        pl.col("quantity").filter(is_purchase).sum().alias("purchased_units"),
        (pl.col("event_kind") == "add_to_cart").sum().alias("add_to_carts"),
        (pl.col("event_kind") == "view").sum().alias("views"),
        pl.col("occurred_at").min().alias("first_at"),
        pl.col("occurred_at").max().alias("last_at"),
        pl.col("occurred_at").filter(is_purchase).max().alias("last_bought_at"),
        pl.col("occurred_at").filter(pl.col("event_kind") == "view").max().alias("last_viewed_at"),
    )
    merchandise = products.filter(pl.col("is_product")).select(
        "product_id", "category", "is_recommendable"
    )
    buyers = (
        seen.filter(is_purchase)
        .group_by("customer_id", "product_id")
        .agg(pl.col("occurred_at").max().alias("last_bought_at"))
        .join(customers.select("customer_id", "country"), on="customer_id")
        .join(rfm.select("customer_id", "segment"), on="customer_id", how="left")
        .join(merchandise, on="product_id")
    )
    since = end - timedelta(days=popularity_days)
    groups = []
    for kind, column in (("overall", None), ("segment", "segment"), ("country", "country")):
        value = pl.lit("") if column is None else pl.col(column)
        groups.append(
            buyers.filter(value.is_not_null()).select(
                pl.lit(kind).alias("group_kind"),
                value.alias("group_value"),
                "product_id",
                "last_bought_at",
            )
        )
    groups.append(
        buyers.select(
            pl.lit("category").alias("group_kind"),
            pl.col("category").alias("group_value"),
            "product_id",
            "last_bought_at",
        )
    )
    counted = (
        pl.concat(groups)
        .group_by("group_kind", "group_value", "product_id")
        .agg(
            pl.len().alias("buyers"),
            (pl.col("last_bought_at") >= since).sum().alias("recent_buyers"),
        )
        .join(merchandise, on="product_id")
    )
    # Every merchandise product is in the overall group, bought or not.
    unsold = merchandise.join(
        counted.filter(pl.col("group_kind") == "overall"), on="product_id", how="anti"
    ).select(
        pl.lit("overall").alias("group_kind"),
        pl.lit("").alias("group_value"),
        "product_id",
        pl.lit(0, pl.UInt32).alias("buyers"),
        pl.lit(0, pl.UInt32).alias("recent_buyers"),
        "category",
        "is_recommendable",
    )
    popularity = pl.concat([counted, unsold]).with_columns(
        pl.struct(pl.col("buyers").cast(pl.Int64).neg(), "product_id")
        .rank("ordinal")
        .over("group_kind", "group_value")
        .alias("buyers_rank"),
        pl.struct(pl.col("recent_buyers").cast(pl.Int64).neg(), "product_id")
        .rank("ordinal")
        .over("group_kind", "group_value")
        .alias("recent_buyers_rank"),
        pl.lit(popularity_days).alias("popularity_days"),
    )
    category_purchases = (
        seen.filter(is_purchase)
        .join(products.select("product_id", "category"), on="product_id")
        .group_by("customer_id", "category")
        .agg(pl.len().alias("purchases"))
    )
    return {
        "interactions": interactions,
        "product_popularity": popularity,
        "customer_category_affinity": category_purchases,
    }


def fit_model(
    frames: dict[str, pl.DataFrame],
    *,
    factors: int = 16,
    leave_out: tuple[str, ...] = ("C00003",),
    unseen_products: tuple[str, ...] = ("P0005",),
) -> ScoringModel:
    """Fit a real implicit ALS on the fixture's events before the logical date's end.

    ``leave_out`` customers and ``unseen_products`` are dropped from training (new ones).
    """
    end = datetime.combine(LOGICAL_DATE + timedelta(days=1), datetime.min.time())
    events = frames["interaction_events"].filter(
        (pl.col("occurred_at") < end)
        & ~pl.col("customer_id").is_in(list(leave_out))
        & ~pl.col("product_id").is_in(list(unseen_products))
    )
    customer_ids = np.sort(events["customer_id"].unique().to_numpy().astype(str))
    product_ids = np.sort(events["product_id"].unique().to_numpy().astype(str))
    rows = np.searchsorted(customer_ids, events["customer_id"].to_numpy().astype(str))
    cols = np.searchsorted(product_ids, events["product_id"].to_numpy().astype(str))
    weight = np.where(events["event_kind"].to_numpy() == "purchase", 5.0, 1.0)
    matrix = sp.csr_matrix(
        (weight.astype(np.float32), (rows, cols)), shape=(len(customer_ids), len(product_ids))
    )
    matrix.sum_duplicates()
    als = AlternatingLeastSquares(
        factors=factors, iterations=8, regularization=0.05, random_state=0, num_threads=1
    )
    als.fit(matrix, show_progress=False)
    return ScoringModel(
        "test-als", "1", "als", customer_ids, product_ids, als.user_factors, als.item_factors
    )
