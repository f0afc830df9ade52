"""Similar products: item-factor cosine, never itself, TF-IDF for products the model lacks."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from test_score_support import LOGICAL_DATE, build_marts, fit_model

from ml.serving.similar import (
    COLLABORATIVE_REASON,
    CONTENT_REASON,
    SimilarConfig,
    content_similar,
    similar_products,
)
from ml.warehouse import connect
from ml.warehouse.tables import read_frame

M = 8


@pytest.fixture
def similar():
    frames = build_marts()
    model = fit_model(frames, unseen_products=("P0005", "P0030"))
    report = similar_products(LOGICAL_DATE, config=SimilarConfig(m=M), model=model)
    with connect() as con:
        table = read_frame(con, "SELECT * FROM ml.similar_products ORDER BY product_id, rank")
    return frames, model, report, table


def test_never_the_product_itself_and_only_active_merchandise(similar):
    frames, _, report, table = similar
    assert table.height > 0
    assert (table["product_id"] != table["similar_product_id"]).all()
    eligible = frames["dim_products"].filter(pl.col("is_active") & pl.col("is_product"))
    assert table["similar_product_id"].is_in(eligible["product_id"].implode()).all()
    merchandise = frames["dim_products"].filter(pl.col("is_product"))
    assert report.products == merchandise.height
    assert table.group_by("product_id").len()["len"].to_list() == [M] * report.products


def test_known_products_by_item_factor_cosine(similar):
    _, model, _, table = similar
    source = "P0010"
    rows = table.filter(pl.col("product_id") == source)
    assert (rows["reason"] == COLLABORATIVE_REASON).all()
    unit = model.unit_item_factors()
    col = model.product_cols([source])[0]
    cosine = unit @ unit[col]
    candidates = model.product_cols(rows["similar_product_id"].to_list())
    np.testing.assert_allclose(rows["score"].to_numpy(), cosine[candidates], atol=1e-5)
    assert (np.diff(rows["score"].to_numpy()) <= 1e-9).all()


def test_collaborative_neighbours_are_the_true_top_m(similar):
    """Every collaborative list equals a brute-force top M over all eligible candidates."""
    frames, model, _, table = similar
    eligible = frames["dim_products"].filter(pl.col("is_active") & pl.col("is_product"))
    candidate_ids = np.array(sorted(eligible["product_id"].to_list()))
    candidate_cols = model.product_cols(candidate_ids)
    candidate_ids, candidate_cols = (
        candidate_ids[candidate_cols >= 0],
        candidate_cols[candidate_cols >= 0],
    )
    unit = model.unit_item_factors()
    collaborative = table.filter(pl.col("reason") == COLLABORATIVE_REASON)
    checked = 0
    for (source,), rows in collaborative.group_by("product_id", maintain_order=True):
        cosine = unit[candidate_cols] @ unit[model.product_cols([source])[0]]
        others = candidate_ids != source
        order = np.lexsort((candidate_ids[others], -cosine[others]))[:M]
        expected_scores = cosine[others][order]
        np.testing.assert_allclose(rows["score"].to_numpy(), expected_scores, atol=1e-5)
        # The same products, up to the order of exact ties.
        kth = expected_scores[-1]
        clear = set(candidate_ids[others][order][expected_scores > kth + 1e-5])
        assert clear <= set(rows["similar_product_id"].to_list()), source
        checked += 1
    assert checked >= 10


def test_unseen_products_fall_back_to_description_similarity(similar):
    frames, _, report, table = similar
    assert report.content == 2
    rows = table.filter(pl.col("product_id") == "P0005")
    assert (rows["reason"] == CONTENT_REASON).all()
    # The fixture's texts share the category words: neighbours come from its category.
    categories = frames["dim_products"].select("product_id", "category")
    joined = rows.join(categories, left_on="similar_product_id", right_on="product_id")
    own = categories.filter(pl.col("product_id") == "P0005")["category"][0]
    assert (joined["category"] == own).all()


def test_content_similarity_ranks_shared_words_first():
    texts = [
        "red ceramic mug",
        "blue ceramic mug",
        "red wool scarf",
        "garden spade steel",
        "ceramic mug large red",
    ]
    ids, scores = content_similar(texts, np.array([0]), np.arange(5), m=4)
    assert ids[0, 0] == 4 and 0 not in ids[0]
    assert 3 not in ids[0]  # shares no word: never listed
    assert ids[0, -1] == -1 and np.isnan(scores[0, -1])
