"""The experiment columns of a campaign result: SRM, CUPED revenue lift, always-valid
intervals and minimum detectable effects (formulas in :mod:`ml.campaigns.stats`).

:func:`experiment_statistics` turns one audience's outcomes into those columns; both
``campaign_results`` (a whole campaign) and ``campaign_insights`` (one RFM segment or
cluster of it) use it, so the two tables state the same statistics the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from ml.campaigns.assignment import TREATMENT
from ml.campaigns.stats import (
    DEFAULT_POWER,
    DEFAULT_SRM_ALPHA,
    conversion_standard_error,
    mean_lift,
    minimum_detectable_effect,
    sequential_halfwidth,
    srm_detected,
    srm_p_value,
)

# Column -> DuckDB type, in table order (after the columns measurement.py already had).
EXPERIMENT_COLUMNS = {
    "expected_control_share": "DOUBLE",
    "srm_p_value": "DOUBLE",
    "srm_detected": "BOOLEAN",
    "lift_sequential_ci_low": "DOUBLE",
    "lift_sequential_ci_high": "DOUBLE",
    "mde_absolute_lift": "DOUBLE",
    "revenue_lift_ci_low": "DOUBLE",
    "revenue_lift_ci_high": "DOUBLE",
    "revenue_lift_cuped": "DOUBLE",
    "revenue_lift_cuped_ci_low": "DOUBLE",
    "revenue_lift_cuped_ci_high": "DOUBLE",
    "revenue_lift_cuped_sequential_ci_low": "DOUBLE",
    "revenue_lift_cuped_sequential_ci_high": "DOUBLE",
    "revenue_lift_cuped_p_value": "DOUBLE",
    "cuped_variance_reduction": "DOUBLE",
    "mde_revenue_per_customer": "DOUBLE",
}
SRM_WITHHELD = "sample ratio mismatch: verdict withheld"


def experiment_statistics(
    outcomes: pl.DataFrame,
    *,
    control_share: float | None,
    alpha: float = 0.05,
    power: float = DEFAULT_POWER,
    srm_alpha: float = DEFAULT_SRM_ALPHA,
) -> dict[str, Any]:
    """SRM, sequential conversion interval, MDEs and CUPED revenue lift of one audience.

    Parameters
    ----------
    outcomes : polars.DataFrame
        One row per audience member: ``assignment_group``, ``converted`` (bool),
        ``revenue`` (float) and, for CUPED, ``pre_revenue`` (the same metric over the
        pre-campaign period; without it the revenue lift is left unadjusted).
    control_share : float or None
        The campaign's configured control share (``None``: no SRM test).
    alpha, power, srm_alpha : float
        Interval level ``1 - alpha``; power of the MDEs; SRM threshold.

    Returns
    -------
    dict
        The keys of :data:`EXPERIMENT_COLUMNS` (``None`` where undefined).
    """
    treated = (outcomes["assignment_group"] == TREATMENT).to_numpy()
    converted = outcomes["converted"].cast(pl.Float64).fill_null(0.0).to_numpy()
    revenue = outcomes["revenue"].cast(pl.Float64).fill_null(0.0).to_numpy()
    n_t, n_c = int(treated.sum()), int((~treated).sum())
    x_t, x_c = int(converted[treated].sum()), int(converted[~treated].sum())
    n = n_t + n_c

    out: dict[str, Any] = dict.fromkeys(EXPERIMENT_COLUMNS)
    out["expected_control_share"] = control_share
    if control_share is not None:
        out["srm_p_value"] = srm_p_value(n_t, n_c, control_share)
    out["srm_detected"] = srm_detected(out["srm_p_value"], srm_alpha)

    observed_se, null_se = conversion_standard_error(x_t, n_t, x_c, n_c)
    if observed_se is not None and observed_se > 0:
        lift = x_t / n_t - x_c / n_c
        half = sequential_halfwidth(observed_se, n, alpha, n)
        out["lift_sequential_ci_low"] = lift - half
        out["lift_sequential_ci_high"] = lift + half
    if null_se is not None:
        out["mde_absolute_lift"] = minimum_detectable_effect(null_se, alpha, power)

    plain = mean_lift(revenue, treated, alpha=alpha, power=power)
    out["revenue_lift_ci_low"], out["revenue_lift_ci_high"] = plain.ci_low, plain.ci_high
    pre = (
        outcomes["pre_revenue"].cast(pl.Float64).fill_null(0.0).to_numpy()
        if "pre_revenue" in outcomes.columns
        else np.zeros(len(revenue))
    )
    adjusted = mean_lift(revenue, treated, covariate=pre, alpha=alpha, power=power)
    out["revenue_lift_cuped"] = adjusted.estimate
    out["revenue_lift_cuped_ci_low"] = adjusted.ci_low
    out["revenue_lift_cuped_ci_high"] = adjusted.ci_high
    out["revenue_lift_cuped_sequential_ci_low"] = adjusted.sequential_ci_low
    out["revenue_lift_cuped_sequential_ci_high"] = adjusted.sequential_ci_high
    out["revenue_lift_cuped_p_value"] = adjusted.p_value
    if adjusted.estimate is not None:
        out["cuped_variance_reduction"] = adjusted.variance_reduction
    out["mde_revenue_per_customer"] = adjusted.mde
    return out
