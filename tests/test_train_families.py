"""The families beyond ALS/BPR: item-item neighbours and the popularity blend.

Each is fit on the synthetic shop with taste groups, saved and loaded through the
registry format, served as a dense factor model (what scoring uses) and compared with
what the model itself recommends.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from test_train_support import product_id, synthetic_events

from ml.serving.model import ScoringModel
from ml.train.config import BlendParams, InteractionWeighting, ItemKNNParams, Recipe
from ml.train.evaluate import evaluate_model, fit_recipe
from ml.train.history import build_training_data
from ml.train.interactions import aggregate
from ml.train.models import BlendRecommender, ItemKNNRecommender, load_recommender
from ml.train.neighbours import dense_topk
from ml.train.split import build_evaluation_window

CUTOFF = datetime(2026, 6, 1)
END = datetime(2026, 6, 30)
N_GROUPS = 4


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    return synthetic_events(n_customers=160, n_products=40, days=150, seed=11)


@pytest.fixture(scope="module")
def categories() -> pl.DataFrame:
    # The shop's taste groups are its categories (product i belongs to group i % 4).
    return pl.DataFrame(
        {
            "product_id": [product_id(i) for i in range(40)],
            "category": [f"group {i % N_GROUPS}" for i in range(40)],
        }
    )


@pytest.fixture(scope="module")
def training(events, categories):
    weighting = InteractionWeighting(half_life_days=None, purchase_quantity="one")
    return build_training_data(events, CUTOFF, weighting, categories)


@pytest.fixture(scope="module")
def window(events, training):
    return build_evaluation_window(events, training, END)


def test_dense_topk_filters_excluded_cells_and_breaks_ties_by_column():
    scores = np.array([[1.0, 3.0, 3.0, 0.5], [2.0, 2.0, 2.0, 2.0]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    ids, values = dense_topk(scores, exclude, 3)
    assert ids.tolist() == [[2, 0, 3], [0, 1, 2]]
    assert values[0].tolist() == [3.0, 1.0, 0.5]


@pytest.mark.parametrize("seed", range(4))
def test_dense_topk_equals_a_stable_sort_of_every_row(seed):
    # Heavy ties (few distinct values), exclusions, n from 0 to past the width, NaN rows.
    rng = np.random.default_rng(seed)
    for case in range(60):
        rows, width = int(rng.integers(1, 30)), int(rng.integers(1, 200))
        scores = rng.integers(0, int(rng.integers(1, 6)), (rows, width)).astype(np.float32)
        if case % 3 == 0:
            scores = rng.random((rows, width)).astype(np.float32)
        if case % 7 == 0:
            scores[0, rng.integers(0, width)] = np.nan
        exclude = (
            sp.random(rows, width, density=rng.random() * 0.9, format="csr", random_state=case)
            if case % 2
            else None
        )
        n = int(rng.integers(0, width + 5))
        ids, values = dense_topk(scores, exclude, n)
        expected = scores.copy()
        if exclude is not None:
            expected[exclude.toarray() != 0] = np.finfo(np.float32).min
        order = np.argsort(-expected, axis=1, kind="stable")[:, : min(n, width)]
        assert ids.tolist() == order.tolist()
        np.testing.assert_array_equal(values, np.take_along_axis(expected, order, axis=1))


def test_strength_transforms(events):
    counts = aggregate(events, CUTOFF, InteractionWeighting(half_life_days=None))
    logged = aggregate(
        events, CUTOFF, InteractionWeighting(half_life_days=None, strength_transform="log")
    )
    binary = aggregate(
        events, CUTOFF, InteractionWeighting(half_life_days=None, strength_transform="binary")
    )
    assert (binary["strength"] == 1.0).all()
    assert np.allclose(logged["strength"].to_numpy(), np.log1p(counts["strength"].to_numpy()))
    with pytest.raises(ValueError, match="counts, log or binary"):
        aggregate(events, CUTOFF, InteractionWeighting(strength_transform="square"))


def test_a_long_decay_never_leaves_stored_zeros(events):
    # A one-day half-life over 150 days underflows float32 for the oldest pairs.
    training = build_training_data(events, CUTOFF, InteractionWeighting(half_life_days=0.5))
    assert (training.strength.data > 0).all()
    assert training.bought.nnz > training.strength.nnz  # purchases are kept as purchases


@pytest.mark.parametrize("weighting", ["bm25", "cosine", "tfidf"])
def test_item_item_models_learn_the_taste_groups(training, window, weighting):
    model = fit_recipe(
        Recipe(family="itemknn", itemknn=ItemKNNParams(weighting=weighting)), training, 42
    )
    popularity = fit_recipe(Recipe(family="popularity"), training, 42)
    ours = evaluate_model(model, training, window).ndcg_at_10
    baseline = evaluate_model(popularity, training, window).ndcg_at_10
    assert ours > baseline, (weighting, ours, baseline)
    # Similar products stay mostly within the product's own group.
    ids, _ = model.similar_items(np.arange(8), n=5)
    groups = np.arange(training.maps.shape[1]) % N_GROUPS  # P000.. sorted: col == index
    same = groups[ids[ids >= 0]] == np.repeat(groups[:8], (ids >= 0).sum(axis=1))
    assert same.mean() > 0.6


def test_blend_lifts_the_customers_categories_above_plain_popularity(training, window):
    plain = fit_recipe(
        Recipe(family="blend", blend=BlendParams(category_weight=0.0, history_weight=0.0)),
        training,
        42,
    )
    lifted = fit_recipe(
        Recipe(family="blend", blend=BlendParams(category_weight=4.0, history_weight=0.0)),
        training,
        42,
    )
    assert evaluate_model(lifted, training, window).ndcg_at_10 > (
        evaluate_model(plain, training, window).ndcg_at_10
    )
    # Weights 0: popularity by summed strength, the same order for everyone.
    ids, _ = plain.recommend(np.arange(5), None, n=5)
    assert (ids == ids[0]).all()
    order = np.argsort(-np.asarray(training.strength.sum(axis=0)).ravel(), kind="stable")
    assert ids[0].tolist() == order[:5].tolist()


@pytest.mark.parametrize(
    "recipe",
    [
        Recipe(family="itemknn", itemknn=ItemKNNParams(weighting="bm25", neighbours=20)),
        Recipe(family="blend", blend=BlendParams(category_weight=2.0, history_weight=3.0)),
        Recipe(family="blend", blend=BlendParams(category_weight=2.0, history_weight=0.0)),
    ],
    ids=["itemknn", "blend", "blend-categories-only"],
)
def test_served_factors_rank_like_the_model_and_survive_save_and_load(training, recipe, tmp_path):
    model = fit_recipe(recipe, training, 42)
    rows = np.arange(0, training.maps.shape[0], 7)
    exclude = training.bought[rows]
    ids, scores = model.recommend(rows, exclude, n=10)

    loaded = load_recommender(model.save(tmp_path / "model"))
    again, again_scores = loaded.recommend(rows, exclude, n=10)
    assert np.array_equal(ids, again)
    assert np.allclose(scores, again_scores, equal_nan=True)

    served = ScoringModel.from_recommender(loaded, training.maps, name="m", version="1")
    dense = served.user_factors[rows] @ served.item_factors.T
    assert np.allclose(np.take_along_axis(dense, ids, axis=1), scores, rtol=1e-4, atol=1e-6)
    # The served scores put the model's top 10 first (ties aside).
    dense[exclude.nonzero()] = -np.inf
    tenth = np.sort(dense, axis=1)[:, -10]
    assert (np.take_along_axis(dense, ids, axis=1) >= tenth[:, None] - 1e-6).all()


def test_families_are_known_to_the_loader(training, tmp_path):
    for model in (
        ItemKNNRecommender(ItemKNNParams(weighting="cosine")).fit(training.strength),
        BlendRecommender().fit(training.strength, training.categories),
    ):
        loaded = load_recommender(model.save(tmp_path / model.family))
        assert type(loaded) is type(model)
        assert loaded.params() == model.params()
