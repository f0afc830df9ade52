"""The bundled sentiment prior: its file, its arithmetic, and its use by the shop's model."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from ml.text.features import ReviewFeatures
from ml.text.sentiment import SentimentConfig, train_sentiment
from ml.text.sentiment_prior import (
    PRIOR_PATH,
    PriorSentiment,
    PriorWeights,
    fit_prior,
    load_prior,
    prior_log_odds,
)

PRAISE = [
    "Love it, fits perfectly and the colour is gorgeous.",
    "So soft and comfortable, I bought it in two colours.",
    "Great quality for the price, highly recommend.",
    "Beautiful, flattering and true to size.",
    "Perfect, exactly as pictured, I wear it all the time.",
]
COMPLAINTS = [
    "Cheap material, it fell apart after one wash. Returned it.",
    "Very disappointed, poor quality and it looks nothing like the picture.",
    "Waste of money, the seams ripped the first day.",
    "Unflattering and itchy, sending it back.",
    "Horrible, it shrank and the colour faded. Do not buy.",
]

# Later reviews, worded unlike the shop's earlier ones and mostly without lexicon words
# (VADER cannot read "returned it" or "bought a second one").
LATER_PRAISE = [
    "Bought a second one in black.",
    "Fits true to size and washes well.",
    "I wear it every weekend.",
    "My go-to top this summer.",
    "Ordering another colour.",
]
LATER_COMPLAINTS = [
    "Returned it the next day.",
    "Runs very small and the seams ripped.",
    "It shrank after one wash.",
    "Sending it back, the zipper broke.",
    "See-through fabric, had to return it.",
]


def test_the_bundled_prior_loads_offline_and_separates_obvious_reviews():
    weights = load_prior()
    assert PRIOR_PATH.stat().st_size < 3_000_000  # weights only, small enough to ship
    assert weights.terms.size == weights.idf.size == weights.coef.size > 10_000
    assert "CC0" in weights.meta["corpus"] and "training part" in weights.meta["split"]
    odds = prior_log_odds(PRAISE + COMPLAINTS)
    # Ranked apart (the prior's intercept leans positive: 88 % of its training is 4-5 stars).
    assert odds[: len(PRAISE)].min() > odds[len(PRAISE) :].max()
    # Reloading gives the same weights (what a registered model's fingerprint refers to).
    assert PriorWeights.load(PRIOR_PATH).fingerprint() == weights.fingerprint()


def test_log_odds_reproduce_the_fitted_logistic_regression(tmp_path):
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    from ml.text.word_ngrams import WordNgrams

    texts = (PRAISE + COMPLAINTS) * 3
    positive = np.array(([1] * len(PRAISE) + [0] * len(COMPLAINTS)) * 3)
    weights = fit_prior(texts, positive, ngram_range=(1, 3), min_df=2, c=1.0)
    weights.save(tmp_path / "prior.npz")
    # The reference: scikit-learn's TF-IDF and decision function on the same vocabulary.
    vocabulary = WordNgrams((1, 3), 2).fit(texts)
    counts = vocabulary.counts(texts)
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    model = LogisticRegression(C=1.0, solver="liblinear").fit(tfidf.transform(counts), positive)
    unseen = ["love it, great quality", "cheap and disappointed", "zzz qqq", ""]
    expected = model.decision_function(tfidf.transform(vocabulary.counts(unseen)))
    got = prior_log_odds(unseen, tmp_path / "prior.npz")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_the_prior_is_one_more_feature_column_and_old_models_still_transform():
    reviews = pl.DataFrame({"title": ["Love it", None, "Returned"], "body": PRAISE[:1] * 3})
    without = ReviewFeatures(char_ngrams=None, min_df=1).fit(reviews)
    with_prior = ReviewFeatures(char_ngrams=None, min_df=1, prior=True).fit(reviews)
    a, b = without.transform(reviews), with_prior.transform(reviews)
    assert b.shape[1] == a.shape[1] + 1
    texts = ["Love it. " + PRAISE[0], PRAISE[0], "Returned. " + PRAISE[0]]
    np.testing.assert_allclose(
        b[:, -1].toarray().ravel(), np.tanh(prior_log_odds(texts) / 2), rtol=1e-6
    )
    assert with_prior.prior_fingerprint_ == load_prior().fingerprint()
    del with_prior.prior  # a model pickled before the prior existed
    assert with_prior.transform(reviews).shape[1] == a.shape[1]


def few_negatives_shop(seed: int = 0) -> pl.DataFrame:
    """A shop with 12 negative training texts in one wording; later complaints use others.

    Training (the first 80 % by date) words its complaints only as "not what I expected";
    the hold-out's praise and complaints are worded in ways the shop never saw.
    """
    rng = np.random.default_rng(seed)
    rows, start = [], datetime(2025, 1, 1)
    n_train, n_test = 400, 100
    for i in range(n_train + n_test):
        in_test = i >= n_train
        if (in_test and i % 4 == 0) or (not in_test and i % 33 == 0):
            rating = int(rng.choice([1, 2]))
            body = LATER_COMPLAINTS[i % 5] if in_test else "Not what I expected."
        else:
            rating = int(rng.choice([4, 5]))
            body = (LATER_PRAISE if in_test else PRAISE)[i % 5]
        created = start + timedelta(days=i)
        rows.append((f"R{i:04d}", f"P{i % 7}", rating, None, f"{body} Order {i}.", created))
    return pl.DataFrame(
        rows,
        schema={
            "review_id": pl.String,
            "product_id": pl.String,
            "rating": pl.Int32,
            "title": pl.String,
            "body": pl.String,
            "created_at": pl.Datetime("us"),
        },
        orient="row",
    )


def test_the_prior_helps_a_shop_with_few_negatives():
    shop = few_negatives_shop()
    with_prior = train_sentiment(shop, SentimentConfig(prior=True))
    without = train_sentiment(shop, SentimentConfig(prior=False))
    assert with_prior.split.method == "time" and with_prior.sizes["train_negative"] >= 10
    assert with_prior.metrics["roc_auc"] > without.metrics["roc_auc"] + 0.1
    assert with_prior.metrics["roc_auc"] > 0.9


def test_the_prior_alone_scores_like_a_fallback():
    frame = pl.DataFrame({"title": [None] * 10, "body": PRAISE + COMPLAINTS})
    distribution = PriorSentiment().fit().predict_proba(frame)
    np.testing.assert_allclose(distribution.sum(axis=1), 1.0)
    score = distribution[:, 3:].sum(axis=1) - distribution[:, :2].sum(axis=1)
    assert roc_auc_score([1] * 5 + [0] * 5, score) == 1.0
