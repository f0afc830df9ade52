"""Review text -> sparse features: the first step of the sentiment pipeline.

Blocks (all scaled to about [-1, 1], so one L2 penalty suits them all):

* word uni- and bigram TF-IDF of title and body together (vocabulary fitted on the
  training texts, sublinear tf; counted by polars, :mod:`ml.text.word_ngrams`);
* word uni- and bigram TF-IDF of the title alone: titles ("Runs small", "Don't buy",
  "Love it!") carry the verdict, and a separate block lets the model weigh them apart
  (+0.004 ROC AUC on Women's Clothing, +0.015 on Amazon All Beauty);
* character 3-5-gram TF-IDF inside words, hashed (:mod:`ml.text.char_ngrams`): spelling
  variants, "soooo", misspellings and words never seen in training;
* VADER-lexicon features of the whole text (:mod:`ml.text.lexicon`);
* VADER's reference scores of the title (compound, positive, negative): cheap on a few
  words, and they read capitals and "!" that the batch lexicon features do not;
* the bundled prior's verdict, ``tanh(log_odds / 2)`` (:mod:`ml.text.sentiment_prior`):
  what a model trained on 16k public reviews thinks, for shops with few labelled
  negatives (Amazon All Beauty hold-out ROC AUC 0.937 -> 0.971).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfTransformer
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from ml.text.char_ngrams import N_FEATURES, char_ngram_counts
from ml.text.lexicon import lexicon_features
from ml.text.sentiment_prior import load_prior, prior_log_odds
from ml.text.word_ngrams import WordNgrams


def review_columns(reviews: Any) -> tuple[list[str], list[str]]:
    """Titles and bodies of a polars/pandas frame or a dict with ``title`` and ``body``.

    Missing values become ``""``.
    """
    if isinstance(reviews, pl.DataFrame):
        frame = reviews.select(
            pl.col("title").cast(pl.String).fill_null(""),
            pl.col("body").cast(pl.String).fill_null(""),
        )
        return frame["title"].to_list(), frame["body"].to_list()
    titles, bodies = reviews["title"], reviews["body"]
    return [_text(t) for t in list(titles)], [_text(b) for b in list(bodies)]


def _weighted(
    fitted: tuple[WordNgrams, TfidfTransformer] | None, texts: list[str]
) -> sp.csr_matrix:
    """TF-IDF of ``texts`` over a fitted vocabulary (no columns when there is none)."""
    if fitted is None:
        return sp.csr_matrix((len(texts), 0), dtype=np.float32)
    vocabulary, weights = fitted
    return weights.transform(vocabulary.counts(texts)).astype(np.float32)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


class ReviewFeatures(TransformerMixin, BaseEstimator):
    """Featurise reviews (``title``, ``body``) for a linear model.

    Parameters
    ----------
    word_ngrams : (int, int)
        Word n-gram range of the title+body and title blocks.
    min_df : int
        Minimum number of training texts a word n-gram must occur in.
    char_ngrams : (int, int) or None
        Character n-gram range in bytes; None drops the block.
    char_features : int
        Hash columns of the character block (a power of two).
    title_block : bool
        Whether to add the title-only word block.
    lexicon : bool
        Whether to add the VADER-lexicon features and the title's VADER scores.
    prior : bool
        Whether to add the bundled prior's ``tanh(log_odds / 2)`` as one column.
    """

    def __init__(
        self,
        word_ngrams: tuple[int, int] = (1, 2),
        min_df: int = 2,
        char_ngrams: tuple[int, int] | None = (3, 5),
        char_features: int = N_FEATURES,
        title_block: bool = True,
        lexicon: bool = True,
        prior: bool = False,
    ):
        self.word_ngrams = word_ngrams
        self.min_df = min_df
        self.char_ngrams = char_ngrams
        self.char_features = char_features
        self.title_block = title_block
        self.lexicon = lexicon
        self.prior = prior

    def fit(self, reviews: Any, y: Any = None) -> ReviewFeatures:
        """Fit vocabularies and IDF weights on training reviews."""
        self.fit_transform(reviews, y)
        return self

    def fit_transform(self, reviews: Any, y: Any = None, **_: Any) -> sp.csr_matrix:
        titles, bodies = review_columns(reviews)
        texts = joined_texts(titles, bodies)
        self.words_ = self._fit_words(texts)
        if self.title_block:
            self.titles_ = self._fit_words(titles)
        if self.char_ngrams is not None:
            counts = char_ngram_counts(texts, tuple(self.char_ngrams), self.char_features)
            self.chars_ = TfidfTransformer(sublinear_tf=True).fit(counts)
        if self._with_prior:
            self.prior_fingerprint_ = load_prior().fingerprint()
        blocks = self._blocks(titles, texts)
        self.n_features_out_ = sum(block.shape[1] for block in blocks)
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    def transform(self, reviews: Any) -> sp.csr_matrix:
        """Features of reviews, in the fitted column space."""
        titles, bodies = review_columns(reviews)
        return sp.hstack(
            self._blocks(titles, joined_texts(titles, bodies)), format="csr", dtype=np.float32
        )

    def _blocks(self, titles: list[str], texts: list[str]) -> list[sp.csr_matrix]:
        blocks = [_weighted(self.words_, texts)]
        if self.title_block:
            blocks.append(_weighted(self.titles_, titles))
        if self.char_ngrams is not None:
            counts = char_ngram_counts(texts, tuple(self.char_ngrams), self.char_features)
            blocks.append(self.chars_.transform(counts).astype(np.float32))
        if self.lexicon:
            blocks.append(sp.csr_matrix(self._lexicon_block(titles, texts)))
        if self._with_prior:
            verdict = np.tanh(prior_log_odds(texts) / 2.0).astype(np.float32)
            blocks.append(sp.csr_matrix(verdict[:, None]))
        return blocks

    @property
    def _with_prior(self) -> bool:
        # Models pickled before the prior existed have no ``prior`` attribute.
        return bool(getattr(self, "prior", False))

    def _fit_words(self, texts: list[str]) -> tuple[WordNgrams, TfidfTransformer] | None:
        """A vocabulary and its IDF weights, or None when no n-gram is frequent enough."""
        vocabulary = WordNgrams(tuple(self.word_ngrams), self.min_df).fit(texts)
        if vocabulary.n_terms == 0:  # e.g. a shop whose reviews have no titles
            return None
        return vocabulary, TfidfTransformer(sublinear_tf=True).fit(vocabulary.counts(texts))

    @staticmethod
    def _lexicon_block(titles: list[str], texts: list[str]) -> np.ndarray:
        return np.hstack([lexicon_features(texts), title_vader_scores(titles)])


_VADER: SentimentIntensityAnalyzer | None = None


def title_vader_scores(titles: list[str]) -> np.ndarray:
    """VADER's compound, positive and negative score per title (zeros for no title)."""
    global _VADER
    if _VADER is None:
        _VADER = SentimentIntensityAnalyzer()
    # Titles repeat ("Love it!", "Five Stars", "Runs small"): score each distinct one once.
    distinct: dict[str, tuple[float, float, float]] = {"": (0.0, 0.0, 0.0)}
    for title in titles:
        if title not in distinct:
            result = _VADER.polarity_scores(title)
            distinct[title] = (result["compound"], result["pos"], result["neg"])
    return np.array([distinct[title] for title in titles], dtype=np.float32).reshape(-1, 3)


def joined_texts(titles: list[str], bodies: list[str]) -> list[str]:
    """Title and body as one text (the title first, as the reviewer wrote it)."""
    return [f"{t}. {b}" if t and b else t or b for t, b in zip(titles, bodies, strict=True)]
