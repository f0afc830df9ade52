"""The review sentiment model: trained on the shop's own ratings, or VADER when too few.

Recipe (:class:`SentimentConfig`): a scikit-learn ``Pipeline`` of
:class:`~ml.text.features.ReviewFeatures` (word and character n-gram TF-IDF, a title
block, VADER-lexicon features) and a multinomial ``LogisticRegression`` over the five
ratings (saga solver: ~6x faster than lbfgs on these million-column sparse matrices at
the same accuracy). Its predicted rating distribution gives score, label and rating
(:mod:`ml.text.metrics`).

Training (:func:`train_sentiment`) deduplicates texts, splits them (time, or random when
the dates are placeholders: :mod:`ml.text.dataset`), fits on the training part, evaluates
on the hold-out, then re-fits the same recipe on all texts for serving (the most recent
reviews are the most relevant ones). The bundled lexicon (:class:`LexiconSentiment`,
VADER's reference scorer) is the fallback: it serves when there are too few labelled
texts to train on, or when it beats the trained model on the hold-out; the reason is
recorded either way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from ml.text.dataset import RATINGS, Split, labelled_texts, rating_labels, split_reviews
from ml.text.features import ReviewFeatures, joined_texts, review_columns
from ml.text.metrics import sentiment_metrics

log = logging.getLogger(__name__)

MODEL_KIND = "logistic_regression"
# Spread (in stars) of the lexicon's rating distribution around its centre.
LEXICON_SPREAD = 0.75
LEXICON_KIND = "vader_lexicon"


@dataclass(frozen=True)
class SentimentConfig:
    """Recipe and thresholds of the sentiment model.

    Attributes
    ----------
    c : float
        Inverse L2 strength of the logistic regression (2.0: best rating MAE on Women's
        Clothing among 1, 2, 4, 10, 25; ROC AUC is flat in that range).
    tol, max_iter : float, int
        saga stopping rule. ``tol=1e-2`` stops after ~16 epochs with the hold-out metrics
        of ``1e-3`` (34 epochs) on Women's Clothing and without the non-convergence of
        ``1e-3`` on Amazon All Beauty (figures: ``bench/results/reviews.md``).
    word_ngrams, min_df, char_ngrams, char_features, title_block, lexicon, prior
        :class:`~ml.text.features.ReviewFeatures` parameters. Character 3-4-grams in 2**18
        columns measure the same as 3-5-grams in 2**20 columns, with fewer non-zeros (a
        faster fit and scoring) and a 4x smaller model. ``prior``: the bundled prior
        (:mod:`ml.text.sentiment_prior`) as a feature; chosen by 5-fold CV on Amazon All
        Beauty's time-split training part (mean fold ROC AUC 0.957 -> 0.968, better in 17
        of 20 folds; grouped by product 0.971 -> 0.978), then hold-out 0.937 -> 0.971
        (``bench/notes/sentiment_prior.md``).
    test_share : float
        Hold-out share of the distinct labelled texts.
    seed : int
        Seed of the solver and of the random split.
    min_distinct_days : int
        Fewer distinct review days: random split instead of a time split.
    min_train_texts : int
        Fewer distinct labelled texts in training: the lexicon serves.
    min_class_texts : int
        Fewer negative (1-2) or positive (4-5) training texts: the lexicon serves.
    max_train_texts : int
        Training uses at most this many texts, the most recent ones: the cap bounds the
        nightly cost (two fits: evaluated and serving) and keeps the whole review stage of
        a 100k-review shop within a minute; Women's Clothing reaches its figures with 18k.
    """

    c: float = 2.0
    tol: float = 1e-2
    max_iter: int = 300
    word_ngrams: tuple[int, int] = (1, 2)
    min_df: int = 2
    char_ngrams: tuple[int, int] | None = (3, 4)
    char_features: int = 1 << 18
    title_block: bool = True
    lexicon: bool = True
    prior: bool = True
    test_share: float = 0.2
    seed: int = 0
    min_distinct_days: int = 10
    min_train_texts: int = 200
    min_class_texts: int = 10
    max_train_texts: int = 25_000

    def params(self) -> dict[str, Any]:
        """Flat parameters for MLflow."""
        return {key: str(value) for key, value in self.__dict__.items()}


def build_pipeline(config: SentimentConfig) -> Pipeline:
    """The untrained recipe: features, then a multinomial logistic regression."""
    features = ReviewFeatures(
        word_ngrams=config.word_ngrams,
        min_df=config.min_df,
        char_ngrams=config.char_ngrams,
        char_features=config.char_features,
        title_block=config.title_block,
        lexicon=config.lexicon,
        prior=config.prior,
    )
    classifier = LogisticRegression(
        C=config.c,
        solver="saga",
        tol=config.tol,
        max_iter=config.max_iter,
        random_state=config.seed,
    )
    return Pipeline([("features", features), ("classifier", classifier)])


class LexiconSentiment(ClassifierMixin, BaseEstimator):
    """The bundled fallback: VADER's compound score as a rating distribution.

    A review with compound ``c`` in [-1, 1] gets a distribution centred on rating
    ``3 + 2c`` (:func:`compound_distribution`), so score, label and rating follow the same
    rules as for the trained model.
    """

    def fit(self, reviews: Any = None, ratings: Any = None) -> LexiconSentiment:
        self.classes_ = np.asarray(RATINGS)
        return self

    def predict_proba(self, reviews: Any) -> np.ndarray:
        titles, bodies = review_columns(reviews)
        return compound_distribution(vader_compound(joined_texts(titles, bodies)))

    def predict(self, reviews: Any) -> np.ndarray:
        return np.asarray(RATINGS)[self.predict_proba(reviews).argmax(axis=1)]


_ANALYZER: SentimentIntensityAnalyzer | None = None


def vader_compound(texts: list[str]) -> np.ndarray:
    """VADER's compound score of each text (0 for an empty one)."""
    global _ANALYZER
    if _ANALYZER is None:
        _ANALYZER = SentimentIntensityAnalyzer()
    return np.array(
        [_ANALYZER.polarity_scores(text)["compound"] if text else 0.0 for text in texts],
        dtype=np.float64,
    )


