"""Lift statistics (statsmodels), CI coverage on seeded simulations, windows and timing."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest
from scipy.stats import norm

from ml.campaigns.comparison import (
    NO_LIFT,
    POSITIVE,
    SAMPLE_TOO_SMALL,
    lift_statistics,
    summarize_outcomes,
)
from ml.campaigns.definitions import Campaign, CampaignConfig
from ml.campaigns.measurement import measurable
from ml.datagen.experiment_sim import simulate_experiment

SEEDS = range(20)  # fixed in advance: 0..19


def test_lift_p_value_and_interval_of_a_clear_effect() -> None:
    stats = lift_statistics(300, 1000, 200, 1000)
    assert stats["treatment_conversion_rate"] == 0.3
    assert stats["control_conversion_rate"] == 0.2
    assert stats["absolute_lift"] == pytest.approx(0.1)
    assert stats["relative_lift"] == pytest.approx(0.5)
    # The pooled two-proportion z statistic, computed independently.
    pooled = 500 / 2000
    z = 0.1 / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert stats["p_value"] == pytest.approx(2 * norm.sf(z), rel=1e-9)
    assert stats["lift_ci_low"] < 0.1 < stats["lift_ci_high"]
    assert stats["lift_ci_low"] > 0  # significant: the interval excludes zero
    assert stats["sample_too_small"] is False
    assert stats["conclusion"] == POSITIVE


def test_no_difference_is_no_significant_lift() -> None:
    stats = lift_statistics(100, 1000, 100, 1000)
    assert stats["absolute_lift"] == 0
    assert stats["p_value"] == pytest.approx(1.0)
    assert stats["lift_ci_low"] < 0 < stats["lift_ci_high"]
    assert stats["conclusion"] == NO_LIFT


@pytest.mark.parametrize(
    ("counts", "too_small"),
    [
        ((30, 99, 20, 500), True),  # a group under 100 customers
        ((3, 1000, 2, 1000), True),  # 2.5 expected conversions per group
        ((0, 400, 0, 400), True),  # nobody converted: no test possible
        ((12, 200, 10, 200), False),
    ],
)
def test_too_small_samples_are_flagged(counts: tuple[int, int, int, int], too_small: bool) -> None:
    stats = lift_statistics(*counts)
    assert stats["sample_too_small"] is too_small
    if too_small:
        assert stats["conclusion"] == SAMPLE_TOO_SMALL


def test_an_empty_group_has_no_lift() -> None:
    stats = lift_statistics(10, 100, 0, 0)
    assert stats["absolute_lift"] is None and stats["p_value"] is None
    assert stats["conclusion"] == SAMPLE_TOO_SMALL


@pytest.mark.parametrize("uplift", [0.05, 0.0])
def test_95_percent_interval_covers_the_true_uplift_in_at_least_17_of_20(uplift: float) -> None:
    covered = []
    for seed in SEEDS:
        outcomes, _ = simulate_experiment(seed, customers=2_000, base_rate=0.2, uplift=uplift)
        result = summarize_outcomes(outcomes)
        covered.append(result["lift_ci_low"] <= uplift <= result["lift_ci_high"])
    # Expected 19 of 20; P(fewer than 17 | 95% coverage) is about 1.6%.
    assert sum(covered) >= 17, covered


def test_summary_counts_groups_conversions_and_revenue() -> None:
    outcomes, _ = simulate_experiment(3, customers=500, base_rate=0.3, uplift=0.1)
    result = summarize_outcomes(outcomes, CampaignConfig())
    assert result["treatment_size"] + result["control_size"] == 500
    treatment = outcomes.filter(outcomes["assignment_group"] == "treatment")
    assert result["treatment_conversions"] == int(treatment["converted"].sum())
    assert result["treatment_revenue_per_customer"] == pytest.approx(treatment["revenue"].mean())
    assert result["revenue_lift_per_customer"] == pytest.approx(
        result["treatment_revenue_per_customer"] - result["control_revenue_per_customer"]
    )
    assert result["confidence_level"] == 0.95


def _campaign(starts: str, ends: str, cid: str = "CMP001") -> Campaign:
    return Campaign(
        cid,
        "Test",
        "email",
        "rule",
        "frequency>=1",
        datetime.fromisoformat(starts),
        datetime.fromisoformat(ends),
        100,
        0.2,
    )


def test_a_campaign_launches_the_day_before_it_starts_or_late_while_live() -> None:
    campaign = _campaign("2026-06-10 09:00", "2026-06-20 09:00")
    assert not campaign.launch_due(date(2026, 6, 8))
    assert campaign.launch_due(date(2026, 6, 9))  # messages go out on the 10th
    # Missed that run: the next runs still launch it, with a later window start.
    assert campaign.launch_due(date(2026, 6, 15))
    assert campaign.window(date(2026, 6, 15)) == (
        datetime(2026, 6, 16),
        datetime(2026, 6, 20, 9),
    )
    assert campaign.window(date(2026, 6, 9)) == (
        datetime(2026, 6, 10, 9),
        datetime(2026, 6, 20, 9),
    )
    assert not campaign.launch_due(date(2026, 6, 20))  # over by the contact day


def test_only_campaigns_whose_window_has_ended_are_measured() -> None:
    ended = _campaign("2026-06-01 09:00", "2026-06-10 09:00", "CMP001")
    running = _campaign("2026-06-01 09:00", "2026-06-20 09:00", "CMP002")
    never_launched = _campaign("2026-06-01 09:00", "2026-06-05 09:00", "CMP003")
    launched = {"CMP001": date(2026, 5, 31), "CMP002": date(2026, 5, 31)}
    due = measurable([ended, running, never_launched], launched, date(2026, 6, 10), 0)
    assert [c.campaign_id for c, _, _ in due] == ["CMP001"]
    # An attribution tail of 7 days postpones it.
    assert measurable([ended], launched, date(2026, 6, 10), 7) == []
    assert len(measurable([ended], launched, date(2026, 6, 17), 7)) == 1
