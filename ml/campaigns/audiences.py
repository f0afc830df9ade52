"""Campaign audiences: who gets which campaign, in which group, with which message.

For the run of logical date ``D`` (data up to the end of ``D``; messages go out on
``D + 1``), every campaign due to launch (see :meth:`Campaign.launch_due`) and not
launched by an earlier run gets its audience, frozen from then on:

1. **eligible**: customers of ``marts.dim_customers`` (erased customers are gone past
   dbt staging) with ``marketing_opt_in``;
2. **target**: RFM segment names, behavioural cluster name, category (customers the model
   knows or whose top spend category it is), a rule over ``customer_features``, or
   ``review_sentiment`` (customers with a negative review in the last 30 days: service
   outreach); a promotional campaign (any other target) leaves those customers out
   (``CampaignConfig.exclude_negative_reviewers``);
3. **ranked** by the model's predicted affinity: ``u . mean(v)`` over the category's
   products for a category campaign, the customer's best category affinity otherwise;
   customers the model does not know come after, by frequency, spend and id;
4. **frequency cap**: campaigns launch in priority order (higher first, then earlier
   start, then id), each skipping customers already in ``frequency_cap`` audiences whose
   contact day is within ``cap_days - 1`` days of this one, so no 7-day window holds more
   than ``frequency_cap`` contacts, however runs and backfills interleave;
5. **max audience**: the first ``max_audience`` ranked customers;
6. **assignment**: treatment / control from the seeded hash of (campaign, customer)
   (:mod:`ml.campaigns.assignment`), after selection, so both groups come from the same
   selected population;
7. **products and message**: the customer's top recommendations (of the campaign's
   category, when it has one; bestsellers when they have none), and for treatment
   customers a message from the campaign's copy writer(s), through the guardrails
   (:mod:`ml.campaigns.messaging`; PII placeholders kept literally).

Output: ``ml.campaign_audiences``, one partition per launch date, kept for good (the
measurement needs the audience after the campaign ends). Re-running a date replaces its
partition; the assignment never changes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ml.campaigns.assignment import CONTROL, TREATMENT, assign_groups
from ml.campaigns.audience_inputs import (
    AUDIENCE_TABLE,
    known_segments,
    launched_before,
    load_bestsellers,
    load_eligible,
    load_products,
    load_recommendations,
    prior_contacts,
)
from ml.campaigns.definitions import (
    Campaign,
    CampaignConfig,
    validate_campaigns,
)
from ml.campaigns.featured import FeaturedProducts, featured_products
from ml.campaigns.messaging import (
    EXTRA_AUDIENCE_COLUMNS,
    CopyContext,
    campaign_copy,
)
from ml.campaigns.session import campaign_session
from ml.campaigns.targeting import campaign_affinity, predicted_affinity, select_audiences
from ml.dates import to_date
from ml.warehouse.tables import write_partition

if TYPE_CHECKING:
    import duckdb

    from ml.serving.model import ScoringModel

log = logging.getLogger(__name__)

AUDIENCE_COLUMNS = {
    "logical_date": "DATE",
    "campaign_id": "VARCHAR",
    "customer_id": "VARCHAR",
    # Published as "group" (a reserved word, so the ml table spells it out).
    "assignment_group": "VARCHAR",
    "rank": "INTEGER",
    "affinity": "DOUBLE",
    "segment": "VARCHAR",
    "cluster_name": "VARCHAR",
    "product_ids": "VARCHAR[]",
    "product_names": "VARCHAR[]",
    "message": "VARCHAR",
    "channel": "VARCHAR",
    "contact_date": "DATE",
    **EXTRA_AUDIENCE_COLUMNS,
}


@dataclass
class AudienceReport:
    """What one audience build did."""

    logical_date: date
    launched: list[str]
    rows: int
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    capped: dict[str, int] = field(default_factory=dict)
    model_version: str | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        if not self.launched:
            return f"campaign audiences for {self.logical_date}: no campaign launches"
        parts = [
            f"{cid} {s.get(TREATMENT, 0)} treatment + {s.get(CONTROL, 0)} control"
            + (f" ({self.capped[cid]} capped)" if self.capped.get(cid) else "")
            for cid, s in self.sizes.items()
        ]
        return (
            f"campaign audiences for {self.logical_date}: {'; '.join(parts)} "
            f"({self.rows} rows in {self.seconds:.1f}s)"
        )


def audience_rows(
    campaign: Campaign,
    members: pl.DataFrame,
    affinity: np.ndarray,
    products: FeaturedProducts,
    day: date,
    config: CampaignConfig,
    copy: CopyContext,
) -> pl.DataFrame:
    """The audience rows of one campaign (columns of ``ml.campaign_audiences``)."""
    ids = members["customer_id"].to_list()
    groups = assign_groups(campaign.campaign_id, ids, campaign.control_share, config.salt)
    written = campaign_copy(campaign, members, list(groups), products, copy, config.salt)
    messages = written.messages
    lists = products.product_lists()
    return pl.DataFrame(
        {
            "campaign_id": [campaign.campaign_id] * len(ids),
            "customer_id": ids,
            "assignment_group": list(groups),
            "rank": np.arange(1, len(ids) + 1, dtype=np.int32),
            "affinity": pl.Series(affinity, dtype=pl.Float64).fill_nan(None),
            "segment": members["segment"],
            "cluster_name": members["cluster_name"],
            "product_ids": lists["product_ids"],
            "product_names": lists["product_names"],
            "message": messages,
            "channel": [campaign.channel] * len(ids),
            "contact_date": [day + timedelta(days=1)] * len(ids),
            "subject": written.subjects,
            "copy_writer": written.arms,
        },
        schema_overrides={
            "message": pl.String,
            "subject": pl.String,
            "copy_writer": pl.String,
            "segment": pl.String,
            "cluster_name": pl.String,
            "product_ids": pl.List(pl.String),
            "product_names": pl.List(pl.String),
        },
    )


def _empty_audiences() -> pl.DataFrame:
    types = {
        "VARCHAR": pl.String,
        "INTEGER": pl.Int32,
        "DOUBLE": pl.Float64,
        "DATE": pl.Date,
        "VARCHAR[]": pl.List(pl.String),
    }
    return pl.DataFrame(
        schema={k: types[v] for k, v in AUDIENCE_COLUMNS.items() if k != "logical_date"}
    )


def build_audiences(
    logical_date: date | datetime | str,
    *,
    config: CampaignConfig | None = None,
    model: ScoringModel | None = None,
) -> AudienceReport:
    """Build and store the audiences of the campaigns launching after ``logical_date``.

    Idempotent: re-running a date replaces its partition of ``ml.campaign_audiences``;
    audiences built by earlier dates stay frozen.

    Parameters
    ----------
    logical_date : date, datetime or str
        The run's logical date; the marts must be built as of it.
    config : CampaignConfig, optional
    model : ScoringModel, optional
        Source of the predicted affinity (default: the version that was MLflow champion
        as of ``logical_date``, as scoring picks it; without one customers are ranked by
        frequency and spend).

    Returns
    -------
    AudienceReport

    Raises
    ------
    CampaignError
        A launching campaign is invalid (the message names each one and what to fix).
    """
    config = config or CampaignConfig()
    started = time.perf_counter()
    day = to_date(logical_date)
    with campaign_session() as (con, campaigns):
        earlier = launched_before(con, day)
        due = [c for c in campaigns if c.launch_due(day) and c.campaign_id not in earlier]
        frame, sizes, capped, version = _empty_audiences(), {}, {}, None
        if due:
            products = checked_products(con, due)
            frame, sizes, capped, version = _launch(con, day, due, products, config, model)
        rows = write_audiences(con, frame, day)
        seconds = time.perf_counter() - started
        report = AudienceReport(
            day, [c.campaign_id for c in due], rows, sizes, capped, version, seconds
        )
    log.info("%s", report.summary())
    return report


def _launch(
    con: duckdb.DuckDBPyConnection,
    day: date,
    due: list[Campaign],
    products: pl.DataFrame,
    config: CampaignConfig,
    model: ScoringModel | None,
) -> tuple[pl.DataFrame, dict, dict, str | None]:
    eligible = load_eligible(con, day)
    if model is None:
        model = _champion_or_none(day)
    categories, affinity = predicted_affinity(
        model, eligible["customer_id"].to_numpy().astype(str), products
    )
    affinity_of = {c.campaign_id: campaign_affinity(c, categories, affinity) for c in due}
    selected, capped = select_audiences(
        due, eligible, affinity_of, prior_contacts(con, day, config), config
    )
    frames, sizes = launch_rows(con, day, due, products, eligible, selected, affinity_of, config)
    frame = pl.concat(frames) if frames else _empty_audiences()
    return frame, sizes, capped, model.version if model is not None else None


def write_audiences(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, day: date) -> int:
    """Replace ``day``'s rows of ``ml.campaign_audiences`` with ``frame``; return its rows.

    Every date is kept: frozen audiences are measured weeks later.
    """
    return write_partition(
        con,
        AUDIENCE_TABLE,
        frame,
        day,
        columns=AUDIENCE_COLUMNS,
        order_by="campaign_id, rank",
        keep_dates=None,
    )


def checked_products(con: duckdb.DuckDBPyConnection, campaigns: list[Campaign]) -> pl.DataFrame:
    """The catalogue, once ``campaigns`` are checked against its categories and the segments.

    Raises
    ------
    CampaignError
        A campaign is invalid (the message names each one and what to fix).
    """
    products = load_products(con)
    validate_campaigns(
        campaigns,
        known_segments=known_segments(con),
        known_categories=set(products["category"].drop_nulls().to_list()),
    )
    return products


def launch_rows(
    con: duckdb.DuckDBPyConnection,
    day: date,
    campaigns: list[Campaign],
    products: pl.DataFrame,
    eligible: pl.DataFrame,
    selected: dict[str, np.ndarray],
    affinity_of: dict[str, np.ndarray],
    config: CampaignConfig,
) -> tuple[list[pl.DataFrame], dict[str, dict[str, int]]]:
    """The audience rows of each campaign launching on ``day``, by campaign id, and the
    size of each of its groups.

    ``selected`` holds each campaign's positions in ``eligible`` (its audience, in rank
    order) and ``affinity_of`` each campaign's affinity of every eligible customer.
    """
    members = sorted({c for p in selected.values() for c in eligible["customer_id"][p]})
    recommendations = load_recommendations(
        con,
        day,
        products,
        members,
        featured=config.featured_products,
        categories={c.category for c in campaigns if c.category is not None},
    )
    bestsellers = load_bestsellers(con, products)
    copy = CopyContext.for_launch(con, products["product_name"].drop_nulls().to_list(), day)
    frames, sizes = [], {}
    for campaign in sorted(campaigns, key=lambda c: c.campaign_id):
        positions = selected[campaign.campaign_id]
        audience = eligible[positions]
        featured = featured_products(
            campaign,
            audience["customer_id"].to_list(),
            recommendations,
            bestsellers,
            config.featured_products,
        )
        rows = audience_rows(
            campaign,
            audience,
            affinity_of[campaign.campaign_id][positions],
            featured,
            day,
            config,
            copy,
        )
        frames.append(rows)
        sizes[campaign.campaign_id] = dict(Counter(rows["assignment_group"].to_list()))
    return frames, sizes


def _champion_or_none(day: date) -> ScoringModel | None:
    """The champion as of ``day``'s run, as scoring picks it (a backfill never ranks with a
    model trained on later data); ``None`` when no version was champion by then."""
    from ml.serving.model import load_champion_of_day

    try:
        return load_champion_of_day(day)
    except LookupError as error:
        log.warning("no champion model (%s): audiences are ranked by frequency and spend", error)
        return None
