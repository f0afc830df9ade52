"""Training on marts built by the real dbt project (generated shop -> ingest -> dbt)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from test_train_support import fast_config

from ml.train import load_champion, train
from ml.train.config import DBT_WEIGHTING
from ml.train.interactions import HandedEvents, aggregate, load_events
from ml.train.split import TimeSplit
from ml.warehouse import connect

AS_OF = "2026-06-30"


@pytest.fixture(scope="module")
def dbt_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated shop built by dbt as of AS_OF (module-scoped: one build)."""
    from ml.datagen import generate_shop
    from ml.ingest import ingest
    from ml.warehouse.dbt import build_features

    home = tmp_path_factory.mktemp("train_dbt") / "home"
    landing = home / "landing" / "shop"
    generate_shop(landing, customers=300, products=120, days=120, seed=5, end_date=AS_OF)
    ingest(landing, warehouse=home / "warehouse.duckdb")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AFFINITY_HOME", str(home))
        build_features(AS_OF, home=home)
    return home


def test_training_aggregation_sees_the_pairs_of_marts_interactions(dbt_home: Path):
    """At as_of, training's aggregation of interaction_events (default weighting) has
    exactly the pairs, purchase counts and last signals of the pair-history mart."""
    split = TimeSplit.from_as_of(AS_OF, eval_days=30, validation_days=30)
    events = load_events(split.history_end, dbt_home / "warehouse.duckdb")
    assert isinstance(events.schema["customer_id"], pl.Enum)  # coded ids (see load_events)
    ours = aggregate(events, split.history_end, DBT_WEIGHTING).with_columns(
        pl.col("customer_id", "product_id").cast(pl.String)
    )
    with connect(dbt_home / "warehouse.duckdb", read_only=True) as con:
        theirs = con.sql(
            "SELECT customer_id, product_id, purchases, last_at FROM marts.interactions"
        ).pl()
    assert ours.height == theirs.height > 0
    assert (ours["strength"] > 0).all()
    joined = ours.join(theirs, on=["customer_id", "product_id"], how="full", coalesce=True)
    assert joined["purchases"].null_count() == 0
    assert joined["purchases_right"].null_count() == 0
    assert (joined["purchases"] == joined["purchases_right"]).all()
    assert (joined["last_at"] == joined["last_at_right"]).all()
    assert (joined["purchases"] > 0).any() and (joined["purchases"] == 0).any()


def test_handed_events_are_given_once_and_the_box_lets_go(dbt_home: Path):
    split = TimeSplit.from_as_of(AS_OF, eval_days=30, validation_days=30)
    events = load_events(split.history_end, dbt_home / "warehouse.duckdb")
    handed = HandedEvents(events)
    taken = handed.take()
    assert taken is events and taken.height > 0
    with pytest.raises(RuntimeError, match="already taken: load them again"):
        handed.take()


def test_training_on_the_dbt_marts_promotes_a_model_that_scores_customers(
    dbt_home: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AFFINITY_HOME", str(dbt_home))

    result = train(AS_OF, config=fast_config())

    assert result.promoted, result.reason
    assert result.metrics["als"]["eval_customers"] >= 20
    champion = load_champion()
    customers = champion.maps.customer_ids[:5]
    recommendations = champion.recommend(customers, n=10)
    assert recommendations.group_by("customer_id").len()["len"].to_list() == [10] * 5
    assert set(recommendations["source"]) == {"model"}
    with connect(dbt_home / "warehouse.duckdb", read_only=True) as con:
        segments = con.sql("SELECT DISTINCT segment FROM marts.customer_rfm_segments").pl()
    assert segments.height > 0
