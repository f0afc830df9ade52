"""Every reason names what the customer really did (bought, with when; viewed; neither).

Scoring once said "bought before" for products a customer had only viewed (the reason
product was the recommended one and their history held views only). These tests score
a warehouse where some customers only browse and audit every reason against the
history (:mod:`ml.serving.reason_audit`).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from test_score_support import LOGICAL_DATE, build_marts, fit_model, replace_events

from ml.serving.config import ScoreConfig
from ml.serving.reason_audit import load_customers, load_history, reason_contradictions
from ml.serving.reasons import (
    BOUGHT_BEFORE,
    BOUGHT_SIMILAR,
    RECOMMENDED_FOR_YOU,
    VIEWED_SIMILAR,
    reason_codes,
)
from ml.serving.recommend import score
from ml.warehouse import connect
from ml.warehouse.tables import read_frame

CONFIG = ScoreConfig(n=10, exclusion_days=60, max_per_category=3, min_history_products=2)


def test_a_viewed_product_is_never_called_bought():
    recommended = np.array([5, 5, 7, 7, 9])
    reasons = np.array([5, 3, 7, 3, -1])
    buyer = np.array([True, True, False, False, True])
    assert reason_codes(recommended, reasons, buyer).tolist() == [
        BOUGHT_BEFORE,
        BOUGHT_SIMILAR,
        VIEWED_SIMILAR,  # was "bought_before": the customer only viewed product 7
        VIEWED_SIMILAR,
        RECOMMENDED_FOR_YOU,
    ]


@pytest.fixture
def browsing_shop():
    """The scoring fixture where every 4th customer never bought anything (views only)."""
    frames = build_marts()
    events = frames["interaction_events"]
    browsers = [c for c in events["customer_id"].unique().sort().to_list() if int(c[1:]) % 4 == 1]
    events = events.with_columns(
        pl.when(pl.col("customer_id").is_in(browsers))
        .then(pl.lit("view"))
        .otherwise(pl.col("event_kind"))
        .alias("event_kind")
    )
    replace_events(frames, events)
    return frames, set(browsers)


def test_every_reason_holds_against_the_history(browsing_shop):
    frames, browsers = browsing_shop
    score(LOGICAL_DATE, config=CONFIG, model=fit_model(frames))
    with connect() as con:
        recs = read_frame(con, "SELECT * FROM ml.recommendations ORDER BY customer_id, rank")
        history, customers = load_history(con, LOGICAL_DATE), load_customers(con)

    problems = reason_contradictions(recs, history, customers)
    assert problems.height == 0, problems.select("customer_id", "reason_code", "problem").head()

    # The case that used to be wrong is really exercised: browsers get their own viewed
    # product back, and it is called viewed.
    own = recs.filter(
        pl.col("customer_id").is_in(list(browsers))
        & (pl.col("reason_product_id") == pl.col("product_id"))
    )
    assert own.height > 0
    assert set(own["reason_code"]) == {VIEWED_SIMILAR}
    # Buyers' reasons say when: the day they last bought the named product.
    bought = recs.filter(pl.col("reason_code").is_in([BOUGHT_SIMILAR, BOUGHT_BEFORE]))
    assert bought.height > 0 and bought["reason_context"].is_not_null().all()
    assert recs.filter(pl.col("reason_code") == BOUGHT_BEFORE).height > 0


def test_the_audit_catches_each_kind_of_false_claim(browsing_shop):
    frames, browsers = browsing_shop
    score(LOGICAL_DATE, config=CONFIG, model=fit_model(frames))
    with connect() as con:
        recs = read_frame(con, "SELECT * FROM ml.recommendations ORDER BY customer_id, rank")
        history, customers = load_history(con, LOGICAL_DATE), load_customers(con)
    viewed = recs.filter(pl.col("reason_code") == VIEWED_SIMILAR).head(3)
    bought = recs.filter(pl.col("reason_code") == BOUGHT_SIMILAR).head(3)
    wrong_day = (LOGICAL_DATE - timedelta(days=9999)).isoformat()
    forged = pl.concat(
        [
            viewed.with_columns(pl.lit(BOUGHT_BEFORE).alias("reason_code")),  # the old bug
            bought.with_columns(pl.lit(wrong_day).alias("reason_context")),
            bought.with_columns(pl.lit(VIEWED_SIMILAR).alias("reason_code")).filter(
                ~pl.col("customer_id").is_in(list(browsers))
            ),
        ]
    )
    problems = reason_contradictions(forged, history, customers)
    assert problems.height >= 6
    assert set(problems["problem"]) >= {
        "names a product the customer never bought",
        "the purchase date is not the customer's last purchase of it",
    }
