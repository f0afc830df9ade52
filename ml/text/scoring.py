"""Score reviews with a sentiment model: one ``review_sentiment`` row per review.

Reviews with text get the model's score, label and predicted rating
(:mod:`ml.text.metrics`); rating-only reviews (no title, no text) have no text to read, so
their sentiment is their rating's: ``(rating - 3) / 2`` and the rating's label, with
``sentiment_source = 'rating'``. Reviews are scored in batches (bounded memory) and, for
large inputs, optionally in worker processes (``AFFINITY_TEXT_WORKERS``).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import polars as pl

from ml.text.dataset import LABELS, rating_labels, with_text
from ml.text.metrics import median_ratings, sentiment_labels, sentiment_scores
from ml.text.sentiment import rating_distribution

log = logging.getLogger(__name__)

BATCH = 20_000
# Below this many texts a second process costs more (start-up, model transfer) than it saves.
PARALLEL_MIN_TEXTS = 40_000

OUTPUT_SCHEMA = {
    "review_id": pl.String,
    "product_id": pl.String,
    "customer_id": pl.String,
    "created_at": pl.Datetime("us"),
    "rating": pl.Int32,
    "sentiment_score": pl.Float64,
    "sentiment_label": pl.String,
    "predicted_rating": pl.Int32,
    "sentiment_source": pl.String,
    "model_version": pl.String,
}


def score_reviews(
    model: Any,
    reviews: pl.DataFrame,
    model_version: str,
    *,
    source: str = "model",
    workers: int | None = None,
) -> pl.DataFrame:
    """Sentiment of every review.

    Parameters
    ----------
    model : estimator
        A trained sentiment model (``predict_proba`` over ratings, see
        :func:`ml.text.sentiment.rating_distribution`).
    reviews : polars.DataFrame
        ``review_id, product_id, customer_id, rating, title, body, created_at``.
    model_version : str
        Written to every row (the registry version, or ``lexicon``).
    source : str
        ``sentiment_source`` of text reviews (``model`` or ``lexicon``).
    workers : int, optional
        Processes for inputs of at least :data:`PARALLEL_MIN_TEXTS` texts (default:
        :func:`default_workers`, i.e. one).

    Returns
    -------
    polars.DataFrame
        :data:`OUTPUT_SCHEMA` columns, one row per review, in input order. No reviewer
        name or text: ids, rating and sentiment only.
    """
    frame = with_text(reviews)
    texts = frame.filter(pl.col("has_text"))
    distribution = predict_in_batches(model, texts, workers=workers)
    scored = texts.select("review_id").with_columns(
        pl.Series("sentiment_score", sentiment_scores(distribution), dtype=pl.Float64),
        pl.Series("sentiment_label", sentiment_labels(distribution), dtype=pl.String),
        pl.Series("predicted_rating", median_ratings(distribution), dtype=pl.Int32),
        pl.lit(source).alias("sentiment_source"),
    )
    ratings = frame["rating"].to_numpy()
    from_rating = frame.select("review_id").with_columns(
        pl.Series("_rating_score", (ratings - 3) / 2.0, dtype=pl.Float64),
        pl.Series("_rating_label", np.asarray(LABELS)[rating_labels(ratings)], dtype=pl.String),
    )
    out = (
        frame.select("review_id", "product_id", "customer_id", "created_at", "rating")
        .join(scored, on="review_id", how="left", maintain_order="left")
        .join(from_rating, on="review_id", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("sentiment_score", "_rating_score")
            .clip(-1.0, 1.0)
            .alias("sentiment_score"),
            pl.coalesce("sentiment_label", "_rating_label").alias("sentiment_label"),
            pl.coalesce("predicted_rating", pl.col("rating")).alias("predicted_rating"),
            pl.col("sentiment_source").fill_null("rating"),
            pl.lit(model_version).alias("model_version"),
        )
    )
    return out.select([pl.col(name).cast(dtype) for name, dtype in OUTPUT_SCHEMA.items()])


def predict_in_batches(
    model: Any, texts: pl.DataFrame, *, workers: int | None = None
) -> np.ndarray:
    """``n x 5`` rating distributions of ``texts`` (``title``, ``body``), batch by batch."""
    batches = [texts.slice(start, BATCH) for start in range(0, texts.height, BATCH)]
    if not batches:
        return np.zeros((0, 5))
    workers = default_workers() if workers is None else workers
    if workers > 1 and texts.height >= PARALLEL_MIN_TEXTS:
        return _predict_parallel(model, batches, workers)
    return np.vstack([rating_distribution(model, batch) for batch in batches])


def default_workers() -> int:
    """Scoring processes: 1 unless ``AFFINITY_TEXT_WORKERS`` says otherwise.

    One process already uses both cores of the reference machine where it matters (polars
    counts n-grams and lexicon hits on all cores); spawned workers each pay ~5 CPU-seconds
    to start (imports, the model) and measured slower, not faster, on 100,000 reviews
    (``bench/results/reviews.md``). Worth it only with more cores and more reviews.
    """
    override = os.environ.get("AFFINITY_TEXT_WORKERS")
    return max(1, int(override)) if override else 1


_WORKER_MODEL: Any = None


def _init_worker(model: Any) -> None:
    global _WORKER_MODEL
    _WORKER_MODEL = model


def _predict_batch(batch: dict[str, list[str]]) -> np.ndarray:
    return rating_distribution(_WORKER_MODEL, batch)


def _predict_parallel(model: Any, batches: list[pl.DataFrame], workers: int) -> np.ndarray:
    """Score batches in ``workers`` spawned processes (fork is unsafe with polars threads)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    payloads = [{"title": b["title"].to_list(), "body": b["body"].to_list()} for b in batches]
    with ProcessPoolExecutor(
        max_workers=min(workers, len(batches)),
        mp_context=context,
        initializer=_init_worker,
        initargs=(model,),
    ) as pool:
        return np.vstack(list(pool.map(_predict_batch, payloads)))
