"""Replay missed launches: campaigns that ended before a first run, launched as the daily
job would have launched them the day before they started.

Why a first run measures nothing without it: an audience is frozen by the run of the day
before its campaign starts (:meth:`Campaign.launch_due`), and measured once its window
has ended. A first run on a shop with history has launched nothing, so no campaign that
has already ended has an audience, and ``campaign_results`` stays empty until a campaign
launched by Affinity itself has run its course (weeks later).

A replay rebuilds, for each missed launch date ``d`` (oldest first), the marts the
audience step reads as of ``d`` (``dbt run`` of :data:`SELECTION`: nothing after ``d`` is
visible), segments the customers from those features (behavioural clusters, no model),
and launches what the run of ``d`` would have launched: eligibility, target, frequency
cap with the audiences already stored, max audience, the seeded treatment/control hash,
bestsellers of that time as featured products (or recommendations of a date up to
``d``), and copy. No model trained later ranks anyone, so nothing the campaign caused
can steer who was selected. Then the marts are rebuilt as of the run's own date.

When a replay is right: the messages must have gone out to the audience the hash picks.
That holds for the generated shop (its simulator treats exactly the customers the hash
assigns to treatment, :mod:`ml.datagen.uplift`) and for a campaign a team sent from
Affinity's audience. For a campaign sent by another tool to another list, a replay
measures a campaign that never happened as defined: expect no lift (an A/A check).
That is why replays are opt-in (``affinity run --replay-campaigns``; on by default only
for a generated shop).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from ml.campaigns.audience_inputs import (
    AUDIENCE_TABLE,
    load_eligible,
    prior_contacts,
)
from ml.campaigns.audiences import checked_products, launch_rows, write_audiences
from ml.campaigns.definitions import (
    Campaign,
    CampaignConfig,
    contact_start,
)
from ml.campaigns.session import campaign_session
from ml.campaigns.targeting import select_audiences
from ml.dates import to_date
from ml.warehouse import connect
from ml.warehouse.stage_log import record_stage
from ml.warehouse.tables import ML_SCHEMA, read_frame, table_exists

log = logging.getLogger(__name__)

# The marts the audience step reads, with everything upstream of them.
SELECTION = (
    "+dim_customers",
    "+dim_products",
    "+customer_features",
    "+customer_rfm_segments",
    "+fct_order_lines",
    "+product_popularity",
)
# A replayed launch needs this much history before it (features of a week are noise).
MIN_HISTORY_DAYS = 7


@dataclass
class ReplayReport:
    """What one replay launched, by launch date."""

    as_of: date
    launched: dict[date, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        if not self.launched:
            return f"campaign replay as of {self.as_of}: no missed launch"
        parts = [f"{d}: {', '.join(ids)}" for d, ids in self.launched.items()]
        return f"campaign replay as of {self.as_of}: launched {'; '.join(parts)}"


def missed_launches(
    campaigns: list[Campaign], launched: set[str], as_of: date
) -> dict[date, list[Campaign]]:
    """Launch date -> campaigns that ended unlaunched by the contact day after ``as_of``.

    A campaign still running then is left to the daily run (it launches late).
    """
    horizon = contact_start(as_of)
    due: dict[date, list[Campaign]] = {}
    for campaign in campaigns:
        if campaign.campaign_id in launched or campaign.ends_at > horizon:
            continue
        due.setdefault(campaign.starts_at.date() - timedelta(days=1), []).append(campaign)
    return dict(sorted(due.items()))


def _first_data_day(con) -> date | None:
    if not table_exists(con, "marts", "fct_order_lines"):
        return None
    value = con.execute("SELECT min(ordered_at) FROM marts.fct_order_lines").fetchall()[0][0]
    return value.date() if value is not None else None


def replay_missed_launches(
    as_of: date | str,
    *,
    config: CampaignConfig | None = None,
    max_dates: int = 6,
) -> ReplayReport:
    """Launch every missed campaign as of its launch date; leave the marts as of ``as_of``.

    Parameters
    ----------
    as_of : date or str
        The run's logical date (the marts are as of it before and after).
    config : CampaignConfig, optional
    max_dates : int
        At most this many launch dates are replayed (the most recent; each costs a dbt
        run); older ones are reported as skipped.
    """
    from ml.warehouse.dbt import run_dbt

    config = config or CampaignConfig()
    started = time.perf_counter()
    day = to_date(as_of)
    report = ReplayReport(day)
    with campaign_session() as (con, campaigns):
        launched = _launched_ids(con)
        first_day = _first_data_day(con)
    due = missed_launches(campaigns, launched, day)
    for launch_day in list(due):
        if first_day is None or launch_day < first_day + timedelta(days=MIN_HISTORY_DAYS):
            for campaign in due.pop(launch_day):
                report.skipped[campaign.campaign_id] = (
                    f"its launch date {launch_day} has less than {MIN_HISTORY_DAYS} days of "
                    "data before it"
                )
    for launch_day in list(due)[: max(0, len(due) - max_dates)]:
        for campaign in due.pop(launch_day):
            report.skipped[campaign.campaign_id] = f"more than {max_dates} launch dates to replay"
    if due:
        try:
            for launch_day, missed in due.items():
                run_dbt(["run", "--select", *SELECTION], as_of=launch_day)
                sizes = _launch_as_of(launch_day, missed, config)
                report.launched[launch_day] = sorted(sizes)
                report.sizes.update(sizes)
        finally:
            run_dbt(["run", "--select", *SELECTION], as_of=day)
    report.seconds = time.perf_counter() - started
    with connect() as con:
        record_stage(
            con,
            day,
            "campaign_replay",
            rows=sum(sum(s.values()) for s in report.sizes.values()),
            seconds=report.seconds,
            detail={
                "launched": {str(d): ids for d, ids in report.launched.items()},
                "skipped": report.skipped,
            },
        )
    for cid, why in report.skipped.items():
        log.warning("campaign %s not replayed: %s", cid, why)
    log.info("%s", report.summary())
    return report


def _launched_ids(con) -> set[str]:
    if not table_exists(con, ML_SCHEMA, AUDIENCE_TABLE):
        return set()
    rows = con.execute(f"SELECT DISTINCT campaign_id FROM {ML_SCHEMA}.{AUDIENCE_TABLE}").fetchall()
    return {r[0] for r in rows}


def point_in_time_clusters(con) -> pl.DataFrame:
    """``customer_id, cluster_name`` from the current marts' features (no model factors)."""
    from ml.serving.clusters import cluster_customers
    from ml.serving.config import SegmentConfig

    features = read_frame(
        con,
        "SELECT f.* FROM marts.customer_features AS f "
        "JOIN marts.dim_customers USING (customer_id) ORDER BY customer_id",
    )
    purchases = pl.DataFrame(
        schema={"customer_id": pl.String, "category": pl.String, "purchases": pl.Int64}
    )
    clusters, _ = cluster_customers(features, None, purchases, SegmentConfig())
    return clusters.select("customer_id", "cluster_name")


