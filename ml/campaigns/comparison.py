"""Treatment against control of one audience: rates, lift, CI, p-value, conclusion.

The outcomes of a campaign's audience (converted, revenue, per customer and group) become
the comparison columns of ``ml.campaign_results`` and of each part of
``ml.campaign_insights``.

Lift is treatment rate minus control rate (absolute) and that over the control rate
(relative). The p-value is the two-proportion z-test (pooled variance, statsmodels
``proportions_ztest``); the confidence interval of the difference is Newcombe's hybrid
score interval (statsmodels ``confint_proportions_2indep``), which keeps its coverage
for small or extreme rates where the Wald interval does not. A result is flagged
``sample_too_small`` when a group has fewer than ``min_group_size`` customers, or fewer
than ``min_expected_count`` expected conversions or non-conversions at the pooled rate
(the z-test's normal approximation does not hold there).

Beside that test, every result carries the experiment columns of
:mod:`ml.campaigns.experiment` (formulas and references in :mod:`ml.campaigns.stats`): a
sample-ratio-mismatch test against the configured control share (a failure withholds the
verdict: ``conclusion`` says so), always-valid intervals beside the fixed-horizon ones,
the revenue lift adjusted with each customer's revenue over the ``pre_period_days``
before the contact day (CUPED), and the minimum detectable effects at the sample size.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from ml.campaigns.assignment import CONTROL, TREATMENT
from ml.campaigns.definitions import CampaignConfig
from ml.campaigns.experiment import SRM_WITHHELD, experiment_statistics

# Treatment against control, as a campaign's result and each part of its insights carry it.
COMPARISON_COLUMNS = {
    "treatment_size": "BIGINT",
    "control_size": "BIGINT",
    "treatment_conversions": "BIGINT",
    "control_conversions": "BIGINT",
    "treatment_conversion_rate": "DOUBLE",
    "control_conversion_rate": "DOUBLE",
    "treatment_revenue_per_customer": "DOUBLE",
    "control_revenue_per_customer": "DOUBLE",
    "absolute_lift": "DOUBLE",
    "relative_lift": "DOUBLE",
    "lift_ci_low": "DOUBLE",
    "lift_ci_high": "DOUBLE",
    "p_value": "DOUBLE",
}
# What the comparison concludes (after the p-values: insights add a Holm-adjusted one).
CONCLUSION_COLUMNS = {
    "revenue_lift_per_customer": "DOUBLE",
    "confidence_level": "DOUBLE",
    "sample_too_small": "BOOLEAN",
    "conclusion": "VARCHAR",
}
SAMPLE_TOO_SMALL = "sample too small to conclude"
POSITIVE, NEGATIVE, NO_LIFT = "positive lift", "negative lift", "no significant lift"


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def lift_statistics(
    treatment_conversions: int,
    treatment_size: int,
    control_conversions: int,
    control_size: int,
    *,
    alpha: float = 0.05,
    min_group_size: int = 100,
    min_expected_count: int = 10,
) -> dict[str, Any]:
    """Conversion rates, lift, CI, p-value and the too-small flag of one campaign.

    Parameters
    ----------
    treatment_conversions, treatment_size, control_conversions, control_size : int
        Converted customers and customers per group.
    alpha : float
        The CI has level ``1 - alpha``; a p-value below ``alpha`` is significant.
    min_group_size, min_expected_count : int
        Below either, ``sample_too_small`` is set (see the module docstring).

    Returns
    -------
    dict
        ``treatment_conversion_rate, control_conversion_rate, absolute_lift,
        relative_lift, lift_ci_low, lift_ci_high, p_value, sample_too_small,
        conclusion`` (None where undefined, e.g. an empty group).
    """
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    x_t, n_t, x_c, n_c = (
        int(treatment_conversions),
        int(treatment_size),
        int(control_conversions),
        int(control_size),
    )
    out: dict[str, Any] = dict.fromkeys(
        (
            "treatment_conversion_rate",
            "control_conversion_rate",
            "absolute_lift",
            "relative_lift",
            "lift_ci_low",
            "lift_ci_high",
            "p_value",
        )
    )
    if n_t > 0:
        out["treatment_conversion_rate"] = x_t / n_t
    if n_c > 0:
        out["control_conversion_rate"] = x_c / n_c
    pooled = (x_t + x_c) / (n_t + n_c) if n_t + n_c else 0.0
    expected = [n * p for n in (n_t, n_c) for p in (pooled, 1 - pooled)]
    too_small = min(n_t, n_c) < min_group_size or min(expected) < min_expected_count
    if n_t > 0 and n_c > 0:
        lift = x_t / n_t - x_c / n_c
        out["absolute_lift"] = lift
        if x_c > 0:
            out["relative_lift"] = lift / (x_c / n_c)
        low, high = confint_proportions_2indep(
            x_t, n_t, x_c, n_c, method="newcomb", compare="diff", alpha=alpha
        )
        out["lift_ci_low"], out["lift_ci_high"] = _finite(low), _finite(high)
        if 0 < pooled < 1:  # otherwise both groups are all-or-nothing: no test possible
            _, p_value = proportions_ztest([x_t, x_c], [n_t, n_c], alternative="two-sided")
            out["p_value"] = _finite(p_value)
    out["sample_too_small"] = bool(too_small)
    out["conclusion"] = conclusion(out["absolute_lift"], out["p_value"], too_small, alpha)
    return out


def conclusion(lift: float | None, p_value: float | None, too_small: bool, alpha: float) -> str:
    """One phrase for analysts: too small, positive, negative or no significant lift."""
    if too_small or lift is None or p_value is None:
        return SAMPLE_TOO_SMALL
    if p_value < alpha:
        return POSITIVE if lift > 0 else NEGATIVE
    return NO_LIFT


def summarize_outcomes(
    outcomes: pl.DataFrame,
    config: CampaignConfig | None = None,
    *,
    control_share: float | None = None,
) -> dict:
    """Group sizes, conversions, revenue per customer, lift and experiment statistics.

    Parameters
    ----------
    outcomes : polars.DataFrame
        One row per audience member: ``assignment_group`` ('treatment'/'control'),
        ``converted`` (bool), ``revenue`` (float) and optionally ``pre_revenue`` (float,
        the CUPED covariate).
    config : CampaignConfig, optional
    control_share : float, optional
        The campaign's configured control share, for the sample-ratio test.
    """
    config = config or CampaignConfig()
    stats = {}
    for group in (TREATMENT, CONTROL):
        rows = outcomes.filter(pl.col("assignment_group") == group)
        stats[group] = (
            rows.height,
            int(rows["converted"].cast(pl.Int64).sum()) if rows.height else 0,
            float(rows["revenue"].cast(pl.Float64).mean()) if rows.height else None,
        )
    (n_t, x_t, rev_t), (n_c, x_c, rev_c) = stats[TREATMENT], stats[CONTROL]
    result = {
        "treatment_size": n_t,
        "control_size": n_c,
        "treatment_conversions": x_t,
        "control_conversions": x_c,
        "treatment_revenue_per_customer": rev_t,
        "control_revenue_per_customer": rev_c,
        "revenue_lift_per_customer": (rev_t - rev_c)
        if rev_t is not None and rev_c is not None
        else None,
        "confidence_level": 1 - config.alpha,
    }
    result.update(
        lift_statistics(
            x_t,
            n_t,
            x_c,
            n_c,
            alpha=config.alpha,
            min_group_size=config.min_group_size,
            min_expected_count=config.min_expected_count,
        )
    )
    result.update(
        experiment_statistics(
            outcomes,
            control_share=control_share,
            alpha=config.alpha,
            power=config.power,
            srm_alpha=config.srm_alpha,
        )
    )
    if result["srm_detected"]:
        result["conclusion"] = SRM_WITHHELD
    return result
