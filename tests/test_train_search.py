"""The recipe search: span-tied half-lives, early stopping, families, budget and time bound."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest
from test_train_support import fast_config, synthetic_events

from ml.train.config import (
    ALSParams,
    BPRParams,
    InteractionWeighting,
    Recipe,
    SearchConfig,
    SearchSpace,
)
from ml.train.tuning import matters, search_recipe, span_half_lives

VALIDATION_START, VALIDATION_END = datetime(2026, 5, 1), datetime(2026, 5, 31)


@pytest.fixture(scope="module")
def events():
    return synthetic_events(n_customers=200, n_products=40, days=150, seed=5)


def small_recipe() -> Recipe:
    return dataclasses.replace(
        fast_config().recipe,
        als=ALSParams(factors=8, regularization=0.5, iterations=6),
        bpr=BPRParams(factors=8, learning_rate=0.05, iterations=10),
    )


def space(**values) -> SearchSpace:
    """A small space: every knob off unless given."""
    off = {f.name: () for f in dataclasses.fields(SearchSpace)}
    return SearchSpace(**{**off, **values})


def run(events, **config):
    return search_recipe(
        events, small_recipe(), VALIDATION_START, VALIDATION_END, SearchConfig(**config), seed=3
    )


def test_half_lives_follow_the_span_and_skip_near_duplicates():
    assert span_half_lives(3650, (0.5, 0.125, 0.03)) == [1825.0, 456.0, 110.0]
    assert span_half_lives(90, (0.5, 0.125, 0.03)) == [45.0, 11.0, 3.0]
    # Within 25 % of a known value (the start recipe's 21 days): not worth a fit.
    assert span_half_lives(700, (0.03, 0.125), known=(21.0, None)) == [88.0]


def test_zero_one_strengths_make_the_decay_knobs_irrelevant():
    binary = Recipe(weighting=InteractionWeighting(strength_transform="binary"))
    assert not matters(binary, "half_life_days") and not matters(binary, "repeat_exponent")
    assert matters(binary, "alpha") and matters(Recipe(), "half_life_days")


def test_the_search_is_deterministic_and_tries_every_family(events):
    settings = {
        "budget": 12,
        "max_seconds": 0,
        "min_gain_se": 0,  # every strict gain moves: the families are compared as measured
        "space": space(
            half_life_span_fractions=(0.25,),
            strength_transform=("binary",),
            alpha=(8.0,),
            iterations=(2, 6, 12),
            families=("bpr", "itemknn", "blend"),
            bpr_iterations=(5, 10),
            itemknn_weighting=("cosine",),
            blend_category_weight=(4.0,),
        ),
    }
    first, again = run(events, **settings), run(events, **settings)

    assert first.best == again.best
    assert first.trials_frame().drop("seconds").equals(again.trials_frame().drop("seconds"))
    families = set(first.trials_frame()["family"])
    assert families == {"als", "bpr", "itemknn", "blend"}
    assert set(first.family_best) == families | {"popularity"}
    assert first.best_ndcg_at_10 == max(v for k, v in first.family_best.items())
    assert first.best.family in families
    assert first.best.family in first.why() and "validation NDCG@10" in first.why()
    # Every family's best recipe is kept (the blend's weights ride along in the winner).
    assert set(first.family_recipes) == families


def test_early_stopping_keeps_the_best_iteration_count(events):
    # Any strict gain moves (min_gain_se=0): this test is about the checkpoints.
    result = run(events, budget=3, space=space(iterations=(1, 4, 9)), max_seconds=0, min_gain_se=0)

    stops = [t for t in result.trials if t["knob"] == "iterations"]
    assert [t["value"] for t in stops] == ["1", "4", "9"]
    best = max(stops, key=lambda t: t["val_ndcg_at_10"])
    start = result.trials[0]["val_ndcg_at_10"]
    if best["val_ndcg_at_10"] > start:
        assert result.best.als.iterations == int(best["value"])
    else:
        assert result.best.als.iterations == small_recipe().als.iterations


def test_budget_time_bound_and_bans_are_respected(events):
    wide = space(alpha=(1.0, 4.0, 8.0), regularization=(0.1, 5.0), families=("itemknn",))
    capped = run(events, budget=3, space=wide, max_seconds=0)
    assert len(capped.trials) <= 3 + 1  # the start plus what the budget allows
    assert "budget of 3 fits reached" in capped.why()

    timed = run(events, budget=50, space=wide, max_seconds=1e-9)
    assert timed.stopped and "time bound" in timed.stopped
    assert len(timed.trials) == 1  # the start is always validated

    banned = search_recipe(
        events,
        small_recipe(),
        VALIDATION_START,
        VALIDATION_END,
        SearchConfig(budget=20, space=wide, max_seconds=0),
        seed=3,
        family_allowed=lambda family, training: "too big" if family == "itemknn" else None,
    )
    assert "itemknn" not in set(banned.trials_frame()["family"])


def test_a_gain_within_validation_noise_keeps_the_incumbent(events):
    settings = {
        "budget": 8,
        "max_seconds": 0,
        "space": space(alpha=(0.5, 8.0), regularization=(0.05, 5.0), iterations=(2, 12)),
    }
    moved = run(events, **settings, min_gain_se=0)
    start = moved.trials[0]["val_ndcg_at_10"]
    assert moved.best_ndcg_at_10 > start and moved.best != small_recipe()  # a gain exists

    # Demanding a gain of many standard errors, the same trials leave the start recipe.
    kept = run(events, **settings, min_gain_se=50.0)
    assert [t["value"] for t in kept.trials] == [t["value"] for t in moved.trials][
        : len(kept.trials)
    ]
    assert kept.best == small_recipe() and kept.best_ndcg_at_10 == start
