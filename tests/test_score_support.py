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
    )
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
    }
    with connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        for name, frame in frames.items():
            con.register("frame", frame.to_arrow())
            con.execute(f"CREATE OR REPLACE TABLE marts.{name} AS SELECT * FROM frame")
            con.unregister("frame")
    return frames


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
