"""campaign_insights: lift by segment/cluster/copy arm with the results' statistics, the
Holm adjustment and the targeting rule, on simulated campaigns with known effects."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.multitest import multipletests

from ml.campaigns.comparison import summarize_outcomes
from ml.campaigns.definitions import CampaignConfig
from ml.campaigns.insights import (
    AB_DIMENSION,
    CHECK,
    EXCLUDE,
    KEEP_TESTING,
    TARGET,
    TOO_SMALL,
    campaign_parts,
    holm,
    targeting,
)
from ml.datagen.experiment_sim import simulate_experiment


def segment(seed: int, name: str, uplift: float, customers: int, cluster: str) -> pl.DataFrame:
    frame, _ = simulate_experiment(seed, customers=customers, uplift=uplift)
    return frame.with_columns(
        pl.col("customer_id") + f"-{name}",
        segment=pl.lit(name),
        cluster_name=pl.lit(cluster),
        copy_writer=pl.lit(None, pl.String),
    )


@pytest.fixture(scope="module")
def outcomes() -> pl.DataFrame:
    """Champions respond strongly, Lost customers not at all, a tiny segment in between."""
    return pl.concat(
        [
            segment(1, "Champions", 0.15, 4_000, "recent frequent high spenders"),
            segment(2, "Lost", 0.0, 4_000, "lapsed occasional low spenders"),
            segment(3, "Promising", 0.1, 120, "lapsed occasional low spenders"),
        ]
    )


def by_value(rows: list[dict], dimension: str) -> dict[str, dict]:
    return {r["dimension_value"]: r for r in rows if r["dimension"] == dimension}


def test_parts_carry_the_same_statistics_as_the_whole(outcomes: pl.DataFrame) -> None:
    rows = campaign_parts("CMP1", "Test", outcomes, 0.5, CampaignConfig())
    segments, clusters = by_value(rows, "rfm_segment"), by_value(rows, "cluster")
    assert set(segments) == {"Champions", "Lost", "Promising"}
    assert (
        sum(r["treatment_size"] for r in segments.values())
        == (outcomes["assignment_group"] == "treatment").sum()
    )
    champions = outcomes.filter(pl.col("segment") == "Champions")
    expected = summarize_outcomes(champions, control_share=0.5)
    for key, value in expected.items():
        assert segments["Champions"][key] == value, key
    lapsed = clusters["lapsed occasional low spenders"]
    assert lapsed["treatment_size"] + lapsed["control_size"] == 4_120
    assert all(r["campaign_id"] == "CMP1" and r["campaign_name"] == "Test" for r in rows)
    assert not any(r["dimension"] == "copy_writer" for r in rows)  # one writer: no split


def test_the_targeting_rule_finds_where_the_campaign_worked(outcomes: pl.DataFrame) -> None:
    rows = by_value(campaign_parts("CMP1", "Test", outcomes, 0.5, CampaignConfig()), "rfm_segment")
    assert rows["Champions"]["targeting"] == TARGET
    assert rows["Lost"]["targeting"] == KEEP_TESTING
    assert rows["Promising"]["targeting"] == TOO_SMALL
    for row in rows.values():
        assert row["p_value_holm"] >= row["p_value"]


def test_targeting_rule_cases() -> None:
    base = {"srm_detected": False, "sample_too_small": False, "absolute_lift": 0.02}
    assert targeting({**base, "p_value_holm": 0.01}, 0.05) == TARGET
    assert targeting({**base, "absolute_lift": -0.02, "p_value_holm": 0.01}, 0.05) == EXCLUDE
    assert targeting({**base, "p_value_holm": 0.2}, 0.05) == KEEP_TESTING
    assert targeting({**base, "sample_too_small": True, "p_value_holm": 0.0}, 0.05) == TOO_SMALL
    assert targeting({**base, "srm_detected": True, "p_value_holm": 0.0}, 0.05) == CHECK


def test_holm_matches_statsmodels() -> None:
    p = [0.01, 0.04, 0.03, 0.2, None, 0.001]
    present = [x for x in p if x is not None]
    expected = iter(multipletests(present, method="holm")[1])
    assert holm(p) == [pytest.approx(next(expected)) if x is not None else None for x in p]


def test_an_ab_of_copy_is_measured_per_arm_and_head_to_head() -> None:
    """Arm 'llm' converts 8 points more than 'builtin'; each arm has its own control."""
    builtin, _ = simulate_experiment(5, customers=6_000, uplift=0.02)
    llm, _ = simulate_experiment(6, customers=6_000, uplift=0.10)
    outcomes = pl.concat(
        [
            builtin.with_columns(copy_writer=pl.lit("builtin")),
            llm.with_columns(pl.col("customer_id") + "-b", copy_writer=pl.lit("llm")),
        ]
    ).with_columns(segment=pl.lit("Champions"), cluster_name=pl.lit("c"))
    rows = campaign_parts("CMP2", "AB", outcomes, 0.5, CampaignConfig())
    arms = by_value(rows, "copy_writer")
    assert set(arms) == {"builtin", "llm"}
    assert arms["llm"]["absolute_lift"] > arms["builtin"]["absolute_lift"]
    (head_to_head,) = [r for r in rows if r["dimension"] == AB_DIMENSION]
    assert head_to_head["dimension_value"] == "llm vs builtin"
    treated = outcomes.filter(pl.col("assignment_group") == "treatment")
    rate = {
        arm: treated.filter(pl.col("copy_writer") == arm)["converted"].mean()
        for arm in ("builtin", "llm")
    }
    assert head_to_head["absolute_lift"] == pytest.approx(rate["llm"] - rate["builtin"])
    assert head_to_head["treatment_size"] == (treated["copy_writer"] == "llm").sum()
    assert head_to_head["lift_ci_low"] > 0 and head_to_head["targeting"] == TARGET
    assert np.isfinite(head_to_head["srm_p_value"])
