"""Models, index maps, bundles and the interaction matrices on small synthetic data."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from test_train_support import synthetic_events

from ml.train.bundle import TrainedRecommender
from ml.train.config import (
    DBT_WEIGHTING,
    ALSParams,
    BPRParams,
    ConfidenceScaling,
    InteractionWeighting,
    Recipe,
)
from ml.train.evaluate import fit_recipe
from ml.train.history import build_training_data, distinct_pairs
from ml.train.interactions import IndexMaps, aggregate, confidence_matrix, pairs_to_csr
from ml.train.models import (
    ALSRecommender,
    BPRRecommender,
    PopularityRecommender,
    Recommender,
    load_recommender,
)
from ml.train.split import TimeSplit, build_evaluation_window


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    return synthetic_events(n_customers=120, n_products=30, days=120, seed=3)


@pytest.fixture(scope="module")
def training(events):
    cutoff = datetime(2026, 6, 1)
    return build_training_data(events, cutoff, InteractionWeighting(purchase_quantity="one"))


def make_model(family: str) -> Recommender:
    if family == "als":
        return ALSRecommender(ALSParams(factors=8, regularization=0.1, iterations=5), seed=1)
    if family == "bpr":
        return BPRRecommender(BPRParams(factors=8, iterations=10), seed=1)
    return PopularityRecommender()


FAMILIES = ("als", "bpr", "popularity")


# --- interactions ----------------------------------------------------------------------


def test_aggregate_follows_the_documented_formula():
    cutoff = datetime(2026, 1, 11)
    events = pl.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "product_id": ["x", "x", "x", "y"],
            "occurred_at": [
                cutoff - timedelta(days=90),  # one half-life old purchase of 3
                cutoff - timedelta(days=1),  # a view yesterday
                cutoff + timedelta(hours=1),  # after the cut-off: ignored
                cutoff - timedelta(days=10),
            ],
            "event_kind": ["purchase", "view", "purchase", "add_to_cart"],
            "quantity": [3.0, 1.0, 5.0, 1.0],
        }
    )
    result = aggregate(events, cutoff, DBT_WEIGHTING)
    strength = {
        (r["customer_id"], r["product_id"]): r["strength"] for r in result.iter_rows(named=True)
    }
    decay = lambda days: 0.5 ** (days / 90)  # noqa: E731
    assert strength[("a", "x")] == pytest.approx(1.0 * math.log1p(3) * 0.5 + 0.05 * decay(1))
    assert strength[("b", "y")] == pytest.approx(0.3 * decay(10))
    assert result.filter(pl.col("customer_id") == "a")["purchases"].item() == 1

    undecayed = aggregate(
        events, cutoff, InteractionWeighting(half_life_days=None, purchase_quantity="one")
    )
    assert undecayed.filter(pl.col("customer_id") == "a")["strength"].item() == pytest.approx(1.05)
    damped = aggregate(
        events,
        cutoff,
        InteractionWeighting(half_life_days=None, purchase_quantity="one", repeat_exponent=0.5),
    )
    assert damped.filter(pl.col("customer_id") == "a")["strength"].item() == pytest.approx(
        math.sqrt(1.05)
    )


def test_index_maps_are_sorted_and_contiguous(training):
    maps = training.maps
    assert list(maps.customer_ids) == sorted(maps.customer_ids)
    assert list(maps.product_ids) == sorted(maps.product_ids)
    assert training.strength.shape == maps.shape
    rows = maps.customer_rows([maps.customer_ids[5], "nobody", maps.customer_ids[0]])
    assert rows.tolist() == [5, -1, 0]
    assert maps.product_cols(["nothing"]).tolist() == [-1]
    assert IndexMaps(np.array([], dtype=str), np.array([], dtype=str)).customer_rows(
        ["a"]
    ).tolist() == [-1]


def test_bought_holds_purchases_only(events, training):
    cutoff = training.cutoff
    purchased = (
        events.filter((pl.col("occurred_at") < cutoff) & (pl.col("event_kind") == "purchase"))
        .select("customer_id", "product_id")
        .unique()
    )
    assert training.bought.nnz == purchased.height
    assert training.strength.nnz >= training.bought.nnz  # views add pairs


@pytest.mark.parametrize("coded", [False, True], ids=["string ids", "enum ids"])
def test_matrices_built_by_ranges_of_customers_equal_the_whole_aggregation(events, coded):
    cutoff = datetime(2026, 6, 1)
    weighting = InteractionWeighting()  # decayed, log1p quantities: float sums to compare
    # The reference: every pair aggregated at once, placed by id lookups.
    pairs = aggregate(events, cutoff, weighting)
    maps = IndexMaps(
        np.sort(pairs["customer_id"].unique().to_numpy().astype(str)),
        np.sort(pairs["product_id"].unique().to_numpy().astype(str)),
    )
    strength = pairs_to_csr(maps, pairs, "strength")
    bought = pairs_to_csr(maps, pairs.filter(pl.col("purchases") > 0))
    if coded:  # as load_events gives them
        events = events.with_columns(
            pl.col(c).cast(pl.Enum(events[c].unique().sort()))
            for c in ("customer_id", "product_id")
        )
    for block_events in (10**9, 500, 37):  # one range, a few, one per few customers
        built = build_training_data(events, cutoff, weighting, block_events=block_events)
        assert built.maps.customer_ids.tolist() == maps.customer_ids.tolist()
        assert built.maps.product_ids.tolist() == maps.product_ids.tolist()
        for ours, reference in ((built.strength, strength), (built.bought, bought)):
            assert ours.shape == reference.shape and ours.dtype == reference.dtype
            assert ours.has_sorted_indices
            assert np.array_equal(ours.indptr, reference.indptr)
            assert np.array_equal(ours.indices, reference.indices)
            assert np.array_equal(ours.data, reference.data)


def test_the_search_judges_bpr_on_the_whole_history_not_its_sample(events):
    from types import SimpleNamespace

    from ml.train.candidates import search_gate
    from ml.train.config import TrainConfig

    cutoff = datetime(2026, 6, 1)
    before = events.filter(pl.col("occurred_at") < cutoff)
    full = before.select("customer_id", "product_id").unique().height
    for block_events in (10**9, 50):
        assert distinct_pairs(events, cutoff, block_events=block_events) == full
    sampled = sorted(before["customer_id"].unique())[:20]
    sample = build_training_data(
        events.filter(pl.col("customer_id").is_in(sampled)), cutoff, InteractionWeighting()
    )
    assert 0 < sample.strength.nnz < full
    split = SimpleNamespace(test_start=cutoff)
    shape = (before["customer_id"].n_unique(), before["product_id"].n_unique())
    # The sample fits under the limit, the history the candidates are fit on does not.
    gate = search_gate(events, split, shape, TrainConfig(bpr_max_pairs=sample.strength.nnz))
    assert gate("bpr", sample) == (
        f"{full:,} pairs before the test window > TrainConfig.bpr_max_pairs {sample.strength.nnz:,}"
    )
    assert gate("als", sample) is None
    assert search_gate(events, split, shape, TrainConfig(bpr_max_pairs=full))("bpr", sample) is None


def test_evaluation_truth_is_new_products_of_known_customers(events, training):
    end = training.cutoff + timedelta(days=30)
    window = build_evaluation_window(events, training, end)
    assert window.truth.shape == training.maps.shape
    # No truth item was bought in training.
    assert window.truth.multiply(training.bought).nnz == 0
    # Every truth pair is a purchase inside the window.
    coo = window.truth.tocoo()
    pairs = set(
        zip(
            training.maps.customer_ids[coo.row].tolist(),
            training.maps.product_ids[coo.col].tolist(),
            strict=True,
        )
    )
    in_window = events.filter(
        (pl.col("occurred_at") >= training.cutoff)
        & (pl.col("occurred_at") < end)
        & (pl.col("event_kind") == "purchase")
    )
    window_pairs = set(zip(in_window["customer_id"], in_window["product_id"], strict=True))
    assert pairs and pairs <= window_pairs
    assert set(window.customer_rows.tolist()) == set(np.unique(coo.row).tolist())


def test_time_split_windows():
    split = TimeSplit.from_as_of("2010-12-10", eval_days=30, validation_days=30)
    assert split.test_start == datetime(2010, 11, 10)
    assert split.validation_start == datetime(2010, 10, 11)
    assert split.history_end == datetime(2010, 12, 11)


@pytest.mark.parametrize("scheme", ["linear", "log", "bm25", "tfidf"])
def test_confidence_schemes_keep_sparsity_and_stay_positive(training, scheme):
    confidences = confidence_matrix(training.strength, ConfidenceScaling(scheme=scheme, alpha=3.0))
    assert confidences.dtype == np.float32
    assert confidences.nnz == training.strength.nnz
    assert (confidences.data > 0).all()
    if scheme == "linear":
        assert np.allclose(confidences.data, 3.0 * training.strength.data)


def test_unknown_confidence_scheme_is_refused(training):
    with pytest.raises(ValueError, match="use linear, log, bm25 or tfidf"):
        confidence_matrix(training.strength, ConfidenceScaling(scheme="cubic"))


# --- models ----------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_recommend_never_returns_excluded_products(training, family):
    model = make_model(family).fit(training.strength)
    rows = np.arange(training.maps.shape[0])
    ids, scores = model.recommend(rows, training.bought[rows], n=10)
    assert ids.shape == (len(rows), 10)
    bought = training.bought.tocsr()
    for row in rows[:40]:
        listed = ids[row][ids[row] >= 0]
        assert not set(listed) & set(bought[row].indices)
        assert len(set(listed)) == len(listed)
        assert np.all(np.diff(scores[row][ids[row] >= 0]) <= 1e-6)  # best first


@pytest.mark.parametrize("family", FAMILIES)
def test_short_catalogs_pad_with_minus_one(training, family):
    model = make_model(family).fit(training.strength)
    n_products = training.maps.shape[1]
    exclude = sp.csr_matrix(np.ones((1, n_products), dtype=np.float32))
    exclude[0, 0] = 0
    exclude.eliminate_zeros()
    ids, scores = model.recommend(np.array([0]), exclude, n=5)
    assert ids[0].tolist() == [0, -1, -1, -1, -1]
    assert np.isnan(scores[0, 1:]).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_similar_items_exclude_the_item_itself(training, family):
    model = make_model(family).fit(training.strength)
    cols = np.array([0, 3, 7])
    ids, _ = model.similar_items(cols, n=5)
    assert ids.shape == (3, 5)
    for col, similar in zip(cols, ids, strict=True):
        assert col not in similar
        assert (similar >= 0).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_save_and_load_round_trip(training, family, tmp_path):
    model = make_model(family).fit(training.strength)
    loaded = load_recommender(model.save(tmp_path / family))
    assert type(loaded) is type(model)
    assert loaded.params() == model.params()
    rows = np.arange(20)
    expected = model.recommend(rows, training.bought[rows], n=10)
    actual = loaded.recommend(rows, training.bought[rows], n=10)
    np.testing.assert_array_equal(actual[0], expected[0])
    np.testing.assert_allclose(actual[1], expected[1])


@pytest.mark.parametrize("family", ["als", "bpr"])
def test_fits_are_deterministic_for_a_seed(training, family):
    first = make_model(family).fit(training.strength)
    second = make_model(family).fit(training.strength)
    np.testing.assert_array_equal(first.item_factors, second.item_factors)
    np.testing.assert_array_equal(first.user_factors, second.user_factors)


def test_unfitted_models_say_what_to_do():
    with pytest.raises(RuntimeError, match="call fit"):
        ALSRecommender().recommend(np.array([0]), None, n=3)


def test_loading_an_unknown_family_is_refused(tmp_path, training):
    directory = PopularityRecommender().fit(training.bought).save(tmp_path / "model")
    (directory / "params.json").write_text('{"family": "magic", "params": {}}')
    with pytest.raises(ValueError, match="known families"):
        load_recommender(directory)


# --- bundle ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(training) -> TrainedRecommender:
    recipe = Recipe(als=ALSParams(factors=8, regularization=0.1, iterations=5))
    model = fit_recipe(recipe, training, seed=1)
    return TrainedRecommender.from_training(model, training, recipe, as_of="2026-06-01")


def test_bundle_recommends_new_products_by_id(bundle, training):
    customer = training.maps.customer_ids[3]
    recommendations = bundle.recommend([customer], n=7)
    assert recommendations["rank"].to_list() == list(range(1, 8))
    assert set(recommendations["source"]) == {"model"}
    bought_cols = training.bought[3].indices
    assert not set(recommendations["product_id"]) & set(training.maps.product_ids[bought_cols])


def test_bundle_falls_back_to_popular_products_for_unknown_customers(bundle, training):
    recommendations = bundle.recommend(["never-seen"], n=3)
    assert set(recommendations["source"]) == {"popular"}
    top = np.argsort(-training.item_popularity, kind="stable")[:3]
    assert set(recommendations["product_id"]) == set(training.maps.product_ids[top])


def test_bundle_similar_items_by_id(bundle, training):
    product = training.maps.product_ids[2]
    similar = bundle.similar_items([product, "unknown"], n=4)
    assert similar["product_id"].unique().to_list() == [product]
    assert product not in similar["similar_product_id"].to_list()


def test_bundle_round_trip_keeps_ids_and_recipe(bundle, training, tmp_path):
    loaded = TrainedRecommender.load(bundle.save(tmp_path / "bundle"), version="7")
    assert loaded.version == "7"
    assert loaded.recipe == bundle.recipe
    assert loaded.trained_until == bundle.trained_until
    np.testing.assert_array_equal(loaded.maps.customer_ids, training.maps.customer_ids)
    customers = training.maps.customer_ids[:5]
    assert loaded.recommend(customers, 5).equals(bundle.recommend(customers, 5))


def test_loading_a_directory_that_is_not_a_bundle_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a recommender bundle"):
        TrainedRecommender.load(tmp_path)


def test_warm_start_carries_factors_by_id_and_refits_in_fewer_iterations(events, monkeypatch):
    from ml.train import models
    from ml.train.models import warm_start_factors

    weighting = InteractionWeighting(purchase_quantity="one")
    # So early that the later history adds customers and products.
    first_day = events["occurred_at"].min()
    earlier = build_training_data(events, first_day + timedelta(days=4), weighting)
    later = build_training_data(events, datetime(2026, 6, 1), weighting)
    recipe = Recipe(als=ALSParams(factors=8, regularization=0.1, iterations=10))
    cold_start = fit_recipe(recipe, earlier, seed=1)

    users, items = warm_start_factors(cold_start, earlier.maps, later.maps, seed=1)
    assert users.shape == (later.maps.shape[0], 8) and items.shape == (later.maps.shape[1], 8)
    rows = earlier.maps.customer_rows(later.maps.customer_ids)
    assert (rows >= 0).any() and (rows < 0).any(), "the later history must add customers"
    np.testing.assert_array_equal(users[rows >= 0], cold_start.user_factors[rows[rows >= 0]])
    assert np.abs(users[rows < 0]).max() <= 0.01  # new customers start like a cold fit
    again, _ = warm_start_factors(cold_start, earlier.maps, later.maps, seed=1)
    np.testing.assert_array_equal(users, again)
    # Carried in blocks (a handful of rows each here): the same factors as the whole-array
    # rule, seeded random starts included.
    monkeypatch.setattr(models, "WARM_START_BLOCK_ROWS", 3)
    by_blocks, _ = warm_start_factors(cold_start, earlier.maps, later.maps, seed=1)
    expected = np.random.default_rng(1).random(users.shape, dtype=np.float32) * 0.01
    expected[rows >= 0] = cold_start.user_factors[rows[rows >= 0]]
    np.testing.assert_array_equal(by_blocks, expected)

    warm = fit_recipe(recipe, later, seed=1, warm_start=(cold_start, earlier.maps), iterations=2)
    cold = fit_recipe(recipe, later, seed=1)
    assert warm.n_products == later.maps.shape[1]
    # Two warm iterations land near the ten-iteration cold fit: same top products mostly.
    rows_all = np.arange(later.maps.shape[0])
    warm_top, _ = warm._score_topk(rows_all, None, 5)
    cold_top, _ = cold._score_topk(rows_all, None, 5)
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(warm_top, cold_top, strict=True)])
    assert overlap > 0.6

    with pytest.raises(ValueError, match="do not match"):
        ALSRecommender(ALSParams(factors=4), seed=1).fit(
            confidence_matrix(later.strength, recipe.confidence), initial_factors=(users, items)
        )


def test_popularity_top_k_matches_scoring_every_product():
    from implicit.cpu.topk import topk

    from ml.train.models import popular_topk

    rng = np.random.default_rng(5)
    n_rows, n_items = 300, 80
    scores = rng.permutation(n_items).astype(np.float32)  # distinct: no tie ambiguity
    exclude = sp.random(n_rows, n_items, density=0.3, format="csr", random_state=5)
    exclude.data[:] = 1
    exclude[7] = 1  # a customer who bought everything gets an empty list
    exclude = sp.csr_matrix(exclude)
    for n in (1, 10, 75):
        ours_ids, ours_scores = popular_topk(scores, n_rows, exclude, n, chunk=64)
        ref_ids, ref_scores = topk(
            scores[:, None], np.ones((n_rows, 1), np.float32), n, filter_query_items=exclude
        )
        np.testing.assert_array_equal(ours_ids, np.where(ref_scores <= -3.4e38, -1, ref_ids))
        np.testing.assert_array_equal(ours_scores, ref_scores)
    assert (ours_ids[7] == -1).all()
    no_exclusions, _ = popular_topk(scores, 3, None, 5)
    np.testing.assert_array_equal(no_exclusions, np.tile(np.argsort(-scores)[:5], (3, 1)))
