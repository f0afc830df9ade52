"""Did the campaign work? Treatment vs control conversion, with a CI and a p-value.

For every campaign whose attribution window has ended by the end of the as-of date, the
frozen audience (``ml.campaign_audiences``) is joined with the purchases of the window
(``marts.fct_order_lines``, merchandise only, netted):

* **converted**: the customer has an order line with positive net quantity in the window;
* **revenue**: their net merchandise revenue in the window (0 without purchases).

Treatment against control (lift, its CI and p-value, the experiment columns, the
conclusion) is :mod:`ml.campaigns.comparison`'s.

Output: ``ml.campaign_results``, one partition per as-of date holding every measurable
campaign (re-running a date replaces it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl

from ml.campaigns.audience_inputs import AUDIENCE_TABLE, launched_before
from ml.campaigns.comparison import COMPARISON_COLUMNS, CONCLUSION_COLUMNS, summarize_outcomes
from ml.campaigns.definitions import (
    Campaign,
    CampaignConfig,
    contact_start,
)
from ml.campaigns.experiment import EXPERIMENT_COLUMNS
from ml.campaigns.session import campaign_session
from ml.dates import to_date
from ml.warehouse.stage_log import record_stage
from ml.warehouse.tables import ML_SCHEMA, read_frame, rows_frame, write_partition

log = logging.getLogger(__name__)

RESULTS_TABLE = "campaign_results"
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
