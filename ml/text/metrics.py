"""From a predicted rating distribution to score, label, rating, and the evaluation metrics.

A model predicts, per review, a distribution over ratings 1-5. Everything published and
measured derives from it:

* ``sentiment_score`` = P(4-5) - P(1-2), in [-1, 1];
* ``sentiment_label`` = the most probable of negative (1-2), neutral (3), positive (4-5);
* the predicted rating = the median of the distribution (the smallest rating whose
  cumulative probability reaches 0.5: it minimises the expected absolute error).

Metric names are the issue's contract: ``roc_auc`` (negative 1-2 vs positive 4-5 reviews,
ranked by ``-sentiment_score``), ``macro_f1`` (three labels), ``rating_mae``.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

from ml.text.dataset import LABELS, RATINGS, rating_labels

METRIC_NAMES = ("roc_auc", "macro_f1", "rating_mae")


def sentiment_scores(distribution: np.ndarray) -> np.ndarray:
    """P(positive) - P(negative) per row of an ``n x 5`` rating distribution."""
    return distribution[:, 3:].sum(axis=1) - distribution[:, :2].sum(axis=1)


def label_indices(distribution: np.ndarray) -> np.ndarray:
    """0/1/2 (negative/neutral/positive): the most probable rating group."""
    groups = np.column_stack(
        [distribution[:, :2].sum(axis=1), distribution[:, 2], distribution[:, 3:].sum(axis=1)]
    )
    return groups.argmax(axis=1)


def sentiment_labels(distribution: np.ndarray) -> np.ndarray:
    """``negative`` / ``neutral`` / ``positive`` per row."""
    return np.asarray(LABELS, dtype=object)[label_indices(distribution)]


def median_ratings(distribution: np.ndarray) -> np.ndarray:
    """Median rating (1-5) of each row's distribution."""
    cumulative = np.cumsum(distribution, axis=1)
    # Rounding can leave the last cumulative value a hair under 0.5 only if all mass is
    # missing; argmax on an all-False row returns 0, i.e. rating 1, so guard with >= 0.5 - eps.
    return np.asarray(RATINGS)[(cumulative >= 0.5 - 1e-9).argmax(axis=1)]


def sentiment_metrics(ratings: np.ndarray, distribution: np.ndarray) -> dict[str, float]:
    """The evaluation metrics of predicted distributions against true ratings.

    Parameters
    ----------
    ratings : numpy.ndarray
        True ratings 1-5 of the hold-out reviews.
    distribution : numpy.ndarray
        ``n x 5`` predicted rating distributions, rows summing to 1.

    Returns
    -------
    dict
        ``roc_auc`` (NaN unless both negative and positive reviews are present),
        ``macro_f1``, ``rating_mae``, and the counts ``test_reviews``,
        ``test_negative``, ``test_positive``.
    """
    ratings = np.asarray(ratings)
    truth = rating_labels(ratings)
    polar = truth != 1
    negative = truth[polar] == 0
    roc_auc = (
        float(roc_auc_score(negative, -sentiment_scores(distribution)[polar]))
        if 0 < negative.sum() < len(negative)
        else float("nan")
    )
    return {
        "roc_auc": roc_auc,
        "macro_f1": float(
            f1_score(truth, label_indices(distribution), average="macro", labels=[0, 1, 2])
        ),
        "rating_mae": float(np.abs(median_ratings(distribution) - ratings).mean()),
        "test_reviews": float(len(ratings)),
        "test_negative": float((truth == 0).sum()),
        "test_positive": float((truth == 2).sum()),
    }
