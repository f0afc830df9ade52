"""Similar products in the warehouse: the hybrid rule over the serving model and product text.

The blend itself is tested in ``test_text_similar.py``; here, what the scoring stage writes:
never the product itself, only recommendable products, the exact top M of the documented
score, content-only lists for products the model has not seen.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from test_score_support import LOGICAL_DATE, build_marts, fit_model

from ml.serving.similar import SimilarConfig, load_products, similar_products
from ml.text.content_neighbours import SIMILAR_DESCRIPTION, behaviour_weight, candidate_support
from ml.text.embeddings import embed_products, normalise_rows
from ml.warehouse import connect
from ml.warehouse.tables import read_frame

M = 8


@pytest.fixture
def similar():
    frames = build_marts()
    model = fit_model(frames, unseen_products=("P0005", "P0030"))
    config = SimilarConfig(m=M, num_threads=1)
    report = similar_products(LOGICAL_DATE, config=config, model=model)
    with connect() as con:
        table = read_frame(con, "SELECT * FROM ml.similar_products ORDER BY product_id, rank")
        products = load_products(con)
    return frames, model, report, table, products, config


def test_never_the_product_itself_and_only_recommendable_products(similar):
    frames, _, report, table, _, _ = similar
    assert table.height > 0
    assert (table["product_id"] != table["similar_product_id"]).all()
    eligible = frames["dim_products"].filter(pl.col("is_recommendable"))
    assert table["similar_product_id"].is_in(eligible["product_id"].implode()).all()
    merchandise = frames["dim_products"].filter(pl.col("is_product"))
    assert report.products == merchandise.height
    assert table.group_by("product_id").len()["len"].to_list() == [M] * report.products


def test_every_list_is_the_exact_top_m_of_the_documented_blend(similar):
    """Brute force over all candidates: w(s) * v(c) * cf + (1 - w(s)) * text."""
    _, model, _, table, products, config = similar
    ids = products["product_id"].to_numpy().astype(str)
    text = normalise_rows(embed_products(products)[0])
    cols = model.product_cols(ids)
    factors = np.zeros((len(ids), model.item_factors.shape[1]), dtype=np.float32)
    factors[cols >= 0] = model.item_factors[cols[cols >= 0]]
    factors = normalise_rows(factors)
    has_factors = np.linalg.norm(factors, axis=1) > 0
    buyers = products["buyers"].to_numpy()
    weight = behaviour_weight(buyers, has_factors, config)
    supported = candidate_support(buyers, has_factors, config)
    eligible = products["eligible"].to_numpy()
    checked = 0
    for source in range(0, len(ids), 7):
        if not products["is_product"][source]:
            continue
        score = weight[source] * (factors @ factors[source]) * supported + (1 - weight[source]) * (
            text @ text[source]
        )
        score[~eligible] = -np.inf
        score[source] = -np.inf
        expected = np.lexsort((np.arange(len(ids)), -score))[:M]
        rows = table.filter(pl.col("product_id") == ids[source])
        np.testing.assert_allclose(rows["score"].to_numpy(), score[expected], atol=1e-4)
        kth = score[expected][-1]
        clear = set(ids[expected][score[expected] > kth + 1e-4])  # up to exact ties
        assert clear <= set(rows["similar_product_id"].to_list()), ids[source]
        checked += 1
    assert checked >= 10


def test_products_the_model_has_not_seen_get_content_neighbours(similar):
    frames, _, report, table, _, _ = similar
    assert report.content >= 2
    rows = table.filter(pl.col("product_id") == "P0005")
    assert (rows["reason"] == SIMILAR_DESCRIPTION).all()
    assert set(rows["method"]) == {"content"}
    # The fixture's names and descriptions share the category's words.
    categories = frames["dim_products"].select("product_id", "category")
    joined = rows.join(categories, left_on="similar_product_id", right_on="product_id")
    own = categories.filter(pl.col("product_id") == "P0005")["category"][0]
    assert (joined["category"] == own).mean() >= 0.75
