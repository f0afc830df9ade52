"""What generated reviews say about their product: recurring complaints and praise.

Review text used to depend on the rating only; the language layer (sentiment, aspects)
needs text that carries the product: a product of poor latent quality usually has one
recurring complaint that its unhappy reviewers (and some happy ones) mention ("It runs
small, so order a size up."), a good product one recurring praise. What can go wrong
depends on the kind of product: clothes run small, electronics stop working, glassware
arrives broken, bottles leak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.datagen.vocab import CATEGORIES

# Latent quality below this: a recurring complaint (with ISSUE_RATE), above PRAISE_QUALITY:
# a recurring praise. Quality is N(0, 0.5), so about a quarter / a third of products.
ISSUE_QUALITY = -0.35
ISSUE_RATE = 0.85
STRAY_ISSUE_RATE = 0.03  # good products have bad batches too
PRAISE_QUALITY = 0.25
# Chance that a review mentions its product's complaint / praise, by rating 1-3 vs 4-5.
COMPLAINT_MENTION = (0.75, 0.15)
PRAISE_MENTION = (0.05, 0.5)

APPAREL = ("Clothing", "Shoes & Accessories", "Bedding & Bath", "Baby & Kids")
ELECTRONIC = ("Electronics", "Computer Accessories")
COMPLAINTS: dict[str, dict[str, tuple[str, ...]]] = {
    "apparel": {
        "runs small": ("It runs small, so order a size up.", "Runs really small."),
        "too short": ("It is too short on me.", "Way too short for my height."),
        "thin fabric": ("The fabric is very thin.", "Thin fabric, almost see-through."),
        "shrank in the wash": ("It shrank in the wash.", "Shrank after one wash."),
    },
    "consumable": {
        "arrived leaking": ("It arrived leaking all over the box.", "The bottle arrived leaking."),
        "not as described": ("Not as described at all.", "It is not as described."),
    },
    "electronic": {
        "stopped working": ("It stopped working after two weeks.", "Stopped working within a month."),
        "arrived damaged": ("It arrived damaged.", "The box arrived damaged and so did the {noun}."),
    },
    "hard goods": {
        "arrived broken": ("It arrived broken.", "Sadly the {noun} arrived broken."),
        "cheap material": ("The material feels cheap.", "Cheap material, it feels flimsy."),
        "colour not as pictured": ("The colour is not as pictured.", "Colour is nothing like the photos."),
    },
}  # fmt: skip
PRAISES: dict[str, dict[str, tuple[str, ...]]] = {
    "apparel": {
        "soft": ("It is so soft.", "Really soft and cosy."),
        "true to size": ("Fits true to size.", "True to size for me."),
    },
    "consumable": {
        "great value": ("Great value for the price.", "The value is great."),
        "as described": ("Exactly as described.", "It is just as described."),
    },
    "electronic": {
        "great value": ("Great value for the price.", "The value is great."),
        "sturdy": ("It is very sturdy.", "Feels sturdy and well made."),
    },
    "hard goods": {
        "sturdy": ("It is very sturdy.", "Feels sturdy and well made."),
        "colour as pictured": ("The colour is exactly as pictured.", "Colour is just as pictured."),
    },
}  # fmt: skip


def product_kind(category: str, consumable: bool) -> str:
    """Which complaints and praise fit a category (see :data:`COMPLAINTS`)."""
    if category in APPAREL:
        return "apparel"
    if category in ELECTRONIC:
        return "electronic"
    return "consumable" if consumable else "hard goods"


KINDS = np.array([product_kind(c.name, c.consumable) for c in CATEGORIES], dtype=object)


@dataclass(frozen=True)
class ProductVoices:
    """Per product: its recurring complaint and praise (``""`` for none)."""

    complaint: np.ndarray
    praise: np.ndarray


def product_voices(
    rng: np.random.Generator, category: np.ndarray, quality: np.ndarray
) -> ProductVoices:
    """Draw each product's recurring complaint and praise from its latent quality."""
    kinds = KINDS[category]
    n = len(quality)
    has_issue = np.where(quality < ISSUE_QUALITY, ISSUE_RATE, STRAY_ISSUE_RATE) > rng.random(n)
    has_praise = (quality > PRAISE_QUALITY) & ~has_issue
    pick_issue, pick_praise = rng.random(n), rng.random(n)
    complaint = np.full(n, "", dtype=object)
    praise = np.full(n, "", dtype=object)
    for kind in COMPLAINTS:
        own = kinds == kind
        issues, praises = list(COMPLAINTS[kind]), list(PRAISES[kind])
        chosen_issue = np.asarray(issues, dtype=object)[(pick_issue * len(issues)).astype(int)]
        chosen_praise = np.asarray(praises, dtype=object)[(pick_praise * len(praises)).astype(int)]
        complaint = np.where(own & has_issue, chosen_issue, complaint)
        praise = np.where(own & has_praise, chosen_praise, praise)
    return ProductVoices(complaint, praise)


def aspect_sentences(
    rng: np.random.Generator,
    voices: ProductVoices,
    product: np.ndarray,
    rating: np.ndarray,
    nouns: list[str],
) -> list[str]:
    """One optional sentence per review about its product's complaint or praise.

    Parameters
    ----------
    rng : numpy.random.Generator
    voices : ProductVoices
    product, rating : numpy.ndarray
        Per review: product index and rating.
    nouns : list of str
        Per review: the product's lower-cased noun (``{noun}`` in the templates).

    Returns
    -------
    list of str
        ``""`` or a sentence (with a leading space) per review.
    """
    happy = rating >= 4
    complaint = voices.complaint[product]
    praise = voices.praise[product]
    says_complaint = (complaint != "") & (
        rng.random(len(rating)) < np.where(happy, COMPLAINT_MENTION[1], COMPLAINT_MENTION[0])
    )
    says_praise = (praise != "") & (
        rng.random(len(rating)) < np.where(happy, PRAISE_MENTION[1], PRAISE_MENTION[0])
    )
    wording = rng.integers(0, 1 << 30, len(rating))
    sentences = []
    for i in range(len(rating)):
        if says_complaint[i]:
            options = _phrasings(COMPLAINTS, complaint[i])
        elif says_praise[i]:
            options = _phrasings(PRAISES, praise[i])
        else:
            sentences.append("")
            continue
        sentences.append(" " + options[wording[i] % len(options)].format(noun=nouns[i]))
    return sentences


def _phrasings(table: dict[str, dict[str, tuple[str, ...]]], aspect: str) -> tuple[str, ...]:
    for aspects in table.values():
        if aspect in aspects:
            return aspects[aspect]
    raise KeyError(aspect)