def compound_distribution(compound: np.ndarray, spread: float = LEXICON_SPREAD) -> np.ndarray:
    """Rating distributions centred on ``3 + 2 * compound`` (see :class:`LexiconSentiment`).

    ``P(r)`` is proportional to ``exp(-(r - centre)^2 / (2 spread^2))``: the score
    P(4-5) - P(1-2) rises strictly with the compound (no ties among strong reviews) and the
    median is the rating nearest the centre.
    """
    centre = 3.0 + 2.0 * np.asarray(compound, dtype=np.float64)
    ratings = np.asarray(RATINGS, dtype=np.float64)
    logits = -((ratings[None, :] - centre[:, None]) ** 2) / (2.0 * spread**2)
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def rating_distribution(model: Any, reviews: Any) -> np.ndarray:
    """``n x 5`` predicted distribution over ratings 1-5 (ratings unseen in training: 0)."""
    probabilities = model.predict_proba(reviews)
    distribution = np.zeros((probabilities.shape[0], len(RATINGS)))
    for column, rating in enumerate(np.asarray(model.classes_).astype(int)):
        distribution[:, rating - 1] = probabilities[:, column]
    return distribution


@dataclass
class SentimentTraining:
    """The outcome of :func:`train_sentiment`.

    Attributes
    ----------
    kind : str
        ``logistic_regression`` or ``vader_lexicon`` (what serves).
    model : estimator
        The serving model (``predict_proba`` over ``classes_``).
    evaluated : estimator or None
        The model fitted on the training part only (None when the lexicon serves because
        there was too little to train on).
    metrics : dict
        Hold-out metrics of what serves (``roc_auc``, ``macro_f1``, ``rating_mae`` and
        counts); empty when the hold-out is empty.
    lexicon_metrics : dict
        The lexicon's metrics on the same hold-out (the baseline to beat).
    split : Split
    reason : str
        Why this kind serves, in one sentence.
    sizes : dict
        ``labelled_texts``, ``train_texts``, ``test_texts``, ``train_negative``,
        ``train_positive``.
    seconds : dict
        ``fit_evaluated``, ``evaluate``, ``fit_serving``.
    test : polars.DataFrame
        The hold-out texts (to evaluate a champion on the same texts).
    """

    kind: str
    model: Any
    evaluated: Any
    metrics: dict[str, float]
    lexicon_metrics: dict[str, float]
    split: Split
    reason: str
    sizes: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    test: pl.DataFrame | None = None

    @property
    def is_fallback(self) -> bool:
        return self.kind == LEXICON_KIND


def evaluate_model(model: Any, test: pl.DataFrame) -> dict[str, float]:
    """Metrics of ``model`` on hold-out texts (empty dict when there are none)."""
    if test.height == 0:
        return {}
    return sentiment_metrics(test["rating"].to_numpy(), rating_distribution(model, test))


