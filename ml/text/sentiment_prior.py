"""A bundled prior sentiment model: review-text log-odds learned from a public corpus.

A small shop has too few labelled negative reviews to learn what a complaint looks like
(Amazon All Beauty's time split leaves 19 negatives to train on), and VADER, the other
bundled signal, reads words but not review idiom ("runs small", "returned it", "waste of
money"). The prior is a binary logistic regression (1-2 stars vs 4-5) on word uni- and
trigram TF-IDF, trained once on the CC0 Women's Clothing reviews by
``scripts/build_sentiment_prior.py``; only its vocabulary, IDF weights and coefficients
ship, in ``ml/text/data/sentiment_prior.npz`` (no review text).

Its log-odds is one feature of the shop's own model (:class:`~ml.text.features.ReviewFeatures`,
``prior=True``). :class:`PriorSentiment` scores with the prior alone, the candidate for a
stronger small-shop fallback than VADER (measured in ``bench/experiment_sentiment_prior.py``;
the fallback is still VADER's lexicon).
Scoring is a polars join of each text's n-grams with the vocabulary (tokens as in
:mod:`ml.text.word_ngrams`) and numpy sums: ~2.5 CPU seconds per 100k reviews.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ml.text.word_ngrams import ngram_table

PRIOR_PATH = Path(__file__).resolve().parent / "data" / "sentiment_prior.npz"


@dataclass(frozen=True)
class PriorWeights:
    """A fitted prior: per-term IDF and coefficient, intercept, and where it came from.

    Attributes
    ----------
    terms : numpy.ndarray
        Word n-grams (str), the vocabulary.
    idf, coef : numpy.ndarray
        float32 per term: smoothed IDF (scikit-learn's) and the logistic coefficient
        (positive = more likely a positive review).
    intercept : float
    ngram_range : (int, int)
    meta : dict
        Provenance (corpus, split, sizes, regularisation), stored as JSON in the file.
    """

    terms: np.ndarray
    idf: np.ndarray
    coef: np.ndarray
    intercept: float
    ngram_range: tuple[int, int]
    meta: dict[str, Any]

    def fingerprint(self) -> str:
        """A short hash of the weights (logged with a model that uses them)."""
        digest = hashlib.blake2b(digest_size=8)
        for part in (self.terms.astype("U").tobytes(), self.idf.tobytes(), self.coef.tobytes()):
            digest.update(part)
        digest.update(np.float64(self.intercept).tobytes())
        return digest.hexdigest()

    def save(self, path: Path) -> None:
        """Write the weights as a compressed ``.npz`` (no pickled objects)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            terms=self.terms.astype("U"),
            idf=self.idf.astype(np.float32),
            coef=self.coef.astype(np.float32),
            intercept=np.float64(self.intercept),
            ngram_range=np.asarray(self.ngram_range, dtype=np.int64),
            meta=np.asarray(json.dumps(self.meta, sort_keys=True)),
        )

    @classmethod
    def load(cls, path: Path) -> PriorWeights:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                terms=data["terms"],
                idf=data["idf"],
                coef=data["coef"],
                intercept=float(data["intercept"]),
                ngram_range=tuple(int(n) for n in data["ngram_range"]),
                meta=json.loads(str(data["meta"])),
            )

    def vocabulary(self) -> pl.DataFrame:
        """``term, column`` as a polars frame (the join side of scoring)."""
        return pl.DataFrame({"term": self.terms.tolist()}, schema={"term": pl.String}).select(
            "term", pl.int_range(pl.len(), dtype=pl.Int64).alias("column")
        )


_LOADED: dict[Path, tuple[PriorWeights, pl.DataFrame]] = {}


def load_prior(path: Path | None = None) -> PriorWeights:
    """The bundled prior (read once per process).

    Raises
    ------
    FileNotFoundError
        When the weights file is missing: rebuild it with
        ``python scripts/build_sentiment_prior.py`` or reinstall the package.
    """
    return _cached(path or PRIOR_PATH)[0]


def _cached(path: Path) -> tuple[PriorWeights, pl.DataFrame]:
    if path not in _LOADED:
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: rebuild it with `python scripts/build_sentiment_prior.py` "
                "(needs ../shared/data) or reinstall the affinity package"
            )
        weights = PriorWeights.load(path)
        _LOADED[path] = (weights, weights.vocabulary())
    return _LOADED[path]


