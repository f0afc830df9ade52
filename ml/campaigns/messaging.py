"""Campaign messages from the copy writers: the one place audience building calls.

For a launching campaign, every treatment customer gets a :class:`CopyBrief` (campaign
goal and offer, their RFM segment and cluster, their featured products with reasons and
praised aspects, the channel's limits) and a message from the campaign's writer, through
the guardrails (:mod:`ml.campaigns.copy`). A campaign with two writers (``copy_writers =
'builtin|llm'``) is an A/B of copy: each audience member, control included, gets an arm
from a seeded hash of (campaign, customer), independent of the treatment/control hash,
so each arm's treatment and control are comparable and ``campaign_insights`` measures
the lift per arm. ``copy_writer`` records the assigned arm (intent to treat: a message
that fell back to the built-in writer still counts for its arm; MLflow counts the
fallbacks).

Audience columns added here (appended to ``ml.campaign_audiences``, older tables are
migrated in place so frozen audiences are never dropped): ``subject`` (e-mail subject,
NULL otherwise) and ``copy_writer``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from ml.campaigns.assignment import TREATMENT, assignment_draw, assignment_draws
from ml.campaigns.copy import (
    BuiltinWriter,
    CopyBrief,
    CopyCache,
    CopyConfig,
    CopyReport,
    CopyRunner,
    Guardrails,
    LLMWriter,
    TemplateWriter,
    brief_products,
    infer_goal,
    limits_for,
)
from ml.campaigns.copy.cache import CACHE_FILE
from ml.campaigns.definitions import Campaign
from ml.campaigns.messages import message_context
from ml.warehouse.tables import table_exists

log = logging.getLogger(__name__)

AUDIENCE_TABLE = "campaign_audiences"
EXTRA_AUDIENCE_COLUMNS = {"subject": "VARCHAR", "copy_writer": "VARCHAR"}
# Praised aspects per product: the review mart (what the published product_review_insights
# shows), absent before the review-insight stage and dbt features have run.
REVIEW_INSIGHTS = ("marts", "product_review_insights")


def ensure_audience_columns(con) -> None:
    """Add the copy columns to an ``ml.campaign_audiences`` written before them."""
    if not table_exists(con, "ml", AUDIENCE_TABLE):
        return
    for name, dtype in EXTRA_AUDIENCE_COLUMNS.items():
        con.execute(f"ALTER TABLE ml.{AUDIENCE_TABLE} ADD COLUMN IF NOT EXISTS {name} {dtype}")


def praised_aspects(con) -> dict[str, list[str]]:
    """Product id -> its praised aspects, most mentioned first ("soft", "true to size").

    Read from ``marts.product_review_insights`` (built as of the run's date), skipping
    products whose recent reviews turn negative: copy does not praise those. Without the
    mart (review insight not built yet): ``{}``.
    """
    schema, table = REVIEW_INSIGHTS
    if not table_exists(con, schema, table):
        return {}
    rows = con.execute(
        f"SELECT product_id, list_transform(praised_aspects, lambda a: a.aspect) "
        f"FROM {schema}.{table} WHERE len(praised_aspects) > 0 AND NOT is_turning_negative"
    ).fetchall()
    return {str(pid): [str(a) for a in aspects] for pid, aspects in rows}


def writer_arms(
    campaign_id: str, customer_ids: Sequence[str], arms: Sequence[str], seed: int, salt: str
) -> list[str]:
    """Each customer's copy arm: the only writer, or one of two by a seeded hash."""
    if len(arms) == 1:
        return [arms[0]] * len(customer_ids)
    draws = assignment_draws(f"{campaign_id}/copy-arm/{seed}", customer_ids, salt)
    return [arms[0] if d < 0.5 else arms[1] for d in draws]


def variant_of(campaign_id: str, customer_id: str, seed: int, salt: str) -> int:
    """The built-in writer's phrasing seed of one customer (stable across runs)."""
    return int(assignment_draw(f"{campaign_id}/copy/{seed}", customer_id, salt) * 2**31)


@dataclass
class CopyContext:
    """What one launch run shares across its campaigns: checks, cache, aspects, config."""

    guardrails: Guardrails
    config: CopyConfig
    aspects: Mapping[str, Sequence[str]] = field(default_factory=dict)
    cache: CopyCache | None = None
    logical_date: date | None = None

    @classmethod
    def for_launch(
        cls,
        con,
        catalogue_names: Sequence[str],
        logical_date: date,
        config: CopyConfig | None = None,
    ) -> CopyContext:
        from ml.config import paths

        config = config or CopyConfig()
        cache = CopyCache(paths().ensure().home / CACHE_FILE) if config.use_cache else None
        return cls(
            Guardrails(catalogue_names, config.banned_phrases),
            config,
            praised_aspects(con),
            cache,
            logical_date,
        )


@dataclass
class CampaignCopy:
    """One campaign's messages (aligned with its audience rows) and its arms' reports."""

    messages: list[str | None]
    subjects: list[str | None]
    arms: list[str]
    reports: dict[str, CopyReport]


def _writer(name: str, campaign: Campaign, config: CopyConfig):
    if name == "builtin":
        return BuiltinWriter(config.currency)
    if name == "template":
        return TemplateWriter(campaign.message_template, campaign.campaign_id, campaign.name)
    if name == "llm":
        if config.llm is None:
            log.warning(
                "%s asks for the llm writer but AFFINITY_LLM_BASE_URL is not set: its "
                "messages fall back to the built-in writer",
                campaign.label,
            )
            return None
        return LLMWriter(config.llm)
    raise ValueError(f"{campaign.label}: unknown copy writer {name!r}")


def campaign_copy(
    campaign: Campaign,
    members: pl.DataFrame,
    groups: Sequence[str],
    products: Mapping[str, list[dict[str, Any]]],
    context: CopyContext,
    salt: str,
) -> CampaignCopy:
    """Messages for the treatment members of one campaign (``None`` for control).

    Parameters
    ----------
    campaign : Campaign
    members : polars.DataFrame
        The audience, in row order: ``customer_id``, ``segment``, ``cluster_name`` (and
        ``top_category`` when known).
    groups : sequence of str
        Treatment/control of each member.
    products : mapping
        Customer id -> featured products (``product_id, name, reason, category, price``).
    context : CopyContext
    salt : str
        Salt of the campaign hashes.
    """
    config = context.config
    ids = members["customer_id"].to_list()
    arms = writer_arms(campaign.campaign_id, ids, campaign.writers, config.seed, salt)
    goal = infer_goal(
        campaign.goal,
        name=campaign.name,
        target_type=campaign.target_type,
        target_value=campaign.target_value,
    )
    limits = limits_for(campaign.channel)
    segments = members["segment"].to_list()
    clusters = members["cluster_name"].to_list()
    tops = (
        members["top_category"].to_list()
        if "top_category" in members.columns
        else [None] * len(ids)
    )
    messages: list[str | None] = [None] * len(ids)
    subjects: list[str | None] = [None] * len(ids)
    reports: dict[str, CopyReport] = {}
    fallback = BuiltinWriter(config.currency)
    for arm in campaign.writers:
        rows = [i for i, g in enumerate(groups) if g == TREATMENT and arms[i] == arm]
        runner = CopyRunner(
            _writer(arm, campaign, config),
            context.guardrails,
            fallback,
            cache=context.cache,
            writer_name=arm,
            samples=config.samples,
            max_consecutive_failures=config.llm.max_consecutive_failures if config.llm else 5,
        )

        def brief(i: int, arm: str = arm) -> CopyBrief:
            extra = {}
            if arm == "template":
                extra["template_context"] = message_context(
                    campaign_name=campaign.name,
                    channel=campaign.channel,
                    category=campaign.category,
                    segment=segments[i],
                    cluster=clusters[i],
                    top_category=tops[i],
                    products=products[ids[i]],
                )
            return CopyBrief(
                campaign_name=campaign.name,
                goal=goal,
                channel=campaign.channel,
                limits=limits,
                products=brief_products(products[ids[i]], context.aspects),
                offer=campaign.offer,
                discount_percent=campaign.discount_percent,
                segment=segments[i],
                cluster=clusters[i],
                category=campaign.category,
                variant=variant_of(campaign.campaign_id, ids[i], config.seed, salt),
                extra=extra,
            )

        # Briefs are made one at a time as the runner writes: held all at once, an arm's
        # briefs took gigabytes at 100M events (375k members with their products).
        outcomes = runner.write_all(brief(i) for i in rows)
        for i, outcome in zip(rows, outcomes, strict=True):
            messages[i], subjects[i] = outcome.draft.body, outcome.draft.subject
        del outcomes
        reports[arm] = runner.report
        log.info(
            "%s copy (%s): %d messages, first-draft pass rate %s, %d regenerated, %d fallbacks %s",
            campaign.campaign_id,
            arm,
            runner.report.messages,
            f"{runner.report.guardrail_pass_rate:.3f}" if runner.report.messages else "n/a",
            runner.report.regenerated,
            runner.report.fallbacks,
            dict(runner.report.fallback_reasons) or "",
        )
        if config.log_to_mlflow and runner.report.messages:
            _log(campaign, runner.report, context)
    return CampaignCopy(messages, subjects, arms, reports)


def _log(campaign: Campaign, report: CopyReport, context: CopyContext) -> None:
    from ml.campaigns.copy.tracking import log_copy_run

    try:
        log_copy_run(
            report,
            experiment=context.config.experiment,
            campaign_id=campaign.campaign_id,
            campaign_name=campaign.name,
            channel=campaign.channel,
            logical_date=context.logical_date or date.today(),
            arms=campaign.writers,
        )
    except Exception as error:  # the copy is written either way; the record is a report
        log.warning("could not log %s's copy run to MLflow: %s", campaign.campaign_id, error)
