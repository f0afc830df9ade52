"""The copy brief: everything a writer may know about one message, and nothing more.

A brief holds the campaign's goal and offer, the customer's RFM segment and behavioural
cluster, their top recommended products (name, category, price, why recommended, the
aspects reviewers praise) and the channel's limits. It never holds a customer id, an
e-mail address or a name: the message greets ``{{first_name}}``, a placeholder the
sending system fills in. :meth:`CopyBrief.payload` is what leaves the process (the
language-model writer sends exactly that) and what the cache key hashes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

FIRST_NAME = "{{first_name}}"
GOALS = (
    "win_back",
    "loyalty",
    "cross_sell",
    "replenish",
    "welcome",
    "new_arrivals",
    "thank_you",
    "recommend",
    # Service outreach to customers unhappy in a review: an apology and help, no selling.
    "service",
)
WIN_BACK_SEGMENTS = ("at risk", "cannot lose them", "hibernating", "about to sleep", "lost")
LOYAL_SEGMENTS = ("champions", "loyal customers")


@dataclass(frozen=True)
class ChannelLimits:
    """Length limits of a channel, in characters (the placeholder counts as written).

    ``subject_chars`` is ``None`` for channels without a subject line.
    """

    body_chars: int
    subject_chars: int | None = None


# Push notifications are cut beyond ~120 characters on lock screens; one SMS segment
# holds 160 GSM-7 characters; e-mail subjects beyond ~70 are truncated by most clients.
CHANNEL_LIMITS = {
    "email": ChannelLimits(body_chars=700, subject_chars=70),
    "push": ChannelLimits(body_chars=120),
    "sms": ChannelLimits(body_chars=160),
}
DEFAULT_LIMITS = ChannelLimits(body_chars=300)


def limits_for(channel: str) -> ChannelLimits:
    """The limits of ``channel`` (unknown channels: 300 characters, no subject)."""
    return CHANNEL_LIMITS.get(channel.strip().lower(), DEFAULT_LIMITS)


@dataclass(frozen=True)
class BriefProduct:
    """One recommended product as a writer sees it."""

    name: str
    category: str | None
    price: float | None
    reason: str | None
    praised_aspects: tuple[str, ...] = ()


@dataclass(frozen=True)
class CopyBrief:
    """One message to write.

    ``variant`` only steers the built-in writer's choice of phrasings (derived from a
    seeded hash of campaign and customer); it is not part of what an endpoint receives.
    """

    campaign_name: str
    goal: str
    channel: str
    limits: ChannelLimits
    products: tuple[BriefProduct, ...]
    offer: str | None = None
    discount_percent: float | None = None
    segment: str | None = None
    cluster: str | None = None
    category: str | None = None
    variant: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def product_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.products)

    def payload(self) -> dict[str, Any]:
        """The brief as plain data: what an endpoint receives (no variant, no ids)."""
        return {
            "campaign": self.campaign_name,
            "goal": self.goal,
            "channel": self.channel,
            "max_body_chars": self.limits.body_chars,
            "max_subject_chars": self.limits.subject_chars,
            "offer": self.offer,
            "discount_percent": self.discount_percent,
            "customer_segment": self.segment,
            "customer_cluster": self.cluster,
            "campaign_category": self.category,
            "products": [
                {k: v for k, v in asdict(p).items() if v not in (None, ())} for p in self.products
            ],
        }

    def key(self, writer: str, version: str, model: str | None = None) -> str:
        """Cache key: SHA-256 of the payload, the writer and its version (and variant for
        writers that use it)."""
        document = {
            "writer": writer,
            "version": version,
            "model": model,
            "brief": self.payload(),
            "variant": self.variant if writer == "builtin" else None,
        }
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def infer_goal(
    goal: str | None,
    *,
    name: str,
    target_type: str,
    target_value: str,
) -> str:
    """The campaign's goal: the one given, else one read off its target and name."""
    if goal:
        return goal
    if target_type == "review_sentiment":
        return "service"
    words = name.lower()
    targets = target_value.lower() if target_type == "segment" else ""
    if any(w in words for w in ("restock", "replenish", "running low")):
        return "replenish"
    if any(w in words for w in ("welcome", "first order")):
        return "welcome"
    if any(w in words for w in ("win back", "winback", "miss you", "lapsed")) or any(
        s in targets for s in WIN_BACK_SEGMENTS
    ):
        return "win_back"
    if "thank" in words:
        return "thank_you"
    if any(w in words for w in ("new arrival", "early access", "launch")):
        return "new_arrivals"
    if any(s in targets for s in LOYAL_SEGMENTS):
        return "loyalty"
    if target_type == "category":
        return "cross_sell"
    return "recommend"


_SPACES = re.compile(r"\s+")


def clean_text(value: Any) -> str | None:
    """A single-line, stripped string (``None`` when empty)."""
    if value is None:
        return None
    text = _SPACES.sub(" ", str(value)).strip()
    return text or None


def display_name(name: str) -> str:
    """A catalogue name as copy writes it: all-caps names (e.g. Online Retail's
    ``WHITE HANGING HEART T-LIGHT HOLDER``) in sentence-friendly capitals, others as they
    are. The guardrails compare names case-insensitively."""
    if name != name.upper() or not any(c.isalpha() for c in name):
        return name
    return " ".join(word[:1] + word[1:].lower() for word in name.split(" "))


def brief_products(
    products: Sequence[Mapping[str, Any]],
    aspects: Mapping[str, Sequence[str]] | None = None,
    limit: int = 3,
) -> tuple[BriefProduct, ...]:
    """Brief products from featured-product dicts (``product_id, name, category, price,
    reason``), with praised aspects from ``aspects`` (product id -> aspects)."""
    aspects = aspects or {}
    out = []
    for product in list(products)[:limit]:
        name = clean_text(product.get("name")) or clean_text(product.get("product_id"))
        if not name:
            continue
        name = display_name(name)
        price = product.get("price")
        praised = aspects.get(str(product.get("product_id")), ())
        out.append(
            BriefProduct(
                name=name,
                category=clean_text(product.get("category")),
                price=round(float(price), 2) if price is not None else None,
                reason=clean_text(product.get("reason")),
                praised_aspects=tuple(a for a in (clean_text(x) for x in praised) if a)[:3],
            )
        )
    return tuple(out)
