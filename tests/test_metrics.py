"""Ranking metrics against hand-computed cases (and NDCG against scikit-learn)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import ndcg_score

from ml.train import metrics

N_PRODUCTS = 10


def truth_matrix(rows: list[list[int]]) -> sp.csr_matrix:
    data = [(r, c) for r, cols in enumerate(rows) for c in cols]
    row = [r for r, _ in data]
    col = [c for _, c in data]
    return sp.csr_matrix((np.ones(len(data)), (row, col)), shape=(len(rows), N_PRODUCTS))


# Customer 0: ranks 2 and 4 hit, 3 relevant items. Customer 1: rank 1 hits its only item
# (the rest of its list is padding). Customer 2: nothing relevant (not evaluated).
RECOMMENDED = np.array([[3, 1, 7, 2], [5, -1, -1, -1], [0, 1, 2, 3]])
TRUTH = truth_matrix([[1, 2, 5], [5], []])
LOG2_3, LOG2_5 = math.log2(3), math.log2(5)


def test_hits_mark_relevant_ranks_and_never_padding():
    hit = metrics.hits(RECOMMENDED, TRUTH)
    assert hit.tolist() == [
        [False, True, False, True],
        [True, False, False, False],
        [False, False, False, False],
    ]


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (
            2,
            {
                "precision": 1 / 2,
                "recall": 1 / 3,
                "ndcg": (1 / LOG2_3) / (1 + 1 / LOG2_3),
                "map": (1 / 2) / 2,
            },
        ),
        (
            4,
            {
                "precision": 2 / 4,
                "recall": 2 / 3,
                "ndcg": (1 / LOG2_3 + 1 / LOG2_5) / (1 + 1 / LOG2_3 + 1 / 2),
                "map": (1 / 2 + 2 / 4) / 3,
            },
        ),
    ],
)
def test_per_customer_figures_match_hand_computation(k, expected):
    figures = metrics.per_customer_metrics(RECOMMENDED, TRUTH, ks=(k,))
    for name, value in expected.items():
        assert figures[f"{name}_at_{k}"][0] == pytest.approx(value), name
    # Customer 1: one relevant item, found at rank 1.
    assert figures[f"precision_at_{k}"][1] == pytest.approx(1 / k)
    assert figures[f"recall_at_{k}"][1] == 1.0
    assert figures[f"ndcg_at_{k}"][1] == 1.0
    assert figures[f"map_at_{k}"][1] == 1.0
    # Customer 2 has no truth: not evaluated.
    assert all(np.isnan(values[2]) for values in figures.values())


def test_means_skip_customers_without_truth_and_honour_masks():
    figures = metrics.per_customer_metrics(RECOMMENDED, TRUTH, ks=(2,))
    means = metrics.mean_metrics(figures)
    assert means["precision_at_2"] == pytest.approx(0.5)
    assert means["recall_at_2"] == pytest.approx((1 / 3 + 1) / 2)
    only_first = metrics.mean_metrics(figures, mask=np.array([True, False, False]))
    assert only_first["recall_at_2"] == pytest.approx(1 / 3)
    nobody = metrics.mean_metrics(figures, mask=np.array([False, False, True]))
    assert math.isnan(nobody["ndcg_at_2"])


def test_lists_shorter_than_k_count_the_missing_ranks_as_misses():
    short = RECOMMENDED[:, :2]
    figures = metrics.per_customer_metrics(short, TRUTH, ks=(4,))
    assert figures["precision_at_4"][0] == pytest.approx(1 / 4)
    assert figures["recall_at_4"][0] == pytest.approx(1 / 3)


def test_metric_names_are_the_logged_ones():
    names = set(metrics.per_customer_metrics(RECOMMENDED, TRUTH, ks=(10, 20)))
    assert names == {
        f"{metric}_at_{k}" for metric in ("precision", "recall", "ndcg", "map") for k in (10, 20)
    }


def test_ndcg_agrees_with_scikit_learn_on_random_cases():
    rng = np.random.default_rng(7)
    n_customers, k = 50, 5
    recommended = np.stack([rng.permutation(N_PRODUCTS) for _ in range(n_customers)])
    relevant = rng.random((n_customers, N_PRODUCTS)) < 0.3
    relevant[:, 0] = True  # everyone has at least one relevant item
    ours = metrics.per_customer_metrics(recommended, sp.csr_matrix(relevant), ks=(k,))
    # scikit-learn wants scores: give rank r of the list the score N - r.
    scores = np.zeros((n_customers, N_PRODUCTS))
    np.put_along_axis(scores, recommended, np.arange(N_PRODUCTS, 0, -1)[None, :], axis=1)
    for customer in range(n_customers):
        expected = ndcg_score(
            relevant[customer : customer + 1], scores[customer : customer + 1], k=k
        )
        assert ours[f"ndcg_at_{k}"][customer] == pytest.approx(expected)


def test_recall_curve_is_cumulative_mean_recall():
    curve = metrics.recall_curve(RECOMMENDED, TRUTH, max_k=4)
    # Customer 0: 0, 1/3, 1/3, 2/3; customer 1: 1, 1, 1, 1; customer 2 not evaluated.
    assert curve == pytest.approx([0.5, 2 / 3, 2 / 3, 5 / 6])


def test_catalog_coverage_counts_distinct_products_in_top_k():
    # Top 2 lists: {3, 1}, {5}, {0, 1} -> 4 distinct products out of 10.
    assert metrics.catalog_coverage(RECOMMENDED, N_PRODUCTS, k=2) == pytest.approx(0.4)
    assert metrics.catalog_coverage(RECOMMENDED, N_PRODUCTS, k=4) == pytest.approx(0.6)


def test_popularity_percentiles_and_bias():
    assert metrics.popularity_percentiles(np.array([1, 2, 3, 4])) == pytest.approx(
        [0.25, 0.5, 0.75, 1.0]
    )
    # Ties share their mean rank.
    assert metrics.popularity_percentiles(np.array([5, 5, 1])) == pytest.approx(
        [2.5 / 3, 2.5 / 3, 1 / 3]
    )
    popularity = np.arange(N_PRODUCTS, dtype=float)  # product 9 is the most popular
    recommended = np.array([[9, 8], [0, -1]])
    # Percentiles: 9 -> 1.0, 8 -> 0.9, 0 -> 0.1; padding ignored.
    assert metrics.popularity_bias(recommended, popularity, k=2) == pytest.approx(2.0 / 3)


def test_recommendation_frequency_counts_lists_per_product():
    frequency = metrics.recommendation_frequency(RECOMMENDED, N_PRODUCTS, k=2)
    assert frequency.tolist() == [1, 2, 0, 1, 0, 1, 0, 0, 0, 0]


def test_misaligned_inputs_say_what_to_pass():
    with pytest.raises(ValueError, match="same customers"):
        metrics.hits(RECOMMENDED, TRUTH[:2])
