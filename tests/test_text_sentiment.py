"""The sentiment model's plumbing: features, split, metrics, fallback, scoring, registry gate."""

from __future__ import annotations

from datetime import datetime, timedelta

import mlflow
import numpy as np
import polars as pl
import pytest
from mlflow import MlflowClient

from ml.text.char_ngrams import char_ngram_counts
from ml.text.dataset import labelled_texts, split_reviews
from ml.text.lexicon import lexicon_features
from ml.text.metrics import median_ratings, sentiment_labels, sentiment_metrics, sentiment_scores
from ml.text.registry import decide, train_and_register
from ml.text.scoring import OUTPUT_SCHEMA, score_reviews
from ml.text.sentiment import (
    LEXICON_KIND,
    MODEL_KIND,
    LexiconSentiment,
    compound_distribution,
    train_sentiment,
)
from ml.text.stage import run_review_stage

POSITIVE = [
    "Love it, so soft and true to size.",
    "Beautiful colour and great quality, highly recommend.",
    "Perfect fit, I wear it every day.",
    "Gorgeous and comfortable, bought a second one.",
    "Excellent value, arrived quickly.",
]
NEGATIVE = [
    "Terrible quality, it fell apart after one wash.",
    "Way too short and the fabric is see-through, returned it.",
    "Arrived broken and customer service never answered.",
    "Awful fit, cheap material, very disappointed.",
    "Do not buy, it smells bad and looks nothing like the photo.",
]
NEUTRAL = ["It is okay, nothing special.", "Average, does the job.", "Fine for the price I guess."]


def labelled_shop(n: int = 600, seed: int = 0, dated: bool = True) -> pl.DataFrame:
    """Reviews whose text follows the rating, each text made distinct by a product word."""
    rng = np.random.default_rng(seed)
    ratings = rng.choice([1, 2, 3, 4, 5], size=n, p=[0.1, 0.1, 0.15, 0.25, 0.4])
    rows = []
    start = datetime(2025, 1, 1)
    for i, rating in enumerate(ratings):
        pool = NEGATIVE if rating <= 2 else NEUTRAL if rating == 3 else POSITIVE
        body = f"{pool[rng.integers(len(pool))]} Item number {i}."
        created = start + timedelta(days=int(i * 365 / n)) if dated else start
        rows.append((f"R{i:05d}", f"P{i % 20}", f"C{i % 50}", int(rating), None, body, created))
    return pl.DataFrame(
        rows,
        schema={
            "review_id": pl.String,
            "product_id": pl.String,
            "customer_id": pl.String,
            "rating": pl.Int32,
            "title": pl.String,
            "body": pl.String,
            "created_at": pl.Datetime("us"),
        },
        orient="row",
    )


def test_char_ngrams_stay_inside_words_and_are_stable():
    counts = char_ngram_counts(["ab cd"], (3, 5), 1 << 20)
    # " ab", "ab ", " cd", "cd " (3-grams) and " ab ", " cd " (4-grams); none spans the gap.
    assert counts.nnz == 6 and counts.sum() == 6
    batch = char_ngram_counts(["so soft", "too short"] * 3000, (3, 4), 1 << 18)
    assert (batch[0] != char_ngram_counts(["so soft"], (3, 4), 1 << 18)).nnz == 0


def test_lexicon_features_read_negation_and_but():
    features = lexicon_features(["good", "not good", "good but awful", ""])
    compound = features[:, 0]
    assert compound[0] > 0 > compound[1]
    assert compound[2] < 0  # after "but" weighs more
    assert compound[3] == 0


def test_metrics_follow_their_definitions():
    distribution = np.array(
        [
            [0.7, 0.2, 0.1, 0.0, 0.0],  # negative, median 1
            [0.0, 0.1, 0.3, 0.3, 0.3],  # positive by groups, median 4
            [0.1, 0.1, 0.6, 0.1, 0.1],  # neutral, median 3
        ]
    )
    assert np.allclose(sentiment_scores(distribution), [-0.9, 0.5, 0.0])
    assert list(sentiment_labels(distribution)) == ["negative", "positive", "neutral"]
    assert list(median_ratings(distribution)) == [1, 4, 3]
    metrics = sentiment_metrics(np.array([1, 5, 3]), distribution)
    assert metrics["roc_auc"] == 1.0
    assert metrics["rating_mae"] == pytest.approx(1 / 3)
    assert metrics["macro_f1"] == 1.0
    only_positive = sentiment_metrics(np.array([5, 4, 3]), distribution)
    assert np.isnan(only_positive["roc_auc"])


def test_lexicon_distribution_is_monotone_in_the_compound():
    scores = sentiment_scores(compound_distribution(np.linspace(-1, 1, 21)))
    assert np.all(np.diff(scores) > 0)
    assert scores[0] >= -1 and scores[-1] <= 1


