"""Did the campaign work? Treatment vs control conversion, with a CI and a p-value.

For every campaign whose attribution window has ended by the end of the as-of date, the
frozen audience (``ml.campaign_audiences``) is joined with the purchases of the window
(``marts.fct_order_lines``, merchandise only, netted):

* **converted**: the customer has an order line with positive net quantity in the window;
* **revenue**: their net merchandise revenue in the window (0 without purchases).

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

Output: ``ml.campaign_results``, one partition per as-of date holding every measurable
campaign (re-running a date replaces it).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from ml.campaigns.assignment import CONTROL, TREATMENT
from ml.campaigns.audience_inputs import AUDIENCE_TABLE, launched_before
from ml.campaigns.definitions import (
    Campaign,
    CampaignConfig,
    contact_start,
)
from ml.campaigns.experiment import EXPERIMENT_COLUMNS, SRM_WITHHELD, experiment_statistics
from ml.campaigns.session import campaign_session
from ml.dates import to_date
from ml.warehouse.stage_log import record_stage
from ml.warehouse.tables import ML_SCHEMA, read_frame, rows_frame, write_partition

log = logging.getLogger(__name__)

RESULTS_TABLE = "campaign_results"
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
RESULT_COLUMNS = {
    "logical_date": "DATE",
    "campaign_id": "VARCHAR",
    "campaign_name": "VARCHAR",
    "channel": "VARCHAR",
    "target_type": "VARCHAR",
    "target_value": "VARCHAR",
    "audience_date": "DATE",
    "window_start": "TIMESTAMP",
    "window_end": "TIMESTAMP",
    **COMPARISON_COLUMNS,
    **CONCLUSION_COLUMNS,
    "pre_period_start": "TIMESTAMP",
    **EXPERIMENT_COLUMNS,
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


def pre_period(audience_date: date, days: int) -> tuple[datetime, datetime]:
    """``[start, end)`` of the CUPED covariate: the ``days`` before the contact day.

    It ends where messages may start going out, so no treated purchase falls in it.
    """
    end = contact_start(audience_date)
    return end - timedelta(days=days), end


def campaign_outcomes(
    con,
    campaign_id: str,
    audience_date: date,
    window: tuple[datetime, datetime],
    pre_window: tuple[datetime, datetime] | None = None,
) -> pl.DataFrame:
    """``customer_id, assignment_group, segment, cluster_name, copy_writer, converted,
    revenue, pre_revenue`` of one frozen audience.

    ``pre_revenue`` is the customer's net merchandise revenue in ``pre_window`` (0 without
    one); ``segment`` and ``cluster_name`` are the customer's at launch.
    """
    pre_window = pre_window or (window[0], window[0])
    return read_frame(
        con,
        f"""
        WITH members AS (
            SELECT * FROM {ML_SCHEMA}.{AUDIENCE_TABLE}
            WHERE campaign_id = ? AND logical_date = ?
        ),
        lines AS (
            SELECT l.customer_id, l.net_quantity, l.net_revenue, l.ordered_at
            FROM marts.fct_order_lines AS l
            JOIN marts.dim_products AS p USING (product_id)
            WHERE coalesce(p.is_product, true)
              AND l.ordered_at >= least(?::TIMESTAMP, ?::TIMESTAMP) AND l.ordered_at < ?
              AND l.customer_id IN (SELECT customer_id FROM members)
        ),
        per_customer AS (
            SELECT customer_id,
                   bool_or(net_quantity > 0 AND ordered_at >= ?) AS converted,
                   sum(net_revenue) FILTER (WHERE ordered_at >= ?) AS revenue,
                   sum(net_revenue) FILTER (WHERE ordered_at >= ? AND ordered_at < ?)
                       AS pre_revenue
            FROM lines GROUP BY customer_id
        )
        SELECT m.customer_id, m.assignment_group, m.segment, m.cluster_name,
               m.copy_writer,
               coalesce(c.converted, false) AS converted,
               coalesce(c.revenue, 0)::DOUBLE AS revenue,
               coalesce(c.pre_revenue, 0)::DOUBLE AS pre_revenue
        FROM members AS m LEFT JOIN per_customer AS c USING (customer_id)
        ORDER BY m.customer_id
        """,
        [
            campaign_id,
            audience_date,
            window[0],
            pre_window[0],
            window[1],
            window[0],
            window[0],
            pre_window[0],
            pre_window[1],
        ],
    )


@dataclass
class MeasurementReport:
    """What one measurement run produced."""

    logical_date: date
    measured: list[str]
    results: pl.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    # Campaign id -> its audience's outcomes (campaign_outcomes), for campaign_insights.
    outcomes: dict[str, pl.DataFrame] = field(default_factory=dict)

    def summary(self) -> str:
        if not self.measured:
            return f"campaign results as of {self.logical_date}: no campaign to measure"
        parts = [
            f"{r['campaign_id']} lift {r['absolute_lift']:+.4f} "
            f"[{r['lift_ci_low']:+.4f}, {r['lift_ci_high']:+.4f}] p={r['p_value']:.3g} "
            f"({r['conclusion']})"
            if r["absolute_lift"] is not None
            and r["lift_ci_low"] is not None
            and r["p_value"] is not None
            else f"{r['campaign_id']} ({r['conclusion']})"
            for r in self.results.iter_rows(named=True)
        ]
        return f"campaign results as of {self.logical_date}: " + "; ".join(parts)


def measurable(
    campaigns: list[Campaign], launched: dict[str, date], as_of: date, attribution_days: int
) -> list[tuple[Campaign, date, tuple[datetime, datetime]]]:
    """Campaigns with an audience whose attribution window ended by the end of ``as_of``."""
    horizon = contact_start(as_of)
    due = []
    for campaign in campaigns:
        audience_date = launched.get(campaign.campaign_id)
        if audience_date is None or audience_date > as_of:
            continue
        window = campaign.window(audience_date, attribution_days)
        if window[1] <= horizon:
            due.append((campaign, audience_date, window))
    return due


def measure_campaigns(
    as_of: date | datetime | str, *, config: CampaignConfig | None = None
) -> MeasurementReport:
    """Measure every campaign whose window has ended; replace ``ml.campaign_results``.

    The marts must be built as of ``as_of`` (they then hold every purchase up to the end
    of that day).

    Returns
    -------
    MeasurementReport
    """
    config = config or CampaignConfig()
    started = time.perf_counter()
    day = to_date(as_of)
    with campaign_session() as (con, campaigns):
        launched = launched_before(con, day + timedelta(days=1))
        known = {c.campaign_id for c in campaigns}
        skipped = {
            cid: "launched, but no longer defined in raw.campaigns or the seed"
            for cid in launched
            if cid not in known
        }
        rows, outcomes_of = [], {}
        for campaign, audience_date, window in measurable(
            campaigns, launched, day, config.attribution_days
        ):
            pre_window = pre_period(audience_date, config.pre_period_days)
            outcomes = campaign_outcomes(
                con, campaign.campaign_id, audience_date, window, pre_window
            )
            outcomes_of[campaign.campaign_id] = outcomes
            rows.append(
                {
                    "campaign_id": campaign.campaign_id,
                    "campaign_name": campaign.name,
                    "channel": campaign.channel,
                    "target_type": campaign.target_type,
                    "target_value": campaign.target_value,
                    "audience_date": audience_date,
                    "window_start": window[0],
                    "window_end": window[1],
                    "pre_period_start": pre_window[0],
                    **summarize_outcomes(outcomes, config, control_share=campaign.control_share),
                }
            )
        results = rows_frame(rows, RESULT_COLUMNS)
        written = write_partition(
            con,
            RESULTS_TABLE,
            results,
            day,
            columns=RESULT_COLUMNS,
            order_by="campaign_id",
        )
        seconds = time.perf_counter() - started
        record_stage(
            con,
            day,
            "campaign_results",
            rows=written,
            seconds=seconds,
            detail={"measured": results["campaign_id"].to_list(), "skipped": skipped},
        )
    report = MeasurementReport(
        day, results["campaign_id"].to_list(), results, skipped, seconds, outcomes_of
    )
    for cid, why in skipped.items():
        log.warning("campaign %s not measured: %s", cid, why)
    log.info("%s", report.summary())
    return report