def split_for_training(
    texts: pl.DataFrame, config: SentimentConfig
) -> tuple[pl.DataFrame, pl.DataFrame, Split]:
    """Train and hold-out parts of :func:`~ml.text.dataset.labelled_texts` output, split as
    :func:`train_sentiment` splits them (what the benchmarks and the prior's build reuse)."""
    return split_reviews(
        texts,
        test_share=config.test_share,
        seed=config.seed,
        min_distinct_days=config.min_distinct_days,
    )


def train_sentiment(
    reviews: pl.DataFrame, config: SentimentConfig | None = None
) -> SentimentTraining:
    """Train, evaluate and choose the serving sentiment model from the shop's reviews.

    Parameters
    ----------
    reviews : polars.DataFrame
        ``review_id, rating, title, body, created_at`` (the reviews entity).
    config : SentimentConfig, optional

    Returns
    -------
    SentimentTraining
    """
    config = config or SentimentConfig()
    texts = labelled_texts(reviews)
    train, test, split = split_for_training(texts, config)
    train = _most_recent(train, config.max_train_texts)
    labels = rating_labels(train["rating"].to_numpy())
    sizes = {
        "labelled_texts": texts.height,
        "train_texts": train.height,
        "test_texts": test.height,
        "train_negative": int((labels == 0).sum()),
        "train_positive": int((labels == 2).sum()),
    }
    lexicon = LexiconSentiment().fit()
    lexicon_metrics = evaluate_model(lexicon, test)
    too_few = _too_few(sizes, config)
    if too_few:
        log.warning("review sentiment: %s; the bundled VADER lexicon serves", too_few)
        return SentimentTraining(
            LEXICON_KIND, lexicon, None, lexicon_metrics, lexicon_metrics, split, too_few, sizes,
            test=test,
        )  # fmt: skip

    seconds = {}
    started = time.perf_counter()
    evaluated = build_pipeline(config).fit(train, train["rating"].to_numpy())
    seconds["fit_evaluated"] = time.perf_counter() - started
    started = time.perf_counter()
    metrics = evaluate_model(evaluated, test)
    seconds["evaluate"] = time.perf_counter() - started
    if _lexicon_wins(metrics, lexicon_metrics):
        reason = (
            f"the bundled VADER lexicon beats the trained model on the hold-out "
            f"(ROC AUC {lexicon_metrics['roc_auc']:.4f} vs {metrics['roc_auc']:.4f})"
        )
        log.warning("review sentiment: %s; it serves", reason)
        return SentimentTraining(
            LEXICON_KIND, lexicon, evaluated, lexicon_metrics, lexicon_metrics, split, reason,
            sizes, seconds, test,
        )  # fmt: skip
    started = time.perf_counter()
    everything = _most_recent(texts, config.max_train_texts)
    serving = build_pipeline(config).fit(everything, everything["rating"].to_numpy())
    seconds["fit_serving"] = time.perf_counter() - started
    reason = (
        f"trained on {sizes['train_texts']:,} distinct labelled texts ({split.method} split); "
        f"hold-out ROC AUC {metrics.get('roc_auc', float('nan')):.4f} vs the lexicon's "
        f"{lexicon_metrics.get('roc_auc', float('nan')):.4f}; serving model re-fit on "
        f"{everything.height:,} texts"
    )
    log.info("review sentiment: %s", reason)
    return SentimentTraining(
        MODEL_KIND, serving, evaluated, metrics, lexicon_metrics, split, reason, sizes, seconds,
        test,
    )  # fmt: skip


def _most_recent(texts: pl.DataFrame, limit: int) -> pl.DataFrame:
    """At most ``limit`` texts, the most recent (ties by review id: deterministic)."""
    if texts.height <= limit:
        return texts
    return texts.sort(["created_at", "review_id"]).tail(limit)


def _too_few(sizes: dict[str, int], config: SentimentConfig) -> str | None:
    """Why there is too little to train on, or None."""
    if sizes["train_texts"] < config.min_train_texts:
        return (
            f"only {sizes['train_texts']} distinct labelled review texts to train on "
            f"(< min_train_texts={config.min_train_texts})"
        )
    weakest = min(sizes["train_negative"], sizes["train_positive"])
    if weakest < config.min_class_texts:
        return (
            f"only {sizes['train_negative']} negative and {sizes['train_positive']} positive "
            f"training texts (< min_class_texts={config.min_class_texts} of each)"
        )
    return None


def _lexicon_wins(metrics: dict[str, float], lexicon_metrics: dict[str, float]) -> bool:
    """True when the lexicon ranks the hold-out strictly better than the trained model."""
    model_auc = metrics.get("roc_auc", float("nan"))
    lexicon_auc = lexicon_metrics.get("roc_auc", float("nan"))
    return bool(np.isfinite(lexicon_auc) and np.isfinite(model_auc) and lexicon_auc > model_auc)
