"""New-product cold start (ml.text.cold_start) and its time-split check on the real file."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from product_text_data import retail  # noqa: F401  (session fixture)

from ml.text.cold_start import (
    NEW_SIMILAR_BOUGHT,
    ColdStartConfig,
    add_exploration,
    exploration_ranks,
    new_product_candidates,
    new_product_neighbours,
)
from ml.text.evaluation import new_product_hit_rate


def test_new_products_reach_customers_who_bought_their_look_alikes(retail):  # noqa: F811
    bought = retail.bought
    cutoff = bought["ordered_at"].max() - timedelta(days=30)
    history = bought.filter(pl.col("ordered_at") < cutoff)
    sold_before = set(history["product_id"].unique())
    ids = retail.product_ids
    is_bought = np.isin(ids, list(sold_before))
    is_new = ~is_bought  # nothing sold before the cutoff: the model cannot see them
    neighbours = new_product_neighbours(ids, retail.vectors, is_new, is_bought)
    assert neighbours["product_id"].n_unique() >= 0.5 * is_new.sum()
    assert neighbours["neighbour_id"].is_in(list(sold_before)).all()
    assert neighbours["similarity"].min() >= ColdStartConfig().min_similarity
    candidates = new_product_candidates(neighbours, history)
    assert candidates.height > 0
    # Each candidate's reason product is a look-alike the customer really bought.
    check = candidates.join(
        history.select("customer_id", pl.col("product_id").alias("reason_product_id")).unique(),
        on=["customer_id", "reason_product_id"],
        how="semi",
    )
    assert check.height == candidates.height
    assert candidates.select("customer_id", "product_id").is_unique().all()
    # Who really bought the new products in the window: the look-alikes' buyers did more
    # often than buyers of as many random products.
    evaluation = new_product_hit_rate(bought, ids, retail.vectors)
    content = evaluation.rule("content neighbours")
    assert evaluation.new_products > 20
    assert content.hit_rate > evaluation.rule("random products").hit_rate
    assert content.precision > 1.5 * evaluation.rule("random products").precision
    assert content.precision > 2 * evaluation.base_rate


def _lists(customers: dict[str, int], n: int = 20) -> pl.DataFrame:
    rows = [
        {
            "customer_id": c,
            "rank": r,
            "product_id": f"{c}-p{r}",
            "score": 1.0 - r / 100,
            "reason_code": "bought_similar",
            "reason_product_id": "x",
            "reason_context": None,
            "model_name": "affinity-recommender",
            "model_version": "3",
        }
        for c, length in customers.items()
        for r in range(1, length + 1)
    ]
    return pl.DataFrame(rows, schema_overrides={"rank": pl.Int32, "reason_context": pl.String})


def test_exploration_takes_the_documented_share_at_spaced_ranks():
    recs = _lists({"a": 20, "b": 20, "c": 4})
    candidates = pl.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "c"],
            "product_id": ["new1", "new2", "new3", "b-p5", "new1"],
            "score": [0.7, 0.9, 0.6, 0.99, 0.8],
            "reason_product_id": ["a-p1", "a-p2", "a-p3", "b-p1", "c-p1"],
        }
    )
    out = add_exploration(recs, candidates, n=20, config=ColdStartConfig(exploration_share=0.1))
    assert exploration_ranks(20, 2) == [7, 13]
    a = out.filter(pl.col("customer_id") == "a")
    assert a["rank"].to_list() == list(range(1, 21))
    explored = a.filter(pl.col("reason_code") == NEW_SIMILAR_BOUGHT)
    assert explored["product_id"].to_list() == ["new2", "new1"]  # best two, best first
    assert explored["rank"].to_list() == [7, 13]
    assert explored["reason_product_id"].to_list() == ["a-p2", "a-p1"]
    assert set(explored["model_version"]) == {"3"}
    # The collaborative rows keep their order and the list its length.
    kept = a.filter(pl.col("reason_code") != NEW_SIMILAR_BOUGHT)["product_id"].to_list()
    assert kept == [f"a-p{r}" for r in range(1, 19)]
    # b's only candidate is already in its list: unchanged.
    assert out.filter(pl.col("customer_id") == "b").equals(
        recs.filter(pl.col("customer_id") == "b")
    )
    # A short list gets its exploration row without gaps.
    c = out.filter(pl.col("customer_id") == "c")
    assert c["rank"].to_list() == [1, 2, 3, 4, 5]
    assert c.filter(pl.col("reason_code") == NEW_SIMILAR_BOUGHT)["product_id"].to_list() == ["new1"]
    assert out.schema == recs.schema


@pytest.mark.parametrize("share", [0.0, 0.04])
def test_exploration_off_leaves_lists_unchanged(share):
    recs = _lists({"a": 20})
    candidates = pl.DataFrame(
        {"customer_id": ["a"], "product_id": ["new1"], "score": [0.9], "reason_product_id": ["x"]}
    )
    out = add_exploration(recs, candidates, n=20, config=ColdStartConfig(exploration_share=share))
    assert out.equals(recs)


def test_candidates_keep_the_closest_look_alike_the_customer_bought():
    neighbours = pl.DataFrame(
        {
            "product_id": ["N", "N", "M"],
            "neighbour_id": ["A", "B", "A"],
            "neighbour_rank": [1, 2, 1],
            "similarity": [0.9, 0.7, 0.6],
        },
        schema_overrides={"neighbour_rank": pl.Int32},
    )
    history = pl.DataFrame(
        {"customer_id": ["c1", "c1", "c2", "c3"], "product_id": ["A", "B", "B", "Z"]}
    )
    got = new_product_candidates(neighbours, history)
    assert got.rows() == [
        ("c1", "N", 0.9, "A"),
        ("c1", "M", 0.6, "A"),
        ("c2", "N", 0.7, "B"),
    ]
