"""The review stage of the nightly run: sentiment per review, aspects per product.

:func:`run_review_stage` is the one entry point the pipeline needs. Given the shop's
reviews (the staged ``reviews`` entity) it

1. trains the sentiment model when there is no champion yet, when the reviews changed
   since the champion was trained (their fingerprint is a tag of the version), or when
   asked to; training logs to MLflow and applies the gate (:mod:`ml.text.registry`);
2. scores every review with the champion (``review_sentiment`` rows, :mod:`ml.text.scoring`);
3. lists each product's praised and complaint aspects (:mod:`ml.text.aspects`).

It returns frames, and writes nothing but MLflow: the caller stores them (``ml`` schema)
and dbt builds the published tables from them. ``track=False`` skips MLflow entirely
(a model trained in memory, version ``unregistered``), for benchmarks and tests.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import polars as pl
from mlflow import MlflowClient

from ml.config import Paths, paths
from ml.text.aspects import AspectConfig, product_aspects
from ml.text.registry import (
    EXPERIMENT_NAME,
    MODEL_NAME,
    load_sentiment_champion,
    train_and_register,
)
from ml.text.scoring import score_reviews
from ml.text.sentiment import LEXICON_KIND, SentimentConfig, train_sentiment
from ml.train import tracking

log = logging.getLogger(__name__)

FINGERPRINT_TAG = "data.fingerprint"
REVIEW_COLUMNS = ("review_id", "product_id", "customer_id", "rating", "title", "body", "created_at")


@dataclass
class ReviewStageResult:
    """What the review stage produced.

    Attributes
    ----------
    review_sentiment : polars.DataFrame
        One row per review: ``review_id, product_id, customer_id, created_at, rating,
        sentiment_score, sentiment_label, predicted_rating, sentiment_source,
        model_version`` (no reviewer name, no text).
    product_aspects : polars.DataFrame
        One row per reviewed product: ``product_id, review_count, praised_aspects,
        complaint_aspects`` (lists of ``{aspect, mentions, example}``).
    model_version : str
        The registry version that scored (``unregistered`` without tracking).
    model_kind : str
        ``logistic_regression`` or ``vader_lexicon`` (the fallback).
    trained : bool
        Whether this run trained (and registered) a new version.
    decision : str or None
        The gate's decision for a new version (``champion`` / ``challenger``).
    metrics : dict
        Hold-out metrics of the new version (empty when nothing was trained).
    seconds : dict
        ``train``, ``score``, ``aspects``.
    run_id, experiment_id : str or None
        The MLflow run that trained the serving version (this run's training, or the
        champion's when it was reused); None without tracking.
    """

    review_sentiment: pl.DataFrame
    product_aspects: pl.DataFrame
    model_version: str
    model_kind: str
    trained: bool
    decision: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    experiment_id: str | None = None


def reviews_fingerprint(reviews: pl.DataFrame) -> str:
    """A digest of the labelled content of the reviews (ids, ratings, text)."""
    if reviews.height == 0:
        return "0:0"
    rows = reviews.select("review_id", "rating", "title", "body").sort("review_id")
    return f"{rows.height}:{int(rows.hash_rows(seed=0).sum()) % (1 << 64):016x}"


def run_review_stage(
    reviews: pl.DataFrame,
    *,
    as_of: str,
    retrain: bool | None = None,
    track: bool = True,
    home: Paths | None = None,
    sentiment_config: SentimentConfig | None = None,
    aspect_config: AspectConfig | None = None,
    model_name: str = MODEL_NAME,
) -> ReviewStageResult:
    """Sentiment for every review and aspects for every reviewed product.

    Parameters
    ----------
    reviews : polars.DataFrame
        :data:`REVIEW_COLUMNS` (the staged reviews; erased customers already removed).
    as_of : str
        Logical date ``YYYY-MM-DD`` (MLflow run name and tags).
    retrain : bool, optional
        True: always train; False: never (score with the champion, train only if there is
        none); None (default): train when the reviews changed since the champion's training.
    track : bool
        Log and register in MLflow (default); False trains in memory, registers nothing.
    home : Paths, optional
        Affinity home (default: ``AFFINITY_HOME``).
    sentiment_config, aspect_config : optional
    model_name : str
        Registered model name.

    Returns
    -------
    ReviewStageResult
    """
    missing = [c for c in REVIEW_COLUMNS if c not in reviews.columns]
    if missing:
        raise ValueError(
            f"reviews lack column(s) {', '.join(missing)}; pass the staged reviews entity"
        )
    reviews = reviews.select(REVIEW_COLUMNS)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    run_id = experiment_id = None
    if track:
        model, version, kind, trained, decision, metrics, run_id = _champion_for(
            reviews, as_of, retrain, home or paths(), sentiment_config, model_name
        )
        experiment_id = tracking.configure(EXPERIMENT_NAME, home or paths())
    else:
        training = train_sentiment(reviews, sentiment_config)
        model, version, kind, trained = training.model, "unregistered", training.kind, True
        decision, metrics = None, training.metrics
    seconds["train"] = time.perf_counter() - started

    started = time.perf_counter()
    source = "lexicon" if kind == LEXICON_KIND else "model"
    sentiment = score_reviews(model, reviews, version, source=source)
    seconds["score"] = time.perf_counter() - started

    started = time.perf_counter()
    aspects = product_aspects(reviews, config=aspect_config)
    seconds["aspects"] = time.perf_counter() - started
    log.info(
        "review stage: %d reviews scored by %s v%s (%s), %d products described in %s",
        sentiment.height,
        kind,
        version,
        "trained" if trained else "champion reused",
        aspects.height,
        ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()),
    )
    return ReviewStageResult(
        sentiment,
        aspects,
        version,
        kind,
        trained,
        decision,
        metrics,
        seconds,
        run_id,
        experiment_id,
    )


def _champion_for(
    reviews: pl.DataFrame,
    as_of: str,
    retrain: bool | None,
    home: Paths,
    config: SentimentConfig | None,
    model_name: str,
):
    """Train if needed (see :func:`run_review_stage`), then load the champion."""
    tracking.configure(EXPERIMENT_NAME, home)
    fingerprint = reviews_fingerprint(reviews)
    champion_version = tracking.alias_version(model_name, tracking.CHAMPION)
    champion_fingerprint = (
        MlflowClient().get_model_version(model_name, champion_version).tags.get(FINGERPRINT_TAG)
        if champion_version
        else None
    )
    must_train = champion_version is None or retrain is True
    if retrain is None and champion_fingerprint != fingerprint:
        must_train = True
    decision, metrics = None, {}
    if must_train:
        run = train_and_register(
            reviews, as_of=as_of, config=config, home=home, model_name=model_name
        )
        tracking.set_version_tags(model_name, run.version, {FINGERPRINT_TAG: fingerprint})
        decision, metrics = run.gate.decision, run.metrics
        if run.gate.promoted:  # the new champion is in memory: no need to load it back
            model, kind = run.training.model, run.training.kind
            return model, run.version, kind, True, decision, metrics, run.run_id
    loaded = load_sentiment_champion(home, model_name)
    if loaded is None:  # the first version is always promoted; this is a registry problem
        raise LookupError(
            f"no champion of {model_name!r} after training; check the registry in "
            f"{home.mlflow_tracking_uri}"
        )
    model, version = loaded
    kind = LEXICON_KIND if type(model).__name__ == "LexiconSentiment" else "logistic_regression"
    trained_by = MlflowClient().get_model_version(model_name, version).run_id
    return model, version, kind, must_train, decision, metrics, trained_by
