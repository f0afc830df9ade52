"""Ground truth end to end: a generated shop with a known campaign uplift and a placebo.

generate (campaign_uplift) -> ingest -> dbt as of the day before the campaigns -> ALS ->
recommendations, segments -> audiences -> dbt as of the day the campaigns end ->
measurement. The measured lift must match the true effect on the selected audience and
the placebo's interval must cover zero.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from test_campaigns_support import generate_and_ingest, prepare_day

from ml.campaigns import build_audiences, measure_campaigns
from ml.config import paths
from ml.datagen.uplift import true_lift
from ml.warehouse import connect
from ml.warehouse.dbt import build_features
from ml.warehouse.tables import read_frame

pytestmark = pytest.mark.slow

UPLIFT = 0.2
SHOP = {"customers": 3_000, "products": 200, "days": 60, "seed": 3, "campaign_uplift": UPLIFT}
LAUNCH = date(2026, 9, 26)  # the ground-truth campaigns run 2026-09-27 09:00 .. 10-11 09:00
MEASURE = date(2026, 10, 11)


def test_measured_lift_matches_the_known_uplift_and_the_placebo_covers_zero() -> None:
    landing = generate_and_ingest(paths().ensure().landing / "shop", **SHOP)
    model = prepare_day(LAUNCH)
    report = build_audiences(LAUNCH, model=model)
    assert report.launched == ["CMP007", "CMP008"]
    build_features(MEASURE)
    measured = measure_campaigns(MEASURE).results
    assert measured["campaign_id"].to_list() == ["CMP007", "CMP008"]

    truth = pl.read_parquet(landing / "_campaign_truth.parquet")
    with connect() as con:
        members = read_frame(con, "SELECT campaign_id, customer_id FROM ml.campaign_audiences")
    rows = {r["campaign_id"]: r for r in measured.iter_rows(named=True)}

    uplift = rows["CMP007"]
    audience = members.filter(pl.col("campaign_id") == "CMP007")["customer_id"].to_list()
    expected = true_lift(truth, "CMP007", audience)  # ~ UPLIFT x (1 - baseline rate)
    assert 0.5 * UPLIFT < expected < UPLIFT
    # Within 3.29 standard errors (99.9%); the SE is read off the 95% interval's width.
    se = (uplift["lift_ci_high"] - uplift["lift_ci_low"]) / (2 * 1.96)
    assert abs(uplift["absolute_lift"] - expected) < 3.29 * se, (uplift, expected)
    assert uplift["conclusion"] == "positive lift"
    assert not uplift["sample_too_small"]

    placebo = rows["CMP008"]
    assert (
        true_lift(
            truth,
            "CMP008",
            members.filter(pl.col("campaign_id") == "CMP008")["customer_id"].to_list(),
        )
        == 0.0
    )
    assert placebo["lift_ci_low"] <= 0.0 <= placebo["lift_ci_high"], placebo
    assert placebo["conclusion"] == "no significant lift"
