"""Ranking metrics on malformed inputs: explicit zeros, out-of-range ids, repeated products.

Each case once gave a wrong figure silently (recall above 1, a hit on another customer's
item, a product counted twice); now each gives the right figure or a clear error.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ml.train import metrics

N_PRODUCTS = 5


def test_stored_explicit_zeros_are_neither_relevant_nor_hits():
    # Customer 0 truly bought product 1; product 2 is a stored zero (e.g. left behind by
    # a subtraction without eliminate_zeros()).
    truth = sp.csr_matrix(
        (np.array([1.0, 0.0]), np.array([1, 2]), np.array([0, 2])), shape=(1, N_PRODUCTS)
    )
    assert truth.nnz == 2  # the zero is really stored
    recommended = np.array([[1, 2, 3]])

    hit = metrics.hits(recommended, truth)
    assert hit.tolist() == [[True, False, False]]
    figures = metrics.per_customer_metrics(recommended, truth, ks=(3,))
    assert figures["recall_at_3"][0] == pytest.approx(1.0)
    assert figures["precision_at_3"][0] == pytest.approx(1 / 3)
    assert figures["ndcg_at_3"][0] == pytest.approx(1.0)
    assert figures["map_at_3"][0] == pytest.approx(1.0)


def test_a_customer_whose_truth_is_only_stored_zeros_is_not_evaluated():
    truth = sp.csr_matrix(
        (np.array([0.0]), np.array([1]), np.array([0, 1, 1])), shape=(2, N_PRODUCTS)
    )
    figures = metrics.per_customer_metrics(np.array([[1, 0], [1, 0]]), truth, ks=(2,))
    assert np.isnan(figures["recall_at_2"]).all()
    assert np.isnan(metrics.recall_curve(np.array([[1, 0], [1, 0]]), truth, 2)).all()


@pytest.mark.parametrize("bad_id", [N_PRODUCTS, N_PRODUCTS + 3, -2])
def test_product_ids_outside_the_catalog_are_refused(bad_id):
    # Customer 1 bought product 0: with id == N_PRODUCTS, customer 0's key would be
    # 0 * N + N == 1 * N + 0, a hit on customer 1's item.
    truth = sp.csr_matrix(np.array([[0, 0, 0, 1, 0], [1, 0, 0, 0, 0]], dtype=np.float32))
    recommended = np.array([[bad_id, 3], [2, 4]])
    with pytest.raises(ValueError, match="product column"):
        metrics.hits(recommended, truth)
    with pytest.raises(ValueError, match="product column"):
        metrics.per_customer_metrics(recommended, truth, ks=(2,))


def test_padding_minus_one_is_still_accepted():
    truth = sp.csr_matrix(np.array([[0, 1, 0, 0, 0]], dtype=np.float32))
    assert metrics.hits(np.array([[-1, 1]]), truth).tolist() == [[False, True]]


def test_a_product_repeated_in_one_list_counts_once():
    truth = sp.csr_matrix(np.array([[0, 1, 1, 0, 0]], dtype=np.float32))
    recommended = np.array([[1, 1, 1, 0]])

    assert metrics.hits(recommended, truth).tolist() == [[True, False, False, False]]
    figures = metrics.per_customer_metrics(recommended, truth, ks=(4,))
    assert figures["precision_at_4"][0] == pytest.approx(1 / 4)
    assert figures["recall_at_4"][0] == pytest.approx(1 / 2)
    assert figures["map_at_4"][0] == pytest.approx(1 / 2)
    assert figures["ndcg_at_4"][0] == pytest.approx(1.0 / (1.0 + 1.0 / np.log2(3)))
    assert metrics.recall_curve(recommended, truth, 4).tolist() == pytest.approx([0.5] * 4)


def test_average_precision_with_both_published_denominators():
    # Customer 0: 3 relevant, hits at ranks 2 and 4 (k = 2: one hit at rank 2).
    truth = sp.csr_matrix(np.array([[0, 1, 1, 1, 0], [1, 0, 0, 0, 0]], dtype=np.float32))
    recommended = np.array([[4, 1, 0, 2], [0, 1, 2, 3]])
    by_min = metrics.average_precision(recommended, truth, 2, "min_r_k")
    by_r = metrics.average_precision(recommended, truth, 2, "r")
    assert by_min.tolist() == pytest.approx([(1 / 2) / 2, 1.0])
    assert by_r.tolist() == pytest.approx([(1 / 2) / 3, 1.0])
    logged = metrics.per_customer_metrics(recommended, truth, ks=(2,))["map_at_2"]
    assert logged.tolist() == pytest.approx(by_min.tolist())
    with pytest.raises(ValueError, match="min_r_k"):
        metrics.average_precision(recommended, truth, 2, "k")