def test_texts_are_deduplicated_before_a_time_split():
    reviews = labelled_shop(200)
    repeated = reviews.with_columns(pl.lit("Same text everywhere.").alias("body")).head(50)
    texts = labelled_texts(pl.concat([reviews.slice(50), repeated]))
    assert texts.height == 151
    train, test, split = split_reviews(texts, test_share=0.2)
    assert split.method == "time"
    assert train["created_at"].max() < test["created_at"].min()
    assert set(train["text_key"]) & set(test["text_key"]) == set()


def test_undated_reviews_get_a_stable_random_split():
    texts = labelled_texts(labelled_shop(300, dated=False))
    train, test, split = split_reviews(texts, test_share=0.2, seed=7)
    assert split.method == "random" and split.cutoff is None
    assert 30 < test.height < 90
    # A text's side depends on the text, not on what else is in the set.
    _, test_of_half, _ = split_reviews(texts.head(150), test_share=0.2, seed=7)
    assert set(test_of_half["text_key"]) <= set(test["text_key"])


def test_training_learns_the_ratings_and_is_deterministic():
    reviews = labelled_shop(600)
    first = train_sentiment(reviews)
    again = train_sentiment(reviews)
    assert first.kind == MODEL_KIND
    assert first.metrics["roc_auc"] > 0.95
    assert first.metrics == again.metrics
    assert first.split.method == "time"


def test_too_few_labelled_reviews_fall_back_to_the_lexicon_and_say_so():
    training = train_sentiment(labelled_shop(60))
    assert training.kind == LEXICON_KIND and training.is_fallback
    assert "min_train_texts" in training.reason
    assert isinstance(training.model, LexiconSentiment)


def test_scores_cover_every_review_and_carry_no_text():
    reviews = labelled_shop(300)
    reviews = reviews.with_columns(
        pl.when(pl.col("review_id") == "R00000").then(None).otherwise(pl.col("body")).alias("body")
    )
    out = score_reviews(LexiconSentiment().fit(), reviews, "lexicon", source="lexicon")
    assert out.schema == OUTPUT_SCHEMA
    assert out["review_id"].to_list() == reviews["review_id"].to_list()
    assert out["sentiment_score"].is_between(-1, 1).all()
    rating_only = out.row(0, named=True)
    assert rating_only["sentiment_source"] == "rating"
    assert rating_only["sentiment_score"] == (rating_only["rating"] - 3) / 2
    assert "body" not in out.columns and "title" not in out.columns
    negative = out.filter(pl.col("rating") <= 2)["sentiment_score"].mean()
    assert negative < out.filter(pl.col("rating") >= 4)["sentiment_score"].mean()


def test_gate_promotes_only_when_not_worse():
    good = {"roc_auc": 0.97, "rating_mae": 0.40, "macro_f1": 0.6}
    assert decide(good, None, champion_version=None).promoted
    assert decide(good, dict(good), champion_version="3").promoted  # a tie promotes
    worse_auc = decide({**good, "roc_auc": 0.96}, good, champion_version="3")
    assert not worse_auc.promoted and "roc_auc" in worse_auc.reason
    worse_mae = decide({**good, "rating_mae": 0.41}, good, champion_version="3")
    assert not worse_mae.promoted and "rating_mae" in worse_mae.reason
    unknown = decide({**good, "roc_auc": float("nan")}, good, champion_version="3")
    assert not unknown.promoted
    broken = decide(good, None, champion_version="3", champion_error="cannot load it")
    assert not broken.promoted and "cannot load" in broken.reason


def test_registry_logs_metrics_on_the_registering_run_and_gates(affinity_home):
    reviews = labelled_shop(400)
    first = train_and_register(reviews, as_of="2025-12-31")
    assert first.version == "1" and first.gate.promoted
    client = MlflowClient()
    version = client.get_model_version("affinity-review-sentiment", "1")
    run = mlflow.get_run(version.run_id)
    for name in ("roc_auc", "macro_f1", "rating_mae"):
        assert name in run.data.metrics
    assert run.data.tags["gate.decision"] == "champion"
    # Same reviews again: the new version ties with the champion on the same hold-out.
    second = train_and_register(reviews, as_of="2026-01-01")
    assert second.version == "2" and second.gate.champion is not None
    assert second.gate.promoted
    alias = client.get_model_version_by_alias("affinity-review-sentiment", "champion")
    assert str(alias.version) == "2"


def test_fallback_is_registered_and_tagged(affinity_home):
    run = train_and_register(labelled_shop(60), as_of="2025-12-31")
    assert run.training.is_fallback
    tags = mlflow.get_run(run.run_id).data.tags
    assert "min_train_texts" in tags["sentiment.fallback"]


def test_stage_trains_once_then_reuses_the_champion(affinity_home):
    reviews = labelled_shop(400)
    first = run_review_stage(reviews, as_of="2025-12-31")
    again = run_review_stage(reviews, as_of="2026-01-01")
    changed = run_review_stage(labelled_shop(420), as_of="2026-01-02")
    assert first.trained and not again.trained and changed.trained
    assert again.model_version == first.model_version == "1"
    assert first.review_sentiment.height == reviews.height
    assert set(first.product_aspects["product_id"]) == set(reviews["product_id"])
