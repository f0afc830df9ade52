"""Synthetic warehouses for the training tests (helpers only; no tests here).

The shop has taste groups: each customer mostly buys products of their own group, so a
collaborative model has something to learn that popularity cannot see. Everything is
seeded and small, so a whole ``train()`` takes seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from ml.train.config import (
    ALSParams,
    BPRParams,
    ConfidenceScaling,
    InteractionWeighting,
    Recipe,
    SearchConfig,
    SearchSpace,
    TrainConfig,
)

AS_OF = "2026-06-30"
SHOP_END = datetime(2026, 6, 30, 12)
SEGMENT_NAMES = ("Champions", "Loyal Customers", "At Risk", "Hibernating")
# Personal data planted in the warehouse; none of it may reach MLflow.
PII_EMAIL_DOMAIN = "example-pii.test"


def customer_id(index: int) -> str:
    return f"C{index:04d}"


def product_id(index: int) -> str:
    return f"P{index:03d}"


def synthetic_events(
    n_customers: int = 240,
    n_products: int = 60,
    n_groups: int = 4,
    days: int = 150,
    purchases_per_customer: float = 14.0,
    seed: int = 0,
) -> pl.DataFrame:
    """Interaction events of a shop with taste groups (columns of marts.interaction_events)."""
    rng = np.random.default_rng(seed)
    group_of_product = np.arange(n_products) % n_groups
    # Within a group, a few products are much more popular (Zipf-like).
    appeal = 1.0 / (1.0 + np.arange(n_products) // n_groups) ** 0.8
    counts = rng.poisson(purchases_per_customer, n_customers) + 1
    customers = np.repeat(np.arange(n_customers), counts)
    own_group = rng.random(len(customers)) < 0.85
    groups = np.where(own_group, customers % n_groups, rng.integers(0, n_groups, len(customers)))
    products = np.empty(len(customers), dtype=np.int64)
    for group in range(n_groups):  # few groups: a loop over groups, not rows
        members = np.flatnonzero(group_of_product == group)
        weights = appeal[members] / appeal[members].sum()
        chosen = groups == group
        products[chosen] = rng.choice(members, size=int(chosen.sum()), p=weights)
    start = SHOP_END - timedelta(days=days)
    seconds = rng.integers(0, days * 86_400, len(customers))
    occurred = np.array([start], dtype="datetime64[us]") + seconds.astype("timedelta64[s]")
    purchases = pl.DataFrame(
        {
            "customer_id": [customer_id(c) for c in customers],
            "product_id": [product_id(p) for p in products],
            "occurred_at": occurred,
            "event_kind": "purchase",
            "quantity": rng.integers(1, 13, len(customers)).astype(np.int32),
            "order_id": [f"O{i:06d}" for i in range(len(customers))],
        }
    )
    # Views of the same products a little earlier (browsing before buying).
    views = purchases.sample(fraction=0.5, seed=seed).with_columns(
        pl.col("occurred_at") - pl.duration(hours=2),
        pl.lit("view").alias("event_kind"),
        pl.lit(1, dtype=pl.Int32).alias("quantity"),
        pl.lit(None, dtype=pl.String).alias("order_id"),
    )
    return pl.concat([purchases, views]).sort("occurred_at", "customer_id", "product_id")


def write_warehouse(home: Path, events: pl.DataFrame, *, with_segments: bool = True) -> Path:
    """Write ``marts.interaction_events`` (+ segments and PII-bearing customers) to the home."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "warehouse.duckdb"
    customers = sorted(set(events["customer_id"].to_list()))
    with duckdb.connect(str(target)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.register("events_frame", events.to_arrow())
        con.execute(
            "CREATE OR REPLACE TABLE marts.interaction_events AS SELECT customer_id, product_id, "
            "CAST(occurred_at AS TIMESTAMP) AS occurred_at, event_kind, "
            "CAST(quantity AS INTEGER) AS quantity, order_id FROM events_frame"
        )
        people = pl.DataFrame(
            {
                "customer_id": customers,
                "email": [f"person{c}@{PII_EMAIL_DOMAIN}" for c in customers],
                "first_name": [f"Zyxname{c}" for c in customers],
            }
        )
        con.register("people_frame", people.to_arrow())
        con.execute("CREATE OR REPLACE TABLE raw.customers AS SELECT * FROM people_frame")
        if with_segments:
            segments = pl.DataFrame(
                {
                    "customer_id": customers,
                    "segment": [SEGMENT_NAMES[int(c[1:]) % len(SEGMENT_NAMES)] for c in customers],
                }
            )
            con.register("segments_frame", segments.to_arrow())
            con.execute(
                "CREATE OR REPLACE TABLE marts.customer_rfm_segments AS SELECT customer_id, "
                "3 AS r_score, 3 AS f_score, 3 AS m_score, segment FROM segments_frame"
            )
    return target


def pii_values(home: Path) -> set[str]:
    """The planted e-mail addresses and first names."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT email, first_name FROM raw.customers").fetchall()
    return {value for row in rows for value in row}


def fast_config(**overrides) -> TrainConfig:
    """A quick configuration for the synthetic shop (small models, tiny search, no plots)."""
    recipe = Recipe(
        weighting=InteractionWeighting(half_life_days=60.0, purchase_quantity="one"),
        confidence=ConfidenceScaling(scheme="linear", alpha=2.0),
        als=ALSParams(factors=16, regularization=0.5, iterations=8),
        bpr=BPRParams(factors=16, learning_rate=0.05, regularization=0.01, iterations=20),
    )
    search = SearchConfig(
        budget=3,
        space=SearchSpace(
            half_life_days=(30.0,),
            purchase_quantity=(),
            repeat_exponent=(),
            scheme=(),
            alpha=(4.0,),
            factors=(),
            regularization=(),
            iterations=(),
        ),
    )
    settings = {"recipe": recipe, "search": search, "log_plots": False, **overrides}
    return TrainConfig(**settings)


def weak_config(**overrides) -> TrainConfig:
    """A deliberately weak ALS: one factor, one iteration, no search."""
    base = fast_config()
    recipe = Recipe(
        weighting=base.recipe.weighting,
        confidence=base.recipe.confidence,
        als=ALSParams(factors=1, regularization=0.5, iterations=1),
        bpr=base.recipe.bpr,
    )
    settings = {"recipe": recipe, "search": SearchConfig(budget=0), "bpr_enabled": False}
    return fast_config(**{**settings, **overrides})
