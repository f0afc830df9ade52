"""Product reviews written after some purchases, with text that matches the rating.

The rating comes from a latent satisfaction score (product quality + noise, lower after
a return); the text says the rating's verdict and, often, the product's recurring
complaint or praise (:mod:`ml.datagen.review_text`), so sentiment and aspect extraction
have something real to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ml.datagen.activity import Activity
from ml.datagen.catalog import Catalog, product_nouns
from ml.datagen.columns import Columns
from ml.datagen.common import DAY, IdTables, Period, gather_ids, lookup, numbered_ids, timestamps
from ml.datagen.review_text import aspect_sentences, product_voices
from ml.datagen.vocab import REVIEW_BODIES, REVIEW_TITLES
from ml.ingest.contract import ORDER_STATUSES

REVIEW_RATE = 0.08  # of bought lines of known customers
RETURNED_REVIEW_RATE = 0.30  # unhappy customers speak up more
MEAN_REVIEW_DELAY_DAYS = 4.0  # after the first day
BASE_RATING = 4.1
RATING_NOISE = 0.9
RETURNED_RATING_PENALTY = 2.2


@dataclass(frozen=True)
class Reviews(Columns):
    """Reviews in time order (index ``i`` is review ``R{i+1}``)."""

    customer: np.ndarray
    product: np.ndarray
    rating: np.ndarray
    created_at: np.ndarray
    title_choice: np.ndarray
    body_choice: np.ndarray
    aspect_text: np.ndarray  # "" or a sentence about the product's complaint or praise


def draw_ratings(rng: np.random.Generator, quality: np.ndarray, returned: np.ndarray) -> np.ndarray:
    """Ratings 1-5 around the product's quality, lower for returned orders."""
    score = BASE_RATING + quality + rng.normal(0.0, RATING_NOISE, len(quality))
    score -= RETURNED_RATING_PENALTY * returned
    return np.clip(np.rint(score), 1, 5).astype(np.int32)


def draw_reviews(
    rng: np.random.Generator, activity: Activity, catalog: Catalog, period: Period
) -> Reviews:
    """Pick reviewed lines (one review per customer and product) and rate them."""
    orders = activity.orders
    order = orders.line_order
    status = orders.status[order]
    who = activity.sessions.customer[orders.session[order]]
    product = activity.views.product[orders.line_view]
    returned = status == ORDER_STATUSES.index("returned")
    rate = np.where(returned, RETURNED_REVIEW_RATE, REVIEW_RATE)
    eligible = (who >= 0) & (status != ORDER_STATUSES.index("cancelled"))
    chosen = np.flatnonzero(eligible & (rng.random(len(order)) < rate))
    # Lines are in order time, so the earliest purchase of a product gets the review.
    _, first = np.unique(
        who[chosen].astype(np.int64) * len(catalog) + product[chosen], return_index=True
    )
    chosen = np.sort(chosen[first])
    delay = DAY + rng.exponential(MEAN_REVIEW_DELAY_DAYS * DAY, len(chosen)).astype(np.int64)
    created_at = orders.ordered_at[order[chosen]] + delay
    rating = draw_ratings(rng, catalog.quality[product[chosen]], returned[chosen])
    title_choice = rng.integers(0, 1 << 30, len(chosen))
    body_choice = rng.integers(0, 1 << 30, len(chosen))
    # Drawn last, from a child stream: every draw above is as it was before aspect text.
    text_rng = np.random.default_rng(rng.integers(0, 1 << 62))
    voices = product_voices(text_rng, catalog.category, catalog.quality)
    nouns = product_nouns(catalog).gather(product[chosen]).to_list()
    aspect_text = np.asarray(
        aspect_sentences(text_rng, voices, product[chosen], rating, nouns), dtype=object
    )
    keep = created_at < period.end  # reviews not yet written at the end stay unwritten
    by_time = np.lexsort((chosen[keep], created_at[keep]))
    return Reviews(
        *(
            a[keep][by_time]
            for a in (
                who[chosen],
                product[chosen],
                rating,
                created_at,
                title_choice,
                body_choice,
                aspect_text,
            )
        )
    )


def template_index(rating: np.ndarray, choice: np.ndarray, per_rating: list[int]) -> np.ndarray:
    """Index into a flattened per-rating template list: ``choice`` modulo that rating's count."""
    counts = np.array(per_rating)
    offsets = np.cumsum(counts) - counts
    return offsets[rating - 1] + choice % counts[rating - 1]


def reviews_frame(reviews: Reviews, catalog: Catalog, ids: IdTables) -> pl.DataFrame:
    """The ``reviews`` entity (contract columns and order)."""
    titles = [t for group in REVIEW_TITLES for t in group]
    bodies = [b for group in REVIEW_BODIES for b in group]
    title = template_index(reviews.rating, reviews.title_choice, [len(g) for g in REVIEW_TITLES])
    body = template_index(reviews.rating, reviews.body_choice, [len(g) for g in REVIEW_BODIES])
    frame = pl.DataFrame(
        {
            "review_id": numbered_ids("R", len(reviews)),
            "customer_id": gather_ids(ids.customers, reviews.customer),
            "product_id": gather_ids(ids.products, reviews.product),
            "rating": reviews.rating,
            "title": lookup(titles, title),
            "before": lookup([b for b, _ in bodies], body),
            "noun": product_nouns(catalog).gather(reviews.product),
            "after": lookup([a for _, a in bodies], body),
            "aspect": pl.Series(reviews.aspect_text.tolist(), dtype=pl.String),
            "created_at": timestamps(reviews.created_at),
        }
    )
    body_text = pl.concat_str([pl.col("before"), pl.col("noun"), pl.col("after"), pl.col("aspect")])
    return frame.with_columns(body=body_text).drop("before", "noun", "after", "aspect")
