"""Backfills score with the model that was champion on their date; retries reuse a version.

The warehouse is the scoring fixture (marts with customers, products, segments), trained
by the real ``train`` and scored by the pipeline's own ``score`` stage.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import mlflow
import polars as pl
import pytest
from test_score_support import LOGICAL_DATE, build_marts
from test_train_support import fast_config

from ml.config import paths
from ml.orchestration.runner import run_stage
from ml.pipeline import RunContext
from ml.serving.model import BASELINE_MODEL_NAME, load_serving_model
from ml.train import train
from ml.train.config import ALSParams, SearchConfig
from ml.train.registry import champion_as_of, champion_history
from ml.train.tracking import CHAMPION, DEFAULT_MODEL_NAME, alias_version
from ml.warehouse import connect
from ml.warehouse.tables import read_frame

LATER = LOGICAL_DATE  # logical days (a run for day L trains as of L + 1)
EARLIER = LOGICAL_DATE - timedelta(days=30)


def as_of(day):
    return (day + timedelta(days=1)).isoformat()


def versions() -> list[str]:
    mlflow.set_tracking_uri(paths().mlflow_tracking_uri)
    found = mlflow.MlflowClient().search_model_versions(f"name = '{DEFAULT_MODEL_NAME}'")
    return sorted(str(v.version) for v in found)


@pytest.fixture
def marts():
    return build_marts(n_customers=300, n_products=60)


def test_a_retry_on_the_same_inputs_reuses_its_version(marts):
    first = train(as_of(LATER), config=fast_config())
    retry = train(as_of(LATER), config=fast_config())

    assert not first.reused and retry.reused
    assert (retry.model_version, retry.run_id, retry.decision) == (
        first.model_version,
        first.run_id,
        first.decision,
    )
    assert retry.metrics["popularity"]["ndcg_at_10"] == pytest.approx(
        first.metrics["popularity"]["ndcg_at_10"]
    )
    assert versions() == [first.model_version]

    # Other inputs (one more purchase on the day) are another training: a new version.
    with connect() as con:
        con.execute(
            "INSERT INTO marts.interaction_events (customer_id, product_id, occurred_at, "
            "event_kind, quantity) VALUES ('C00000', 'P0007', ?, 'purchase', 1)",
            [f"{LATER.isoformat()} 12:00:00"],
        )
    changed = train(as_of(LATER), config=fast_config())
    assert not changed.reused and changed.model_version != first.model_version


def test_a_backfill_scores_with_the_champion_of_its_logical_date(marts):
    # A small early model, a better one later: each is champion from its own date.
    small = fast_config(
        search=SearchConfig(budget=0),
        recipe=dataclasses.replace(fast_config().recipe, als=ALSParams(2, 0.5, 3)),
        bpr_enabled=False,
    )
    early = train(as_of(EARLIER), config=small)
    late = train(as_of(LATER), config=fast_config(promotion_margin=0.0))
    assert early.promoted, early.reason
    assert late.promoted, late.reason  # more history beats the older champion
    assert alias_version(DEFAULT_MODEL_NAME, CHAMPION) == late.model_version
    assert [v for _, v in champion_history(DEFAULT_MODEL_NAME)] == [
        int(early.model_version),
        int(late.model_version),
    ]

    # Backfill the earlier day after the later one was trained: the pipeline's score
    # stage (retrain off, as a backfill of scoring only) uses the earlier champion.
    for day, expected in ((EARLIER, early.model_version), (LATER, late.model_version)):
        summary = run_stage("score", RunContext(day.isoformat(), retrain=False))
        assert summary["model_version"] == expected, day
        with connect() as con:
            used = read_frame(
                con,
                "SELECT DISTINCT model_name, model_version FROM ml.recommendations "
                "WHERE logical_date = ? ",
                [day],
            )
        assert used.filter(pl.col("model_name") == DEFAULT_MODEL_NAME)[
            "model_version"
        ].to_list() == [expected]
    # Before any champion existed, the popularity baseline serves.
    assert load_serving_model(EARLIER - timedelta(days=5)).name == BASELINE_MODEL_NAME
    assert champion_as_of(DEFAULT_MODEL_NAME, EARLIER) is None


def test_a_backfill_promotion_never_moves_todays_champion(marts):
    late = train(as_of(LATER), config=fast_config())
    early = train(as_of(EARLIER), config=fast_config())

    assert late.promoted and early.promoted  # each was the best for its own date
    assert alias_version(DEFAULT_MODEL_NAME, CHAMPION) == late.model_version
    assert load_serving_model(LATER).version == late.model_version
    assert load_serving_model(EARLIER).version == early.model_version
