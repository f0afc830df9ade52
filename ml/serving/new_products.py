"""New products in recommendation lists: exploration slots for products nobody bought yet.

Collaborative filtering cannot see a product without buyers. Each list gives
``floor(ScoreConfig.new_product_share * n)`` slots (0 switches it off) to recommendable
products with no buyer yet, offered to customers who bought one of their text look-alikes
(reason ``new_similar_bought``: "new, similar to X you bought"); the rule is
:mod:`ml.text.cold_start`.
"""

from __future__ import annotations

import logging

import duckdb
import polars as pl

from ml.serving.config import ScoreConfig
from ml.serving.inputs import ScoringInputs
from ml.serving.similar import load_products
from ml.text.cold_start import (
    ColdStartConfig,
    add_exploration,
    new_product_candidates,
    new_product_neighbours,
)
from ml.text.embeddings import embed_products, normalise_rows
from ml.text.products import load_store

log = logging.getLogger(__name__)


def exploration_candidates(
    con: duckdb.DuckDBPyConnection, inputs: ScoringInputs, config: ScoreConfig
) -> pl.DataFrame | None:
    """Every customer's new-product candidates (:func:`new_product_candidates`), or None
    when exploration is off or there is no new product."""
    rule = ColdStartConfig(exploration_share=config.new_product_share)
    if rule.slots(config.n) == 0:
        return None
    products = load_products(con)
    buyers = products["buyers"].fill_null(0).to_numpy()
    is_new = products["eligible"].fill_null(False).to_numpy().astype(bool) & (buyers == 0)
    if not is_new.any():
        return None
    vectors = normalise_rows(embed_products(products, load_store(con))[0])
    neighbours = new_product_neighbours(
        products["product_id"].to_numpy().astype(str), vectors, is_new, buyers > 0, rule
    )
    bought = inputs.history.filter(pl.col("bought").fill_null(False))
    candidates = new_product_candidates(neighbours, bought.select("customer_id", "product_id"))
    log.info(
        "new products: %d never bought, %d with bought look-alikes, %d candidate pairs",
        int(is_new.sum()),
        neighbours["product_id"].n_unique(),
        candidates.height,
    )
    return candidates


def explore_new_products(
    con: duckdb.DuckDBPyConnection,
    recommendations: pl.DataFrame,
    inputs: ScoringInputs,
    config: ScoreConfig,
    candidates: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Give each list's exploration slots to never-bought products its customer may like.

    ``candidates``: :func:`exploration_candidates` when already computed (customers
    without a list in ``recommendations`` are ignored).

    Returns ``recommendations`` with the same columns and list lengths.
    """
    rule = ColdStartConfig(exploration_share=config.new_product_share)
    if rule.slots(config.n) == 0:
        return recommendations
    if candidates is None:
        candidates = exploration_candidates(con, inputs, config)
    if candidates is None:
        return recommendations
    result = add_exploration(recommendations, candidates, config.n, rule)
    placed = int((result["reason_code"] == "new_similar_bought").sum())
    log.info("new products: %d exploration rows", placed)
    return result
