"""Labelled review texts: rating labels, text deduplication and the evaluation split.

Ratings are the labels (1-2 negative, 3 neutral, 4-5 positive). Repeated texts (the same
review posted under several product variants, or imported twice) would put one text in
both the training and the test set and inflate every metric, so texts are deduplicated
*before* splitting. The split is by time (the latest ``test_share`` of reviews are the
hold-out) when the reviews carry real dates, else a seeded random split that assigns each
text by a hash, so a text stays on the same side in every run (the champion is never
evaluated on texts it trained on).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

RATINGS = (1, 2, 3, 4, 5)
LABELS = ("negative", "neutral", "positive")
# Fewer distinct review days than this: the dates are a placeholder (one import date, the
# Women's Clothing set) and a time split would be meaningless.
MIN_DISTINCT_DAYS = 10


def rating_labels(ratings: np.ndarray) -> np.ndarray:
    """Label index per rating: 0 negative (1-2), 1 neutral (3), 2 positive (4-5)."""
    ratings = np.asarray(ratings)
    return np.where(ratings <= 2, 0, np.where(ratings == 3, 1, 2))


def with_text(reviews: pl.DataFrame) -> pl.DataFrame:
    """Add ``title``/``body`` as clean strings (NULL -> ``""``), ``has_text`` and ``text_key``.

    ``text_key`` identifies a text for deduplication: title and body lower-cased with
    whitespace collapsed.
    """
    clean = {
        name: pl.col(name).cast(pl.String).fill_null("").str.strip_chars()
        for name in ("title", "body")
    }
    frame = reviews.with_columns(clean["title"].alias("title"), clean["body"].alias("body"))
    joined = pl.concat_str([pl.col("title"), pl.col("body")], separator="\n")
    return frame.with_columns(
        ((pl.col("title").str.len_chars() + pl.col("body").str.len_chars()) > 0).alias("has_text"),
        joined.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars().alias("text_key"),
    )


def labelled_texts(reviews: pl.DataFrame) -> pl.DataFrame:
    """Distinct labelled texts: reviews with a 1-5 rating and text, one row per text.

    Parameters
    ----------
    reviews : polars.DataFrame
        ``review_id, rating, title, body, created_at`` (other columns are kept).

    Returns
    -------
    polars.DataFrame
        The earliest review of each distinct text (ties: smallest ``review_id``), with the
        columns of :func:`with_text`.
    """
    frame = with_text(reviews).filter(pl.col("has_text") & pl.col("rating").is_between(1, 5))
    frame = frame.sort(["created_at", "review_id"], nulls_last=True)
    return frame.unique(subset="text_key", keep="first", maintain_order=True)


@dataclass(frozen=True)
class Split:
    """How a labelled set was divided for evaluation.

    Attributes
    ----------
    method : str
        ``"time"`` (hold-out = the latest reviews) or ``"random"`` (seeded, by text hash).
    cutoff : datetime or None
        First timestamp of the hold-out (time split only).
    train_rows, test_rows : int
    """

    method: str
    cutoff: datetime | None
    train_rows: int
    test_rows: int


def has_real_dates(frame: pl.DataFrame, min_distinct_days: int = MIN_DISTINCT_DAYS) -> bool:
    """True when ``created_at`` spans at least ``min_distinct_days`` distinct days."""
    if frame.height == 0:
        return False
    days = frame.select(pl.col("created_at").dt.date().n_unique()).item()
    return days >= min_distinct_days


def split_reviews(
    texts: pl.DataFrame,
    *,
    test_share: float = 0.2,
    seed: int = 0,
    min_distinct_days: int = MIN_DISTINCT_DAYS,
) -> tuple[pl.DataFrame, pl.DataFrame, Split]:
    """Split distinct labelled texts into train and hold-out.

    Parameters
    ----------
    texts : polars.DataFrame
        Output of :func:`labelled_texts`.
    test_share : float
        Share of texts in the hold-out.
    seed : int
        Salt of the random split's hash (unused by the time split).
    min_distinct_days : int
        Below this many distinct review days the split is random (see :func:`has_real_dates`).

    Returns
    -------
    train, test : polars.DataFrame
    split : Split
    """
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be between 0 and 1, got {test_share}")
    if has_real_dates(texts, min_distinct_days):
        ordered = texts["created_at"].sort()
        cutoff = ordered[min(int(len(ordered) * (1 - test_share)), len(ordered) - 1)]
        is_test = (texts["created_at"] >= cutoff).to_numpy()
        method = "time"
    else:
        cutoff = None
        is_test = text_buckets(texts["text_key"], seed) < test_share
        method = "random"
    train = texts.filter(pl.Series(~is_test))
    test = texts.filter(pl.Series(is_test))
    return train, test, Split(method, cutoff, train.height, test.height)


def text_buckets(keys: pl.Series, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per text, from a salted hash: the same text, the same side."""
    salt = f"{seed}:".encode()
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(salt + key.encode(), digest_size=8).digest(), "big")
            / 2**64
            for key in keys.to_list()
        ),
        dtype=np.float64,
        count=len(keys),
    )
