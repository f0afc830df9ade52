"""The retrain rule: train on a first run, weekly, or when events or the catalogue grew."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from ml.train.retrain_rule import DataMovement, RetrainRule, observe, retrain_decision
from ml.warehouse import connect
from ml.warehouse.stage_log import record_stage

DAY = date(2026, 3, 10)


def moved(**changes) -> DataMovement:
    base = dict(
        last_trained=DAY - timedelta(days=1),
        champion_version="3",
        events_before=10_000,
        events_since=100,
        products_before=1_000,
        products_since=5,
    )
    return DataMovement(**{**base, **changes})


@pytest.mark.parametrize(
    ("movement", "retrain", "why"),
    [
        (moved(), False, "trained 1 day(s) ago"),
        (moved(last_trained=None), True, "no training recorded"),
        (moved(champion_version=None), True, "no champion yet"),
        (moved(last_trained=DAY - timedelta(days=7)), True, "7 day(s) ago"),
        (moved(events_since=500), True, "events grew 5.0%"),
        (moved(events_since=499), False, "events +5.0%"),  # 4.99 % shows rounded
        (moved(products_since=60), True, "catalogue grew 6.0%"),
        (moved(erased_since=1), True, "1 erasure request(s) since"),
    ],
)
def test_retrain_decision(movement: DataMovement, retrain: bool, why: str) -> None:
    decision = retrain_decision(DAY, movement, RetrainRule())
    assert decision.retrain is retrain
    assert why in decision.reason


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFINITY_RETRAIN_EVERY_DAYS", "1")
    monkeypatch.setenv("AFFINITY_RETRAIN_MIN_EVENT_GROWTH", "0.2")
    rule = RetrainRule.from_env()
    assert (rule.every_days, rule.min_event_growth) == (1, 0.2)
    assert retrain_decision(DAY, moved(), rule).retrain  # 1 day >= every_days 1
    monkeypatch.setenv("AFFINITY_RETRAIN_EVERY_DAYS", "weekly")
    with pytest.raises(ValueError, match="AFFINITY_RETRAIN_EVERY_DAYS"):
        RetrainRule.from_env()


def test_observe_reads_the_stage_log_and_the_marts() -> None:
    with connect() as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.interaction_events (occurred_at TIMESTAMP)")
        con.execute("CREATE TABLE marts.dim_products (first_seen_at TIMESTAMP)")
        start = datetime(2026, 3, 1)
        con.executemany(
            "INSERT INTO marts.interaction_events VALUES (?)",
            [[start + timedelta(hours=6 * i)] for i in range(40)],  # Mar 1 .. Mar 10 18:00
        )
        con.executemany(
            "INSERT INTO marts.dim_products VALUES (?)",
            [[start], [start], [datetime(2026, 3, 9, 12)]],
        )
        assert observe(con, DAY) == DataMovement(None)
        # Trained on the 7th (champion v2), kept the model on the 8th.
        record_stage(
            con,
            date(2026, 3, 7),
            "train",
            rows=1,
            seconds=1.0,
            detail={"decision": "champion", "champion_version": "2"},
        )
        record_stage(
            con,
            date(2026, 3, 8),
            "train",
            rows=0,
            seconds=0.1,
            detail={"decision": "kept", "reason": "small"},
        )
        seen = observe(con, DAY)
    assert seen.last_trained == date(2026, 3, 7) and seen.champion_version == "2"
    # Events up to the end of the 7th: 28 (Mar 1 00:00 .. Mar 7 18:00); after: 12.
    assert (seen.events_before, seen.events_since) == (28, 12)
    assert (seen.products_before, seen.products_since) == (2, 1)
    decision = retrain_decision(DAY, seen, RetrainRule())
    assert decision.retrain and "events grew" in decision.reason
    assert seen.erased_since == 0


def test_an_erasure_since_the_last_training_retrains() -> None:
    with connect() as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.interaction_events (occurred_at TIMESTAMP)")
        con.execute("CREATE TABLE marts.dim_products (first_seen_at TIMESTAMP)")
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.erasure_requests (customer_id VARCHAR)")
        con.execute("INSERT INTO raw.erasure_requests VALUES ('C1')")
        # The training knew one request; a second one arrived since.
        record_stage(
            con,
            date(2026, 3, 9),
            "train",
            rows=1,
            seconds=1.0,
            detail={"decision": "champion", "champion_version": "2", "erasure_requests": 1},
        )
        assert observe(con, DAY).erased_since == 0
        con.execute("INSERT INTO raw.erasure_requests VALUES ('C2')")
        seen = observe(con, DAY)
    assert seen.erased_since == 1
    decision = retrain_decision(DAY, seen, RetrainRule())
    assert decision.retrain and "erasure" in decision.reason
