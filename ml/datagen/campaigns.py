"""A handful of marketing campaigns around the end of the period.

With ``campaign_uplift`` the shop also gets two ground-truth campaigns (a known uplift
and a placebo, see :mod:`ml.datagen.uplift`), appended after these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ml.datagen.catalog import Catalog
from ml.datagen.common import DAY, Period
from ml.datagen.vocab import CATEGORIES

CAMPAIGN_HOUR = 9  # campaigns start at 09:00 UTC


@dataclass(frozen=True)
class CampaignSpec:
    """One campaign, timed relative to the end of the period.

    ``target_value`` may contain ``{category}`` / ``{staple_category}`` (filled with the
    shop's busiest category / busiest consumable category); ``message_template`` keeps
    Jinja placeholders such as ``{{first_name}}`` for the campaign step to render.
    """

    name: str
    channel: str
    target_type: str
    target_value: str
    starts_days_before_end: int
    duration_days: int
    audience_share: float
    control_share: float
    priority: int
    message_template: str
    goal: str | None = None
    offer: str | None = None
    discount_percent: float | None = None
    copy_writers: str | None = None


CAMPAIGNS: tuple[CampaignSpec, ...] = (
    CampaignSpec(
        "Win back: we miss you",
        "email",
        "segment",
        "At Risk|Cannot Lose Them",
        28,
        14,
        0.15,
        0.2,
        1,
        "Hi {{first_name}}, it has been a while! Because you liked {{top_product_name}}, "
        "here is 15% off your next order.",
        goal="win_back",
        offer="15% off your next order",
        discount_percent=15.0,
        copy_writers="builtin",
    ),
    CampaignSpec(
        "Champions early access",
        "push",
        "segment",
        "Champions|Loyal Customers",
        10,
        21,
        0.10,
        0.1,
        2,
        "Hi {{first_name}}, as one of our best customers you get early access to new "
        "arrivals picked for you, starting with {{top_product_name}}.",
        goal="loyalty",
        offer="early access to new arrivals",
        copy_writers="builtin",
    ),
    CampaignSpec(
        "{category} favourites",
        "email",
        "category",
        "{category}",
        7,
        14,
        0.20,
        0.25,
        3,
        "Hi {{first_name}}, fresh picks in {category} for you, like {{top_product_name}}.",
        goal="cross_sell",
        # An A/B of copy: generated messages against the campaign's own template.
        copy_writers="builtin|template",
    ),
    CampaignSpec(
        "Second order nudge",
        "sms",
        "rule",
        "recency_days<=30 and frequency>=2",
        3,
        14,
        0.10,
        0.3,
        4,
        "Hi {{first_name}}, thanks for shopping with us again! {{top_product_name}} is "
        "waiting for you.",
        goal="recommend",
        copy_writers="builtin",
    ),
    CampaignSpec(
        "Restock your {staple_category}",
        "email",
        "category",
        "{staple_category}",
        -1,
        14,
        0.15,
        0.5,
        5,
        "Hi {{first_name}}, running low? Restock {{top_product_name}} in one tap.",
        goal="replenish",
        copy_writers="builtin",
    ),
    CampaignSpec(
        "Big spenders thank you",
        "push",
        "rule",
        "frequency>=3 and monetary>=150",
        20,
        10,
        0.05,
        0.2,
        6,
        "Hi {{first_name}}, thank you for being a loyal customer. We think you will love "
        "{{top_product_name}}.",
        goal="thank_you",
        copy_writers="builtin",
    ),
)


def target_categories(catalog: Catalog) -> dict[str, str]:
    """The busiest category and the busiest consumable category (or the runner-up)."""
    traffic = catalog.category_traffic
    busiest = int(np.argmax(traffic))
    consumable = np.array([c.consumable for c in CATEGORIES])
    staple_traffic = np.where(consumable, traffic, 0.0)
    if staple_traffic.max() == 0:  # tiny catalog without consumables
        staple_traffic = np.where(np.arange(len(traffic)) == busiest, 0.0, traffic)
    staple = int(np.argmax(staple_traffic)) if staple_traffic.max() > 0 else busiest
    return {"category": CATEGORIES[busiest].name, "staple_category": CATEGORIES[staple].name}


def fill(text: str, names: dict[str, str]) -> str:
    """Replace ``{category}``-style names; Jinja ``{{first_name}}`` placeholders stay."""
    for key, value in names.items():
        text = text.replace("{" + key + "}", value)
    return text


def campaigns_frame(
    n_customers: int,
    catalog: Catalog,
    period: Period,
    ground_truth: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The ``campaigns`` entity (contract columns and order).

    ``ground_truth`` rows (:func:`ml.datagen.uplift.ground_truth_frame`) are appended.
    """
    frame = _generated_campaigns(n_customers, catalog, period)
    if ground_truth is not None and ground_truth.height:
        frame = pl.concat([frame, ground_truth.select(frame.columns).cast(frame.schema)])
    return frame


def _generated_campaigns(n_customers: int, catalog: Catalog, period: Period) -> pl.DataFrame:
    names = target_categories(catalog)
    starts = [period.end - s.starts_days_before_end * DAY + CAMPAIGN_HOUR * 3600 for s in CAMPAIGNS]
    return pl.DataFrame(
        {
            "campaign_id": [f"CMP{i:03d}" for i in range(1, len(CAMPAIGNS) + 1)],
            "name": [fill(s.name, names) for s in CAMPAIGNS],
            "channel": [s.channel for s in CAMPAIGNS],
            "target_type": [s.target_type for s in CAMPAIGNS],
            "target_value": [fill(s.target_value, names) for s in CAMPAIGNS],
            "starts_at": np.array(starts, dtype="datetime64[s]").astype("datetime64[us]"),
            "ends_at": np.array(
                [start + s.duration_days * DAY for start, s in zip(starts, CAMPAIGNS, strict=True)],
                dtype="datetime64[s]",
            ).astype("datetime64[us]"),
            "max_audience": [max(10, round(n_customers * s.audience_share)) for s in CAMPAIGNS],
            "control_share": [s.control_share for s in CAMPAIGNS],
            "priority": [s.priority for s in CAMPAIGNS],
            "message_template": [fill(s.message_template, names) for s in CAMPAIGNS],
            "goal": [s.goal for s in CAMPAIGNS],
            "offer": [s.offer for s in CAMPAIGNS],
            "discount_percent": [s.discount_percent for s in CAMPAIGNS],
            "copy_writers": [s.copy_writers for s in CAMPAIGNS],
        },
        schema_overrides={"discount_percent": pl.Float64},
    )
