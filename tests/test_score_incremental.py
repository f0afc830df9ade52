"""Incremental scoring equals scoring everyone, through every kind of change it plans for.

A synthetic catalogue, histories and a factor model; day 1 is scored in full into a
DuckDB warehouse and its state saved. Day 2 changes histories (new purchases, a new
customer), lets purchases leave the exclusion window, takes a listed product out of the
catalogue, brings products in and moves one to another category. The incremental
partition (re-scored customers + copied rows) must equal recommend_all over everyone,
row for row; and a change of model or rules must re-score everyone.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from ml.serving.config import ScoreConfig
from ml.serving.demotion_rerank import base_positions
from ml.serving.incremental import plan_scoring, subset_inputs
from ml.serving.inputs import ScoringInputs
from ml.serving.model import ScoringModel
from ml.serving.recommend import RECOMMENDATION_COLUMNS, recommend_all
from ml.serving.score_partition import ScoredBatch, cap_is_feasible, write_carried
from ml.serving.score_state import current_state, load_state, save_state
from ml.warehouse import connect
from ml.warehouse.tables import read_frame, write_partition

DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2)
CATEGORIES = ["A", "B", "C", "D", "E", "F", "G"]
CONFIG = ScoreConfig(n=10, exclusion_days=30, max_per_category=3, new_product_share=0.0)


def _inputs(day: date, products: pl.DataFrame, history: pl.DataFrame, n_customers: int):
    customers = pl.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n_customers)],
            "country": ["FR"] * n_customers,
            "segment": ["Loyal" if i % 3 else "New" for i in range(n_customers)],
        }
    )
    popular = pl.DataFrame(
        {
            "group_kind": ["overall"] * 30,
            "group_value": [""] * 30,
            "product_id": products["product_id"][:30],
            "buyers": list(range(30, 0, -1)),
            "popularity_days": [90] * 30,
        }
    )
    return ScoringInputs(
        day, customers, products, history.sort("customer_id", "product_id"), popular
    )


def _world(seed: int = 3):
    rng = np.random.default_rng(seed)
    n_customers, n_products = 300, 120
    product_ids = [f"P{i:04d}" for i in range(n_products)]
    products = pl.DataFrame(
        {
            "product_id": product_ids,
            "category": [CATEGORIES[i % len(CATEGORIES)] for i in range(n_products)],
            "eligible": [i % 17 != 5 for i in range(n_products)],
        }
    )
    pairs = []
    end = datetime(2026, 3, 2)
    for c in range(n_customers - 20):  # the last 20 have no history (cold start)
        for p in rng.choice(n_products, size=int(rng.integers(1, 12)), replace=False):
            bought = bool(rng.random() < 0.7)
            when = end - timedelta(days=float(rng.uniform(0, 60))) if bought else None
            pairs.append(
                (f"C{c:04d}", product_ids[p], bought, when, not bought or rng.random() < 0.3)
            )
    history = pl.DataFrame(
        pairs,
        schema={
            "customer_id": pl.String,
            "product_id": pl.String,
            "bought": pl.Boolean,
            "last_bought_at": pl.Datetime("us"),
            "viewed": pl.Boolean,
        },
        orient="row",
    )
    # The model knows all customers but the last 40 and all products but the last 10.
    model = ScoringModel(
        "m",
        "1",
        "als",
        np.array([f"C{i:04d}" for i in range(n_customers - 40)]),
        np.array(product_ids[: n_products - 10]),
        rng.normal(size=(n_customers - 40, 8)).astype(np.float32),
        rng.normal(size=(n_products - 10, 8)).astype(np.float32),
    )
    return products, history, model, n_customers


def _score_in_full(con, day, inputs, model, config):
    rows = recommend_all(inputs, model, config)
    write_partition(
        con,
        "recommendations",
        rows,
        day,
        columns=RECOMMENDATION_COLUMNS,
        order_by="customer_id, rank",
        presorted=True,
    )
    save_state(
        con,
        current_state(day, inputs, model, config, None, cap_is_feasible(inputs, model, config)),
    )
    return rows


def _partition(con, day) -> pl.DataFrame:
    return read_frame(
        con,
        "SELECT * EXCLUDE (logical_date) FROM ml.recommendations WHERE logical_date = ? "
        "ORDER BY customer_id, rank",
        [day],
    )


def _day_two(products: pl.DataFrame, history: pl.DataFrame, listed: pl.DataFrame):
    """Every change incremental scoring must notice."""
    end = datetime(2026, 3, 3)
    # A product on many lists leaves the catalogue; an ineligible one comes back; a
    # listed one moves to another category; an unlisted one moves too.
    top = listed.group_by("product_id").len().sort("len", descending=True)["product_id"]
    leaving, moving, moving_unlisted = top[0], top[1], "P0003"
    products = products.with_columns(
        pl.when(pl.col("product_id") == leaving)
        .then(False)
        .when(pl.col("product_id") == "P0005")
        .then(True)
        .otherwise(pl.col("eligible"))
        .alias("eligible"),
        pl.when(pl.col("product_id").is_in([moving, moving_unlisted]))
        .then(pl.lit("G"))
        .otherwise(pl.col("category"))
        .alias("category"),
    )
    # New purchases of three customers and a new customer; a purchase just inside the
    # old window (bought 30 days before day 1's end) leaves it on day 2.
    fresh = pl.DataFrame(
        [
            ("C0001", "P0050", True, end - timedelta(hours=3), False),
            ("C0002", "P0051", True, end - timedelta(hours=2), True),
            ("C0290", "P0052", True, end - timedelta(hours=1), False),
            ("C0003", "P0099", False, None, True),
        ],
        schema=history.schema,
        orient="row",
    )
    history = pl.concat([history, fresh]).unique(["customer_id", "product_id"], keep="last")
    edge = datetime(2026, 3, 2) - timedelta(days=30) + timedelta(hours=6)
    history = history.with_columns(
        pl.when(pl.col("customer_id") == "C0010")
        .then(pl.lit(edge))
        .otherwise(pl.col("last_bought_at"))
        .alias("last_bought_at")
    )
    return products, history


def _day_two_incrementally(seed: int) -> tuple:
    """Score day 1 in full, then day 2 incrementally; (plan, day 2's partition, scoring
    everyone on day 2)."""
    products, history, model, n_customers = _world(seed)
    inputs1 = _inputs(DAY1, products, history, n_customers)
    with connect() as con:
        listed = _score_in_full(con, DAY1, inputs1, model, CONFIG)
        products2, history2 = _day_two(products, history, listed)
        inputs2 = _inputs(DAY2, products2, history2, n_customers)
        current = current_state(
            DAY2, inputs2, model, CONFIG, None, cap_is_feasible(inputs2, model, CONFIG)
        )
        plan = plan_scoring(con, DAY2, inputs2, model, CONFIG, current)
        rows = recommend_all(subset_inputs(inputs2, plan.rescore), model, CONFIG)
        batches = [ScoredBatch(rows, base_positions(rows, []))]
        write_carried(
            con, batches, DAY2, plan, inputs2, columns=RECOMMENDATION_COLUMNS, keep_dates=3
        )
        incremental = _partition(con, DAY2)
    expected = recommend_all(inputs2, model, CONFIG).select(incremental.columns)
    return plan, incremental, expected


def test_incremental_partition_equals_scoring_everyone() -> None:
    plan, incremental, expected = _day_two_incrementally(seed=3)
    assert not plan.full, plan.reason
    assert plan.carry_from == DAY1
    stats = plan.stats
    assert 0 < stats["scored_customers"] < stats["customers"], stats
    assert stats["products_left_or_moved"] == 3 and stats["products_joined_or_moved"] == 3
    assert stats["left_exclusion_window"] >= 1 and stats["listing_a_changed_product"] > 0
    assert incremental.height == expected.height
    assert incremental.equals(expected.with_columns(pl.col("score").round(6)))


def test_a_new_model_or_new_rules_rescore_everyone() -> None:
    products, history, model, n_customers = _world(seed=5)
    inputs = _inputs(DAY1, products, history, n_customers)
    with connect() as con:
        _score_in_full(con, DAY1, inputs, model, CONFIG)
        assert load_state(con).logical_date == DAY1
        day2 = dataclasses.replace(inputs, logical_date=DAY2)
        same = current_state(DAY2, day2, model, CONFIG, None, True)
        assert not plan_scoring(con, DAY2, day2, model, CONFIG, same).full
        retrained = dataclasses.replace(model, version="2")
        for changed_model, config in (
            (retrained, CONFIG),
            (model, dataclasses.replace(CONFIG, n=12)),
        ):
            state = current_state(DAY2, day2, changed_model, config, None, True)
            plan = plan_scoring(con, DAY2, day2, changed_model, config, state)
            assert plan.full and "changed" in plan.reason, plan.reason
        # A full refresh, a re-run of the state's own date, a backfill: everyone.
        assert plan_scoring(con, DAY2, day2, model, CONFIG, same, full_refresh=True).full
        for day in (DAY1, DAY1 - timedelta(days=1)):
            state = current_state(day, inputs, model, CONFIG, None, True)
            assert plan_scoring(con, day, inputs, model, CONFIG, state).full


@pytest.mark.parametrize("seed", [11, 12])
def test_incremental_equals_full_on_other_worlds(seed: int) -> None:
    _, incremental, expected = _day_two_incrementally(seed)
    assert incremental.equals(expected.with_columns(pl.col("score").round(6)))


def _score_in_batches(con, day, inputs, model, demoted, config=CONFIG):
    from ml.serving.score_partition import score_partition

    return score_partition(
        con,
        day,
        inputs,
        model,
        config,
        columns=RECOMMENDATION_COLUMNS,
        compute=recommend_all,
        demoted=demoted,
    )


def _demoted_in_full(inputs, model, demoted) -> pl.DataFrame:
    from ml.serving.review_demotion import demote_products

    rows = demote_products(recommend_all(inputs, model, CONFIG), demoted)
    return rows.with_columns(pl.col("score").round(6))


# 37: the lists are computed and written 37 customers at a time (full and incremental
# days), and each batch's positions before demotion must reach the next day's re-rank.
@pytest.mark.parametrize("batch_customers", [0, 37])
def test_a_demotion_flip_reranks_the_lists_instead_of_rescoring_them(
    batch_customers: int,
) -> None:
    products, history, model, n_customers = _world(seed=7)
    inputs1 = _inputs(DAY1, products, history, n_customers)
    config = dataclasses.replace(CONFIG, batch_customers=batch_customers)

    with connect() as con:
        listed = _score_in_batches(con, DAY1, inputs1, model, [], config).plan
        day1 = _partition(con, DAY1)
        a, b, c = day1["product_id"].value_counts(sort=True)["product_id"][:3]
        # Day 1 again with a and b demoted (a re-run of the date: scored in full).
        assert _score_in_batches(con, DAY1, inputs1, model, [a, b], config).plan.full, listed.reason
        day1 = _partition(con, DAY1)
        assert day1.equals(_demoted_in_full(inputs1, model, [a, b]).select(day1.columns))
        # Day 2: a restored, c demoted, b still demoted; two customers bought something.
        fresh = pl.DataFrame(
            [
                ("C0001", "P0050", True, datetime(2026, 3, 2, 20), False),
                ("C0002", "P0051", True, datetime(2026, 3, 2, 21), True),
            ],
            schema=history.schema,
            orient="row",
        )
        history2 = pl.concat([history, fresh]).unique(["customer_id", "product_id"], keep="last")
        inputs2 = _inputs(DAY2, products, history2, n_customers)
        plan = _score_in_batches(con, DAY2, inputs2, model, [b, c], config).plan
        day2 = _partition(con, DAY2)
        # Day 3: b restored too (its positions were saved by the incremental day 2).
        inputs3 = dataclasses.replace(inputs2, logical_date=DAY2 + timedelta(days=1))
        plan3 = _score_in_batches(con, inputs3.logical_date, inputs3, model, [c], config).plan
        day3 = _partition(con, inputs3.logical_date)
    assert not plan.full and not plan3.full, (plan.reason, plan3.reason)
    assert day2.equals(_demoted_in_full(inputs2, model, [b, c]).select(day2.columns))
    assert day3.equals(_demoted_in_full(inputs3, model, [c]).select(day3.columns))
    # Holders of a or c (not cold, not changed) were re-ranked, not re-scored.
    holders = set(day1.filter(pl.col("product_id").is_in([a, c]))["customer_id"])
    reranked, rescored = set(plan.rerank), set(plan.rescore)
    assert not reranked & rescored
    assert plan.stats["reranked_for_demotion"] == len(reranked) > 0
    assert plan.stats["rescored_for_demotion_without_positions"] == 0
    assert holders <= reranked | rescored
    warm_holders = holders - rescored
    assert len(warm_holders) > 10 and warm_holders <= reranked
    # a really moved up in the re-ranked lists (from the end of day 1's lists).
    moved = day2.filter(pl.col("product_id") == a, pl.col("customer_id").is_in(list(reranked)))
    assert moved.height > 0 and (moved["rank"] < CONFIG.n).any()
    assert len(plan3.rerank) > 0 and not set(plan3.rerank) & set(plan3.rescore)


def test_lists_without_saved_positions_are_rescored_not_reranked() -> None:
    products, history, model, n_customers = _world(seed=8)
    inputs1 = _inputs(DAY1, products, history, n_customers)
    with connect() as con:
        _score_in_batches(con, DAY1, inputs1, model, [])
        a = _partition(con, DAY1)["product_id"].value_counts(sort=True)["product_id"][0]
        _score_in_batches(con, DAY1, inputs1, model, [a])
        # A state saved before the positions were kept: a's holders cannot be re-ranked.
        con.execute("DROP TABLE ml.score_state_demoted_ranks")
        inputs2 = dataclasses.replace(inputs1, logical_date=DAY2)
        plan = _score_in_batches(con, DAY2, inputs2, model, []).plan
        day2 = _partition(con, DAY2)
    assert not plan.full and len(plan.rerank) == 0, plan.reason
    assert plan.stats["rescored_for_demotion_without_positions"] > 0
    assert day2.equals(_demoted_in_full(inputs2, model, []).select(day2.columns))
