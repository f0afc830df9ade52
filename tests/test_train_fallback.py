"""Never worse than popularity: when no personalized model beats it, the blend serves.

The synthetic shop has taste groups that are also its product categories, so the blend
(popularity lifted by the customer's own categories) beats plain popularity, while an
ALS crushed by regularization learns nothing and does not.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from test_train_support import AS_OF, fast_config, product_id, synthetic_events, write_warehouse

from ml.serving.model import load_serving_model
from ml.train import train
from ml.train.config import ALSParams, BlendParams, SearchConfig
from ml.train.tracking import CHAMPION, DEFAULT_MODEL_NAME, alias_version

N_PRODUCTS = 60


@pytest.fixture
def categorised_shop(affinity_home: Path) -> pl.DataFrame:
    events = synthetic_events(n_products=N_PRODUCTS)
    write_warehouse(affinity_home, events)
    products = pl.DataFrame(
        {
            "product_id": [product_id(i) for i in range(N_PRODUCTS)],
            "category": [f"taste {i % 4}" for i in range(N_PRODUCTS)],
        }
    )
    with duckdb.connect(str(affinity_home / "warehouse.duckdb")) as con:
        con.register("products_frame", products.to_arrow())
        con.execute("CREATE OR REPLACE TABLE marts.dim_products AS SELECT * FROM products_frame")
    return events


def useless_als_config():
    base = fast_config()
    recipe = dataclasses.replace(
        base.recipe,
        als=ALSParams(factors=4, regularization=1e7, iterations=2),
        blend=BlendParams(category_weight=4.0, history_weight=0.0),
    )
    return fast_config(recipe=recipe, search=SearchConfig(budget=0), bpr_enabled=False)


def test_the_blend_serves_when_no_personalized_model_beats_popularity(categorised_shop):
    result = train(AS_OF, config=useless_als_config())

    ndcg = result.metrics
    assert ndcg["als"]["ndcg_at_10"] <= ndcg["popularity"]["ndcg_at_10"]
    assert ndcg["blend"]["ndcg_at_10"] > ndcg["popularity"]["ndcg_at_10"]
    assert result.promoted and result.family == "blend"
    assert "no personalized model beats popularity" in result.reason
    assert "serving the popularity blend" in result.reason
    assert alias_version(DEFAULT_MODEL_NAME, CHAMPION) == result.model_version

    # Scoring serves it: customers get products of their own taste group first.
    served = load_serving_model(AS_OF)
    assert served.family == "blend" and served.version == result.model_version
    rows = served.customer_rows(["C0001", "C0002"])
    scores = served.user_factors[rows] @ served.item_factors.T
    top = np.argsort(-scores, axis=1)[:, :5]
    groups = np.array([int(p[1:]) % 4 for p in served.product_ids])
    assert (groups[top[0]] == 1).mean() >= 0.6 and (groups[top[1]] == 2).mean() >= 0.6


def test_the_gate_says_so_when_the_blend_does_not_beat_popularity_either(categorised_shop):
    config = useless_als_config()
    # A blend with no lift and a one-day half-life: yesterday's popularity, worse.
    recipe = dataclasses.replace(
        config.recipe,
        weighting=dataclasses.replace(config.recipe.weighting, half_life_days=0.05),
        blend=BlendParams(category_weight=0.0, history_weight=0.0),
    )
    result = train(AS_OF, config=dataclasses.replace(config, recipe=recipe))

    assert result.decision == "challenger"
    assert "nor does the popularity blend" in result.reason
    assert alias_version(DEFAULT_MODEL_NAME, CHAMPION) is None
