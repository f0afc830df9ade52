"""Hybrid similar products (ml.text.content_neighbours): blend, minimum support, reasons."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from product_text_data import retail  # noqa: F401  (session fixture)

from ml.serving.similar import SIMILAR_COLUMNS
from ml.text.content_neighbours import (
    BOTH_REASONS,
    BOUGHT_TOGETHER,
    SIMILAR_DESCRIPTION,
    SIMILAR_SCHEMA,
    HybridConfig,
    behaviour_weight,
    candidate_support,
    hybrid_similar,
    top_neighbours,
)
from ml.text.content_neighbours import top_neighbours as collaborative_similar
from ml.text.embeddings import normalise_rows


@pytest.fixture(scope="module")
def similar(retail):  # noqa: F811
    return hybrid_similar(
        retail.product_ids,
        retail.vectors,
        retail.factors.factors,
        retail.factors.buyers,
        retail.products["is_active"].to_numpy(),
    )


def test_output_keeps_the_shape_of_todays_similar_products(similar, retail):  # noqa: F811
    assert similar.schema == pl.Schema(SIMILAR_SCHEMA)
    assert list(SIMILAR_SCHEMA) == [c for c in SIMILAR_COLUMNS if c != "logical_date"]
    assert similar["product_id"].n_unique() == retail.products.height  # a list for everyone
    assert (similar.group_by("product_id").len()["len"] == 10).all()
    assert not (similar["product_id"] == similar["similar_product_id"]).any()
    assert set(similar["reason"]) == {BOUGHT_TOGETHER, SIMILAR_DESCRIPTION, BOTH_REASONS}


def test_minimum_support_keeps_one_buyer_products_off_popular_lists(similar, retail):  # noqa: F811
    buyers = dict(zip(retail.product_ids, retail.factors.buyers.tolist(), strict=True))
    # Today's item-factor lists: about 11 % of rows point at products with <= 2 buyers.
    seen = np.flatnonzero(retail.factors.buyers > 0)
    unit = normalise_rows(retail.factors.factors)
    before, _ = collaborative_similar(unit, seen, seen, 10, num_threads=1)
    before_share = (retail.factors.buyers[before[before >= 0]] <= 2).mean()
    assert before_share > 0.05
    # With the rule no "bought together" row points at such a product ...
    with_buyers = similar.with_columns(
        pl.col("similar_product_id").replace_strict(buyers, return_dtype=pl.Int64).alias("b"),
        pl.col("product_id").replace_strict(buyers, return_dtype=pl.Int64).alias("source_b"),
    )
    behavioural = with_buyers.filter(pl.col("reason").str.contains(BOUGHT_TOGETHER))
    assert behavioural.height > 10_000 and behavioural["b"].min() >= 3
    # ... and popular products' top 5 are supported products.
    popular_top = with_buyers.filter((pl.col("source_b") >= 200) & (pl.col("rank") <= 5))
    assert popular_top.height > 0 and (popular_top["b"] <= 2).mean() < 0.01
    name = dict(zip(retail.product_ids, retail.products["name"].to_list(), strict=True))
    holder = next(p for p, n in name.items() if n == "WHITE HANGING HEART T-LIGHT HOLDER")
    listed = with_buyers.filter(pl.col("product_id") == holder)
    assert listed["b"].min() >= 3
    assert name[listed["similar_product_id"][0]] == "RED HANGING HEART T-LIGHT HOLDER"


def test_never_bought_products_get_content_neighbours(similar, retail):  # noqa: F811
    never = retail.product_ids[retail.factors.buyers == 0]
    assert len(never) > 0
    rows = similar.filter(pl.col("product_id").is_in(never.tolist()))
    assert rows["product_id"].n_unique() == len(never)
    assert set(rows["method"]) == {"content"} and set(rows["reason"]) == {SIMILAR_DESCRIPTION}


def test_lists_are_the_exact_top_m_of_the_blended_score():
    rng = np.random.default_rng(7)
    n, m = 300, 8
    text = normalise_rows(rng.standard_normal((n, 16)).astype(np.float32))
    factors = normalise_rows(rng.standard_normal((n, 6)).astype(np.float32))
    factors[:20] = 0  # unknown to the model
    buyers = rng.integers(0, 60, n)
    buyers[:20] = 0
    eligible = rng.random(n) > 0.1
    config = HybridConfig(m=m, num_threads=1)
    result = hybrid_similar(
        np.array([f"P{i:03d}" for i in range(n)]), text, factors, buyers, eligible, config=config
    )
    weight = behaviour_weight(buyers, np.linalg.norm(factors, axis=1) > 0, config)
    supported = candidate_support(buyers, np.linalg.norm(factors, axis=1) > 0, config)
    blended = weight[:, None] * (factors @ factors.T) * supported[None, :] + (
        1 - weight[:, None]
    ) * (text @ text.T)
    blended[:, ~eligible] = -np.inf
    np.fill_diagonal(blended, -np.inf)
    for source in (0, 25, 150, 299):
        expected = [f"P{j:03d}" for j in np.argsort(-blended[source], kind="stable")[:m]]
        got = result.filter(pl.col("product_id") == f"P{source:03d}")["similar_product_id"]
        assert got.to_list() == expected


def test_reasons_name_the_signal_that_produced_the_row():
    # A, with 20 buyers, weighs behaviour and text equally (w = 20 / (20 + 20)): C is its
    # behavioural twin, B its textual twin (but B has too few buyers to count), D is both.
    text = normalise_rows(
        np.array([[1, 0, 0], [1, 0.05, 0], [0, 1, 0], [1, 0.1, 0], [0, 0, 1]], np.float32)
    )
    factors = normalise_rows(np.array([[1, 0], [0, 1], [1, 0.05], [1, 0.1], [0, 1]], np.float32))
    buyers = np.array([20, 2, 400, 300, 100])  # B: two buyers, text only
    result = hybrid_similar(
        np.array(list("ABCDE")),
        text,
        factors,
        buyers,
        np.ones(5, bool),
        config=HybridConfig(m=3, num_threads=1),
    )
    reasons = dict(
        zip(
            result.filter(pl.col("product_id") == "A")["similar_product_id"],
            result.filter(pl.col("product_id") == "A")["reason"],
            strict=True,
        )
    )
    assert reasons == {"C": BOUGHT_TOGETHER, "D": BOTH_REASONS, "B": SIMILAR_DESCRIPTION}
    # A popular product's list is behaviour: its text is 1/26 of a score.
    c_list = result.filter(pl.col("product_id") == "C")
    assert set(c_list["reason"]) == {BOUGHT_TOGETHER}
    b_list = result.filter(pl.col("product_id") == "B")
    assert b_list["similar_product_id"].to_list()[:2] == ["D", "A"]  # nearest texts
    assert set(b_list["reason"]) == {SIMILAR_DESCRIPTION} and set(b_list["method"]) == {"content"}


def test_top_neighbours_breaks_ties_by_index_and_skips_the_source():
    vectors = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32)
    ids, scores = top_neighbours(vectors, np.array([1]), np.arange(4), 3, num_threads=1)
    assert ids[0].tolist() == [0, 2, 3]
    assert scores[0, 0] == pytest.approx(1.0)