def prior_log_odds(texts: list[str], path: Path | None = None) -> np.ndarray:
    """The prior's log-odds that each text is a positive (4-5 star) review.

    TF-IDF as the prior was trained with (sublinear tf times IDF, each row L2-normalised
    over the vocabulary's terms), dotted with the coefficients, plus the intercept. A text
    without known n-grams gets the intercept.
    """
    weights, vocabulary = _cached(path or PRIOR_PATH)
    if not texts:
        return np.zeros(0, dtype=np.float64)
    # Join the n-grams with the vocabulary first, then count (doc, column) pairs as integer
    # keys: 3-4x less CPU than counting (doc, term) strings (~2.5 CPU s per 100k reviews).
    found = ngram_table(texts, weights.ngram_range).join(vocabulary, on="term", how="inner")
    n_terms = vocabulary.height
    keys, counts = np.unique(
        found["doc"].to_numpy().astype(np.int64) * n_terms + found["column"].to_numpy(),
        return_counts=True,
    )
    doc, column = keys // n_terms, keys % n_terms
    weight = (np.log(counts) + 1.0) * weights.idf[column].astype(np.float64)
    dot = np.bincount(doc, weight * weights.coef[column], minlength=len(texts))
    norm = np.sqrt(np.bincount(doc, weight * weight, minlength=len(texts)))
    out = np.full(len(texts), weights.intercept, dtype=np.float64)
    known = norm > 0
    out[known] += dot[known] / norm[known]
    return out


def fit_prior(
    texts: list[str],
    positive: np.ndarray,
    *,
    ngram_range: tuple[int, int] = (1, 3),
    min_df: int = 3,
    c: float = 1.0,
    meta: dict[str, Any] | None = None,
) -> PriorWeights:
    """Fit a prior on labelled texts (negative 1-2 stars = 0, positive 4-5 = 1).

    Parameters
    ----------
    texts : list of str
        Review texts (title and body joined).
    positive : numpy.ndarray
        1 for a positive review, 0 for a negative one (neutral reviews left out).
    ngram_range, min_df
        Word n-grams and the number of texts a term needs to enter the vocabulary.
    c : float
        Inverse L2 strength of the logistic regression.
    meta : dict, optional
        Provenance stored with the weights.
    """
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression

    from ml.text.word_ngrams import WordNgrams

    vocabulary = WordNgrams(ngram_range, min_df).fit(texts)
    counts = vocabulary.counts(texts)
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    model = LogisticRegression(C=c, solver="liblinear", max_iter=1000)
    model.fit(tfidf.transform(counts), np.asarray(positive).astype(int))
    return PriorWeights(
        terms=np.asarray(vocabulary.vocabulary_["term"].to_list(), dtype="U"),
        idf=tfidf.idf_.astype(np.float32),
        coef=model.coef_[0].astype(np.float32),
        intercept=float(model.intercept_[0]),
        ngram_range=tuple(ngram_range),
        meta={**(meta or {}), "min_df": min_df, "c": c, "terms": vocabulary.n_terms},
    )


class PriorSentiment:
    """The bundled prior alone as a scorer: its log-odds as a rating distribution (not yet
    the pipeline's fallback: see the module docstring).

    ``tanh(log_odds / 2)`` (= P(positive) - P(negative) of the binary prior) takes the
    place of VADER's compound in :func:`~ml.text.sentiment.compound_distribution`, so
    score, label and rating follow the same rules as the lexicon fallback.
    """

    def fit(self, reviews: Any = None, ratings: Any = None) -> PriorSentiment:
        from ml.text.dataset import RATINGS

        self.classes_ = np.asarray(RATINGS)
        return self

    def predict_proba(self, reviews: Any) -> np.ndarray:
        from ml.text.features import joined_texts, review_columns
        from ml.text.sentiment import compound_distribution

        titles, bodies = review_columns(reviews)
        return compound_distribution(np.tanh(prior_log_odds(joined_texts(titles, bodies)) / 2))

    def predict(self, reviews: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(reviews).argmax(axis=1)]