def _launch_as_of(
    day: date, campaigns: list[Campaign], config: CampaignConfig
) -> dict[str, dict[str, int]]:
    """The audiences of ``campaigns`` as the run of ``day`` would have built them.

    The marts must be as of ``day``. Rows already stored for ``day`` are kept.
    """
    with connect() as con:
        products = checked_products(con, campaigns)
        eligible = (
            load_eligible(con, day)
            .drop("cluster_name")
            .join(point_in_time_clusters(con), on="customer_id", how="left")
            .sort("customer_id")
        )
        stored = read_frame(
            con,
            f"SELECT * EXCLUDE (logical_date) FROM {ML_SCHEMA}.{AUDIENCE_TABLE} "
            "WHERE logical_date = ?",
            [day],
        ) if table_exists(con, ML_SCHEMA, AUDIENCE_TABLE) else None  # fmt: skip
        contacts = Counter(prior_contacts(con, day, config))
        if stored is not None:
            contacts.update(stored["customer_id"].to_list())
        unknown = {c.campaign_id: np.full(eligible.height, np.nan) for c in campaigns}
        selected, _ = select_audiences(campaigns, eligible, unknown, dict(contacts), config)
        frames, sizes = launch_rows(
            con, day, campaigns, products, eligible, selected, unknown, config
        )
        frame = pl.concat(([] if stored is None else [stored]) + frames, how="diagonal_relaxed")
        write_audiences(con, frame, day)
    log.info("replayed launch of %s: %s", day, sizes)
    return sizes
