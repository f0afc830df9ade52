"""Fixed vocabularies of the synthetic shop: categories, brands, names, review templates.

Everything here is plain data, so the generator's behaviour lives elsewhere and a reader
can change the shop's flavour without touching the simulation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Category:
    """A product category and what its products look like.

    Parameters
    ----------
    name : str
        Readable category name (also used as a campaign target).
    share : float
        Relative share of browsing traffic.
    price_median, price_sigma : float
        Lognormal price: median in shop currency and log-scale spread.
    consumable : bool
        Whether customers re-buy its products (coffee, pet food...).
    materials : tuple of str
        Middle word of product names ("Ceramic" in "Walnut Ceramic Mug").
    nouns : tuple of str
        Product types ("Mug"); also the word reviews use for the product.
    brands : tuple of str
        The brands selling in this category.
    blurb : str
        Second sentence of product descriptions.
    """

    name: str
    share: float
    price_median: float
    price_sigma: float
    consumable: bool
    materials: tuple[str, ...]
    nouns: tuple[str, ...]
    brands: tuple[str, ...]
    blurb: str


def _load_categories() -> tuple[Category, ...]:
    """The categories of ``categories.json`` (data, beside this module), in file order."""
    rows = json.loads(Path(__file__).with_name("categories.json").read_text())
    return tuple(
        Category(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()})
        for row in rows
    )


CATEGORIES: tuple[Category, ...] = _load_categories()

BRANDS: tuple[str, ...] = tuple(b for c in CATEGORIES for b in c.brands)

# First word of product names: colours and styles that read well before any material.
STYLE_WORDS: tuple[str, ...] = (
    "Walnut", "Sage", "Ivory", "Charcoal", "Coastal", "Nordic", "Midnight", "Terracotta",
    "Classic", "Heritage", "Everyday", "Signature", "Moss", "Sand", "Slate", "Honey",
    "Olive", "Dusk", "Alpine", "Harbour",
)  # fmt: skip

# Customer names (the generator's PII, never published): ``names.json`` beside this module.
_NAMES = json.loads(Path(__file__).with_name("names.json").read_text())
FIRST_NAMES: tuple[str, ...] = tuple(_NAMES["first_names"])
SURNAMES: tuple[str, ...] = tuple(_NAMES["surnames"])

# Reserved documentation domains (RFC 2606): fake addresses that can never reach anyone.
EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.org", "example.net")

# Customer countries (ISO 3166-1 alpha-2) and their share of the customer base.
COUNTRIES: tuple[tuple[str, float], ...] = (
    ("GB", 0.30), ("US", 0.22), ("DE", 0.10), ("FR", 0.08), ("NL", 0.05), ("IE", 0.04),
    ("ES", 0.05), ("IT", 0.05), ("SE", 0.03), ("AU", 0.04), ("CA", 0.04),
)  # fmt: skip

# Where sessions (and so orders) happen, with their shares.
CHANNELS: tuple[tuple[str, float], ...] = (("web", 0.55), ("app", 0.35), ("mobile_web", 0.10))

# Relative traffic by hour of day (UTC): quiet nights, lunch bump, evening peak.
HOURLY_TRAFFIC: tuple[float, ...] = (
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.0, 2.0, 3.0, 3.5, 3.5, 3.8,
    4.0, 3.8, 3.5, 3.5, 3.8, 4.2, 5.0, 5.5, 5.5, 4.5, 3.0, 2.0,
)  # fmt: skip

# Review titles per rating (index 0 -> rating 1) ...
REVIEW_TITLES: tuple[tuple[str, ...], ...] = (
    ("Very disappointed", "Would not buy again", "Poor quality", "Not as described"),
    ("Not great", "Below expectations", "Could be better", "A bit disappointing"),
    ("It's okay", "Average", "Does the job", "Mixed feelings"),
    ("Really good", "Happy with it", "Nice quality", "Would recommend"),
    ("Love it!", "Absolutely perfect", "Five stars", "Exceeded expectations"),
)
# ... and review bodies as (before, after) the lower-cased product noun.
REVIEW_BODIES: tuple[tuple[tuple[str, str], ...], ...] = (
    (
        ("The ", " broke within a week and customer service was unhelpful."),
        ("Really poor ", ". It looks nothing like the photos and feels cheap."),
        ("Sent the ", " back. Badly made and not worth the money."),
    ),
    (
        ("The ", " works but the quality is lower than I expected."),
        ("Not impressed with this ", ". It does the basics but feels flimsy."),
        ("My ", " arrived scratched. Usable, but I expected better."),
    ),
    (
        ("The ", " is fine for the price, nothing special."),
        ("Decent ", ", although delivery took longer than expected."),
        ("This ", " is okay. Some things I like, some I don't."),
    ),
    (
        ("Very happy with the ", ". Good quality and arrived quickly."),
        ("Nice ", ", does exactly what I needed. Would buy again."),
        ("The ", " looks great. Only a small niggle with the packaging."),
    ),
    (
        ("Absolutely love this ", "! Beautiful quality and great value."),
        ("Best ", " I have bought in years. Highly recommend."),
        ("The ", " is perfect, I have already ordered another one."),
    ),
)
