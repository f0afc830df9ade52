"""Experiment statistics against independent computations and simulations with a known
effect (ml.datagen.experiment_sim, ml.datagen.uplift) and placebos. Seeds are fixed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chisquare, norm

from ml.campaigns.comparison import NO_LIFT, summarize_outcomes
from ml.campaigns.definitions import CampaignConfig
from ml.campaigns.experiment import SRM_WITHHELD
from ml.campaigns.stats import (
    cuped_adjust,
    mean_lift,
    minimum_detectable_effect,
    sequential_halfwidth,
    sequential_rho_squared,
    srm_detected,
    srm_p_value,
)
from ml.datagen.experiment_sim import simulate_experiment

SIMULATIONS = range(400)


@pytest.fixture(scope="module")
def measured() -> list[tuple[dict, object]]:
    """400 seeded campaigns with a known conversion and revenue lift, measured."""
    out = []
    for seed in SIMULATIONS:
        outcomes, truth = simulate_experiment(seed)
        out.append((summarize_outcomes(outcomes, control_share=0.5), truth))
    return out


def covered(rows, low: str, high: str, truth: str) -> float:
    return float(np.mean([r[low] <= getattr(t, truth) <= r[high] for r, t in rows]))


# --------------------------------------------------------------------------- SRM


def test_srm_p_value_is_pearsons_chi_square() -> None:
    expected = chisquare([540, 460], [500, 500]).pvalue
    assert srm_p_value(460, 540, 0.5) == pytest.approx(expected, rel=1e-12)
    expected = chisquare([180, 820], [200, 800]).pvalue
    assert srm_p_value(820, 180, 0.2) == pytest.approx(expected, rel=1e-12)
    assert srm_p_value(0, 0, 0.5) is None and srm_p_value(10, 0, 0.0) is None
    assert srm_detected(0.0004) and not srm_detected(0.002) and not srm_detected(None)


def test_srm_flags_a_broken_sender_and_withholds_the_verdict(measured) -> None:
    # Fair splits: p-values uniform, so about 5 % below 0.05 and about 0.1 % flagged.
    p_values = np.array([r["srm_p_value"] for r, _ in measured])
    assert 0.02 <= np.mean(p_values < 0.05) <= 0.08
    assert sum(r["srm_detected"] for r, _ in measured) <= 2
    broken, _ = simulate_experiment(1, lost_treatment_share=0.3)
    result = summarize_outcomes(broken, control_share=0.5)
    assert result["srm_detected"] and result["srm_p_value"] < 1e-6
    assert result["conclusion"] == SRM_WITHHELD


# --------------------------------------------------------------------------- intervals


def test_sequential_halfwidth_is_the_published_formula() -> None:
    alpha, tuning, n, se = 0.05, 2_000, 1_500, 0.02
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    sigma = se * math.sqrt(n)
    expected = sigma * math.sqrt(
        2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha)
    )
    assert sequential_rho_squared(alpha, tuning) == pytest.approx(rho2)
    assert sequential_halfwidth(se, n, alpha, tuning) == pytest.approx(expected, rel=1e-12)
    # Wider than the fixed-horizon interval, tightest relative to it near N* = tuning.
    ratios = [sequential_halfwidth(se, m, alpha, tuning) / (norm.ppf(0.975) * se) for m in
              (200, 2_000, 20_000)]  # fmt: skip
    assert all(r > 1 for r in ratios) and ratios[1] < ratios[0] and ratios[1] < ratios[2]
    with pytest.raises(ValueError, match="alpha"):
        sequential_rho_squared(1.5, 100)


def test_sequential_interval_stays_valid_when_looked_at_repeatedly() -> None:
    """A/A streams looked at every 100 customers: the fixed interval excludes the truth
    at some look far more often than 5 %, the always-valid one does not."""
    rng = np.random.default_rng(7)
    streams, n, looks = 300, 3_000, np.arange(100, 3_001, 100)
    fixed_miss = sequential_miss = 0
    z = norm.ppf(0.975)
    for _ in range(streams):
        treated = rng.random(n) < 0.5
        values = rng.lognormal(1.0, 1.0, n)  # skewed, same distribution in both groups
        missed_fixed = missed_sequential = False
        for m in looks:
            t, v = treated[:m], values[:m]
            se = math.sqrt(v[t].var(ddof=1) / t.sum() + v[~t].var(ddof=1) / (~t).sum())
            estimate = v[t].mean() - v[~t].mean()
            missed_fixed |= abs(estimate) > z * se
            missed_sequential |= abs(estimate) > sequential_halfwidth(se, m, 0.05, n)
        fixed_miss += missed_fixed
        sequential_miss += missed_sequential
    assert fixed_miss / streams > 0.15
    assert sequential_miss / streams <= 0.05


def test_fixed_horizon_intervals_cover_the_known_lift_95_percent(measured) -> None:
    conversion = covered(measured, "lift_ci_low", "lift_ci_high", "conversion_lift")
    revenue = covered(measured, "revenue_lift_ci_low", "revenue_lift_ci_high", "revenue_lift")
    cuped = covered(
        measured, "revenue_lift_cuped_ci_low", "revenue_lift_cuped_ci_high", "revenue_lift"
    )
    for coverage in (conversion, revenue, cuped):
        assert 0.925 <= coverage <= 0.975, (conversion, revenue, cuped)
    # At a single look the always-valid intervals are conservative.
    assert covered(measured, "lift_sequential_ci_low", "lift_sequential_ci_high",
                   "conversion_lift") >= 0.97  # fmt: skip


# --------------------------------------------------------------------------- CUPED


def test_cuped_theta_is_the_regression_slope_and_reduces_variance(measured) -> None:
    outcomes, _ = simulate_experiment(3)
    y, x = outcomes["revenue"].to_numpy(), outcomes["pre_revenue"].to_numpy()
    adjusted, theta = cuped_adjust(y, x)
    assert theta == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-9)
    assert adjusted.mean() == pytest.approx(y.mean())
    assert 1 - adjusted.var() / y.var() == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, rel=1e-9)
    # Over the simulations: unbiased, and its intervals are narrower than unadjusted ones.
    estimates = np.array([r["revenue_lift_cuped"] for r, _ in measured])
    truth = measured[0][1].revenue_lift
    assert abs(estimates.mean() - truth) < 3 * estimates.std() / math.sqrt(len(estimates))
    width = np.mean([r["revenue_lift_ci_high"] - r["revenue_lift_ci_low"] for r, _ in measured])
    cuped_width = np.mean(
        [r["revenue_lift_cuped_ci_high"] - r["revenue_lift_cuped_ci_low"] for r, _ in measured]
    )
    reduction = np.mean([r["cuped_variance_reduction"] for r, _ in measured])
    assert cuped_width < 0.95 * width and 0.1 < reduction < 0.5


def test_cuped_without_a_usable_covariate_is_the_plain_difference() -> None:
    rng = np.random.default_rng(0)
    y, treated = rng.normal(10, 2, 500), rng.random(500) < 0.5
    plain = mean_lift(y, treated)
    same = mean_lift(y, treated, covariate=np.zeros(500))
    assert same.estimate == pytest.approx(plain.estimate) and same.theta == 0.0
    assert same.ci_low == pytest.approx(plain.ci_low) and same.variance_reduction == 0.0
    assert mean_lift(y[:1], treated[:1]).estimate is None


# --------------------------------------------------------------------------- MDE, placebo


def test_mde_formula_and_power_at_the_mde() -> None:
    assert minimum_detectable_effect(0.01, 0.05, 0.8) == pytest.approx(
        (norm.ppf(0.975) + norm.ppf(0.8)) * 0.01
    )
    mde = summarize_outcomes(simulate_experiment(0, uplift=0.0)[0], control_share=0.5)[
        "mde_absolute_lift"
    ]
    uplift = round(mde, 3)
    detected = [
        summarize_outcomes(simulate_experiment(seed, uplift=uplift)[0], control_share=0.5)[
            "p_value"
        ]
        < 0.05
        for seed in range(300)
    ]
    assert 0.72 <= np.mean(detected) <= 0.88, (uplift, np.mean(detected))


def test_placebo_campaigns_are_significant_about_5_percent_of_the_time() -> None:
    results = [
        summarize_outcomes(simulate_experiment(seed, uplift=0.0)[0], control_share=0.5)
        for seed in range(300)
    ]
    conversion = np.mean([r["p_value"] < 0.05 for r in results])
    revenue = np.mean([r["revenue_lift_cuped_p_value"] < 0.05 for r in results])
    assert conversion <= 0.08 and revenue <= 0.08
    assert np.mean([r["conclusion"] == NO_LIFT for r in results]) >= 0.9


def test_config_validates_the_new_settings() -> None:
    with pytest.raises(ValueError, match="srm_alpha"):
        CampaignConfig(srm_alpha=0)
    with pytest.raises(ValueError, match="pre_period_days"):
        CampaignConfig(pre_period_days=-1)
