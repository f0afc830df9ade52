"""The polars word n-grams count what scikit-learn's CountVectorizer counts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from ml.text.word_ngrams import WordNgrams

TEXTS = [
    "Runs small, too short!! but SOFT fabric",
    "I love it. Love it, love it",
    "a b c",  # single letters are no tokens
    "",
    "Too short too short too short",
    "Not flattering at all; not at all",
    "runs small",
    "soft fabric, runs small, too short",
    # An n-gram never spans two texts ("small too" below would, twice).
    "runs small",
    "too short",
    "runs small",
    "too short",
]


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (1, 3), (2, 3)])
def test_counts_equal_scikit_learn(ngram_range: tuple[int, int]) -> None:
    reference = CountVectorizer(ngram_range=ngram_range, min_df=2).fit(TEXTS)
    ours = WordNgrams(ngram_range, min_df=2).fit(TEXTS)
    # Both order the vocabulary alphabetically, so the columns line up.
    assert ours.vocabulary_["term"].to_list() == sorted(reference.vocabulary_)
    expected = reference.transform(TEXTS).toarray()
    assert expected.sum() > 0
    np.testing.assert_array_equal(ours.counts(TEXTS).toarray(), expected)
