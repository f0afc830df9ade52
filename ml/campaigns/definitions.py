"""Campaign definitions: where they come from, their settings, and their validation.

Campaigns come from two places, unioned by :func:`load_campaigns`:

* the ``campaigns`` input entity (``raw.campaigns``, cleaned by the dbt staging view
  ``staging.stg_raw__campaigns``), e.g. exported by the marketing tool;
* the dbt seed ``seeds.campaigns_manual`` (``dbt_project/seeds/campaigns_manual.csv``) for
  hand-written ones.

A campaign id must be unique across both. Targets (``target_type`` / ``target_value``):

``segment``   RFM segment names of ``seeds.rfm_segment_rules``, ``|``-separated;
``cluster``   a behavioural cluster name of ``ml.customer_clusters``;
``category``  a product category: customers ranked by predicted affinity for it;
``rule``      a SQL-free rule over ``customer_features`` (see :mod:`ml.campaigns.rules`);
``review_sentiment``  ``negative``: customers who wrote a review the sentiment model reads
              as negative in the last 30 days (``customer_features.negative_reviews_30d``),
              the audience of service outreach (copy goal ``service``: an apology and
              an offer of help, no product pushed).

Every other campaign is promotional: by default it leaves those unhappy customers out
(``CampaignConfig.exclude_negative_reviewers``).

Timing: the audience of a campaign is built once, by the run of the day before it starts
(or, if that run was missed, by the first run while it is live) and frozen; messages go out
the day after that run's logical date. The attribution window runs from the later of the
campaign start and that contact day to ``ends_at`` plus ``attribution_days``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import duckdb
import polars as pl

from ml.campaigns.assignment import DEFAULT_SALT
from ml.campaigns.messages import TemplateError, validate_template
from ml.campaigns.rules import RuleError, parse_rule
from ml.ingest.contract import CAMPAIGN_TARGET_TYPES
from ml.warehouse.tables import table_exists

log = logging.getLogger(__name__)


def category_key(category: str | pl.Expr | pl.Series) -> str | pl.Expr | pl.Series:
    """A campaign category as it is matched against the catalogue's: without case.

    ``category`` is a string, or a polars expression or series of strings.
    """
    if isinstance(category, pl.Expr | pl.Series):
        return category.str.to_lowercase()
    return category.lower()


TARGET_TYPES = CAMPAIGN_TARGET_TYPES
# target_value of a review_sentiment campaign: who it reaches.
REVIEW_SENTIMENT_TARGETS = ("negative",)
RAW_SOURCE = "raw.campaigns"
SEED_SOURCE = "seeds.campaigns_manual"
_COLUMNS = (
    "campaign_id, {name} AS campaign_name, channel, target_type, target_value, starts_at, "
    "ends_at, max_audience, control_share, priority, message_template, goal, offer, "
    "discount_percent, copy_writers"
)


class CampaignError(ValueError):
    """One or more campaigns cannot be run as defined; the message names each of them."""


@dataclass(frozen=True)
class CampaignConfig:
    """Settings of the campaign step.

    Parameters
    ----------
    frequency_cap : int
        A customer is in at most this many campaign audiences in any ``cap_days`` days
        (treatment and control both count: the hold-out must stay comparable).
    cap_days : int
        Length of the frequency-cap window.
    featured_products : int
        Recommended products carried by each audience row (and offered to templates).
    attribution_days : int
        Days after ``ends_at`` during which purchases still count for the campaign.
    min_group_size : int
        A result with fewer customers in treatment or control is flagged too small.
    min_expected_count : int
        ... as is one where a group's expected conversions or non-conversions (at the
        pooled rate) fall below this (the normal approximation of the z-test fails).
    alpha : float
        1 - confidence level of the interval, and the significance level.
    salt : str
        Salt of the treatment/control hash (changing it reshuffles every campaign).
    pre_period_days : int
        Length of the pre-campaign period whose revenue adjusts the revenue lift (CUPED).
    srm_alpha : float
        A sample-ratio-mismatch p-value below this withholds the verdict.
    power : float
        Power of the minimum detectable effects.
    exclude_negative_reviewers : bool
        Leave customers with a recent negative review
        (``customer_features.negative_reviews_30d > 0``) out of every promotional
        campaign (all but ``review_sentiment`` targets): a discount mail the week someone
        complained reads as not listening. On by default.
    """

    frequency_cap: int = 2
    cap_days: int = 7
    featured_products: int = 3
    attribution_days: int = 0
    min_group_size: int = 100
    min_expected_count: int = 10
    alpha: float = 0.05
    salt: str = DEFAULT_SALT
    pre_period_days: int = 28
    srm_alpha: float = 0.001
    power: float = 0.8
    exclude_negative_reviewers: bool = True

    def __post_init__(self) -> None:
        if self.frequency_cap < 1 or self.cap_days < 1:
            raise ValueError("frequency_cap and cap_days must be >= 1")
        if self.featured_products < 1:
            raise ValueError("featured_products must be >= 1")
        if self.attribution_days < 0:
            raise ValueError("attribution_days must be >= 0")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be within (0, 1)")
        if not (0 < self.srm_alpha < 1 and 0 < self.power < 1):
            raise ValueError("srm_alpha and power must be within (0, 1)")
        if self.pre_period_days < 0:
            raise ValueError("pre_period_days must be >= 0")


@dataclass(frozen=True)
class Campaign:
    """One campaign definition (naive-UTC timestamps, as in the input contract)."""

    campaign_id: str
    name: str
    channel: str
    target_type: str
    target_value: str
    starts_at: datetime
    ends_at: datetime
    max_audience: int
    control_share: float
    priority: int = 0
    message_template: str | None = None
    source: str = RAW_SOURCE
    goal: str | None = None
    offer: str | None = None
    discount_percent: float | None = None
    copy_writers: str | None = None

    @property
    def writers(self) -> tuple[str, ...]:
        """The copy writer(s): one, or two arms of an A/B (see :mod:`ml.campaigns.copy`).

        Default: ``template`` when the campaign has a message template, else ``builtin``.
        """
        if self.copy_writers and self.copy_writers.strip():
            return tuple(w.strip().lower() for w in self.copy_writers.split("|") if w.strip())
        has_template = bool(self.message_template and str(self.message_template).strip())
        return ("template",) if has_template else ("builtin",)

    @property
    def category(self) -> str | None:
        """The product category of a category campaign (else ``None``)."""
        return self.target_value.strip() if self.target_type == "category" else None

    @property
    def segments(self) -> list[str]:
        """The RFM segment names of a segment campaign."""
        if self.target_type != "segment":
            return []
        return [s.strip() for s in self.target_value.split("|") if s.strip()]

    @property
    def is_promotional(self) -> bool:
        """Everything but service outreach to unhappy reviewers (``review_sentiment``)."""
        return self.target_type != "review_sentiment"

    @property
    def label(self) -> str:
        return f"campaign {self.campaign_id} ({self.name!r}, {self.source})"

    def launch_due(self, logical_date: date) -> bool:
        """Whether the run of ``logical_date`` launches it (if no earlier run did).

        Messages go out on the contact day, the day after the logical date. A campaign
        launches when it starts by the end of the contact day and is still running at its
        start (a campaign whose day-before run was missed launches late).
        """
        contact = contact_start(logical_date)
        return self.starts_at < contact + timedelta(days=1) and self.ends_at > contact

    def window(self, audience_date: date, attribution_days: int = 0) -> tuple[datetime, datetime]:
        """Attribution window ``[start, end)`` of the audience built on ``audience_date``."""
        start = max(self.starts_at, contact_start(audience_date))
        return start, self.ends_at + timedelta(days=attribution_days)

    def sort_key(self) -> tuple:
        """Launch order: higher priority first, then earlier start, then id (deterministic)."""
        return (-self.priority, self.starts_at, self.campaign_id)


def contact_start(logical_date: date) -> datetime:
    """Midnight starting the contact day (the day after ``logical_date``)."""
    return datetime.combine(logical_date + timedelta(days=1), time.min)


def load_campaigns(con: duckdb.DuckDBPyConnection) -> list[Campaign]:
    """Read every campaign from the input entity and the hand-written seed.

    Raises
    ------
    CampaignError
        A campaign id is defined twice.
    """
    parts = []
    if table_exists(con, "staging", "stg_raw__campaigns"):
        parts.append((RAW_SOURCE, "staging.stg_raw__campaigns", "campaign_name"))
    else:
        log.warning("staging.stg_raw__campaigns is missing (dbt not run yet): no input campaigns")
    if table_exists(con, "seeds", "campaigns_manual"):
        parts.append((SEED_SOURCE, "seeds.campaigns_manual", "name"))
    campaigns: list[Campaign] = []
    for source, relation, name_column in parts:
        rows = con.execute(
            f"SELECT {_COLUMNS.format(name=name_column)} FROM {relation} "
            "WHERE campaign_id IS NOT NULL ORDER BY campaign_id"
        ).fetchall()
        for row in rows:
            (cid, name, channel, target_type, target_value, starts, ends, cap, share, prio, tpl) = (
                row[:11]
            )
            goal, offer, discount, writers = row[11:]
            campaigns.append(
                Campaign(
                    campaign_id=str(cid).strip(),
                    name=str(name or cid).strip(),
                    channel=str(channel or "").strip().lower(),
                    target_type=str(target_type or "").strip().lower(),
                    target_value=str(target_value or "").strip(),
                    starts_at=_naive(starts),
                    ends_at=_naive(ends),
                    max_audience=int(cap) if cap is not None else 0,
                    control_share=float(share) if share is not None else -1.0,
                    priority=int(prio or 0),
                    message_template=tpl,
                    source=source,
                    goal=str(goal).strip().lower() if goal else None,
                    offer=str(offer).strip() if offer else None,
                    discount_percent=float(discount) if discount is not None else None,
                    copy_writers=str(writers).strip().lower() if writers else None,
                )
            )
    seen: dict[str, Campaign] = {}
    duplicates = []
    for campaign in campaigns:
        if campaign.campaign_id in seen:
            duplicates.append(
                f"campaign id {campaign.campaign_id} is defined in both "
                f"{seen[campaign.campaign_id].source} and {campaign.source}: rename one"
            )
        seen[campaign.campaign_id] = campaign
    if duplicates:
        raise CampaignError("; ".join(duplicates))
    return sorted(campaigns, key=lambda c: c.campaign_id)


def _naive(value) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime.combine(value, time.min)
    return datetime.fromisoformat(str(value)).replace(tzinfo=None)


def campaign_problems(
    campaign: Campaign,
    *,
    known_segments: set[str] | None = None,
    known_categories: set[str] | None = None,
) -> list[str]:
    """Everything wrong with one campaign, as sentences naming it (empty: valid)."""
    label = campaign.label
    problems = []
    if campaign.target_type not in TARGET_TYPES:
        problems.append(
            f"{label}: target_type {campaign.target_type!r} is not one of {', '.join(TARGET_TYPES)}"
        )
    elif not campaign.target_value:
        problems.append(f"{label}: target_value is empty")
    elif campaign.target_type == "segment" and known_segments is not None:
        known = {s.lower() for s in known_segments}
        unknown = [s for s in campaign.segments if s.lower() not in known]
        if unknown:
            problems.append(
                f"{label}: unknown RFM segment(s) {', '.join(map(repr, unknown))}; known: "
                f"{', '.join(sorted(known_segments))} (seeds/rfm_segment_rules.csv)"
            )
    elif campaign.target_type == "category" and known_categories is not None:
        if campaign.category.lower() not in {c.lower() for c in known_categories}:
            problems.append(
                f"{label}: unknown product category {campaign.category!r}; known: "
                f"{', '.join(sorted(known_categories))}"
            )
    elif campaign.target_type == "rule":
        try:
            parse_rule(campaign.target_value)
        except RuleError as error:
            problems.append(f"{label}: rule {campaign.target_value!r} is invalid: {error}")
    elif (
        campaign.target_type == "review_sentiment"
        and campaign.target_value.strip().lower() not in REVIEW_SENTIMENT_TARGETS
    ):
        problems.append(
            f"{label}: review_sentiment target_value {campaign.target_value!r} is not one "
            f"of {', '.join(REVIEW_SENTIMENT_TARGETS)} (negative: customers with a "
            "negative review in the last 30 days)"
        )
    if not 0.0 <= campaign.control_share <= 1.0:
        problems.append(f"{label}: control_share {campaign.control_share} is not within [0, 1]")
    if campaign.max_audience < 0:
        problems.append(f"{label}: max_audience {campaign.max_audience} is negative")
    if campaign.ends_at <= campaign.starts_at:
        problems.append(f"{label}: ends_at {campaign.ends_at} is not after starts_at")
    if campaign.message_template or "template" in campaign.writers:
        try:
            validate_template(campaign.message_template, campaign.campaign_id, campaign.name)
        except TemplateError as error:
            problems.append(f"{error} [{campaign.source}]")
    problems += copy_problems(campaign)
    return problems


def copy_problems(campaign: Campaign) -> list[str]:
    """What is wrong with a campaign's copy settings (writers, goal, discount)."""
    from ml.campaigns.copy.brief import GOALS
    from ml.campaigns.copy.settings import WRITER_NAMES

    label, problems = campaign.label, []
    writers = campaign.writers
    unknown = [w for w in writers if w not in WRITER_NAMES]
    if unknown or not 1 <= len(writers) <= 2 or len(set(writers)) != len(writers):
        problems.append(
            f"{label}: copy_writers {campaign.copy_writers!r} must be one writer or two "
            f"different ones separated by |, each of {', '.join(WRITER_NAMES)}"
        )
    if campaign.goal and campaign.goal not in GOALS:
        problems.append(
            f"{label}: goal {campaign.goal!r} is not one of {', '.join(GOALS)} "
            "(leave it empty to infer it from the target)"
        )
    if campaign.discount_percent is not None and not 0 < campaign.discount_percent < 100:
        problems.append(
            f"{label}: discount_percent {campaign.discount_percent} is not within (0, 100)"
        )
    return problems


def validate_campaigns(
    campaigns: list[Campaign],
    *,
    known_segments: set[str] | None = None,
    known_categories: set[str] | None = None,
) -> None:
    """Raise one :class:`CampaignError` listing every problem of ``campaigns``.

    Raises
    ------
    CampaignError
        Naming each invalid campaign and what to fix.
    """
    problems = [
        p
        for c in campaigns
        for p in campaign_problems(
            c, known_segments=known_segments, known_categories=known_categories
        )
    ]
    if problems:
        raise CampaignError(
            f"{len(problems)} campaign problem(s); fix the definitions (input file or "
            "dbt_project/seeds/campaigns_manual.csv) and re-run:\n  " + "\n  ".join(problems)
        )
