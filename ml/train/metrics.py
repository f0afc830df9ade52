"""Top-k recommendation metrics: precision, recall, NDCG, MAP, coverage, popularity bias.

All functions take the recommendations as an integer array ``recommended`` of shape
``(n_customers, n)`` holding product columns in rank order (``-1`` pads a short list and
never hits), and the truth as a customers x products sparse matrix whose rows align with
``recommended``. They are vectorised over customers.

Definitions (``rel_i`` = 1 when the item at rank ``i`` is in the customer's truth,
``R`` = number of truth items):

* ``precision@k = sum(rel_1..k) / k``
* ``recall@k = sum(rel_1..k) / R``
* ``ndcg@k = DCG / IDCG`` with ``DCG = sum(rel_i / log2(i + 1))`` and IDCG the DCG of
  ``min(k, R)`` hits at the top
* ``map@k``: mean over customers of ``AP@k = sum(rel_i * precision@i) / min(k, R)``
* ``catalog_coverage``: share of the catalog that appears in at least one top-k list
* ``popularity_bias``: mean popularity percentile (0 = least, 1 = most popular) of the
  recommended items
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

RANKING_METRICS = ("precision", "recall", "ndcg", "map")


def metric_name(metric: str, k: int) -> str:
    """Return the logged name of a ranking metric, e.g. ``ndcg_at_10``."""
    return f"{metric}_at_{k}"


def relevant_truth(truth: sp.spmatrix) -> sp.csr_matrix:
    """The truth as a CSR of ones, without stored zeros (they are not relevant items).

    A matrix built by subtraction (``truth - truth.multiply(bought)``) keeps explicit
    zeros unless ``eliminate_zeros()`` is called; counting them as relevant for hits but
    not for ``R`` once made recall exceed 1.
    """
    matrix = sp.csr_matrix(truth, copy=True)
    matrix.eliminate_zeros()
    matrix.sum_duplicates()
    matrix.data = np.ones_like(matrix.data, dtype=np.float32)
    return matrix


def _checked_columns(recommended: np.ndarray, n_products: int) -> np.ndarray:
    recommended = np.asarray(recommended, dtype=np.int64)
    if recommended.ndim != 2:
        raise ValueError(
            f"recommended must be a (customers, n) array of product columns, got shape "
            f"{recommended.shape}"
        )
    outside = (recommended < -1) | (recommended >= n_products)
    if outside.any():
        bad = int(recommended[outside][0])
        raise ValueError(
            f"recommended holds product column {bad}, outside the truth's 0..{n_products - 1} "
            "(-1 is the only padding value): map ids into the truth's product space first"
        )
    return recommended


def first_occurrences(recommended: np.ndarray) -> np.ndarray:
    """Boolean mask of each row's first occurrence of every product (padding is False)."""
    recommended = np.asarray(recommended, dtype=np.int64)
    if recommended.size == 0:
        return np.zeros(recommended.shape, dtype=bool)
    order = np.argsort(recommended, axis=1, kind="stable")
    ordered = np.take_along_axis(recommended, order, axis=1)
    first_sorted = np.ones(ordered.shape, dtype=bool)
    first_sorted[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.empty_like(first_sorted)
    np.put_along_axis(first, order, first_sorted, axis=1)
    return first & (recommended >= 0)


def hits(recommended: np.ndarray, truth: sp.spmatrix) -> np.ndarray:
    """Return a boolean array: ``hits[u, i]`` is True when rank ``i`` of customer ``u`` hits.

    A product repeated in one list hits at its first rank only; stored zeros of the truth
    are not relevant.

    Parameters
    ----------
    recommended : numpy.ndarray
        ``(n_customers, n)`` product columns, ``-1`` for padding.
    truth : scipy.sparse matrix
        ``(n_customers, n_products)`` relevant items (non-zero cells).

    Raises
    ------
    ValueError
        When the rows do not align or a column lies outside ``0..n_products - 1``.
    """
    truth = relevant_truth(truth)
    recommended = np.asarray(recommended, dtype=np.int64)
    if recommended.shape[0] != truth.shape[0]:
        raise ValueError(
            f"recommended has {recommended.shape[0]} rows but truth has {truth.shape[0]}: "
            "pass the truth rows of the same customers, in the same order"
        )
    n_products = truth.shape[1]
    recommended = _checked_columns(recommended, n_products)
    truth = truth.tocoo()
    truth_keys = truth.row.astype(np.int64) * n_products + truth.col
    rows = np.arange(recommended.shape[0], dtype=np.int64)[:, None]
    keys = rows * n_products + recommended
    return np.isin(keys, truth_keys) & first_occurrences(recommended)


def per_customer_metrics(
    recommended: np.ndarray, truth: sp.spmatrix, ks: tuple[int, ...] = (10, 20)
) -> dict[str, np.ndarray]:
    """Compute precision, recall, NDCG and MAP at each ``k`` for every customer.

    Customers with no truth item get NaN (they cannot be evaluated); average with
    :func:`mean_metrics`.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"precision_at_10": array(n_customers), ...}``.
    """
    hit = hits(recommended, truth)
    n_relevant = np.diff(relevant_truth(truth).indptr)
    has_truth = n_relevant > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        results: dict[str, np.ndarray] = {}
        for k in ks:
            top = hit[:, :k].astype(np.float64)
            if top.shape[1] < k:  # short lists count as misses beyond their end
                top = np.pad(top, ((0, 0), (0, k - top.shape[1])))
            discounts = 1.0 / np.log2(np.arange(2, k + 2))
            hits_at_k = top.sum(axis=1)
            ideal = np.minimum(n_relevant, k)
            idcg = np.concatenate([[0.0], np.cumsum(discounts)])[ideal]
            precision_at_rank = np.cumsum(top, axis=1) / np.arange(1, k + 1)
            values = {
                "precision": hits_at_k / k,
                "recall": hits_at_k / n_relevant,
                "ndcg": (top * discounts).sum(axis=1) / idcg,
                "map": (top * precision_at_rank).sum(axis=1) / ideal,
            }
            for metric in RANKING_METRICS:
                results[metric_name(metric, k)] = np.where(has_truth, values[metric], np.nan)
    return results


def average_precision(
    recommended: np.ndarray, truth: sp.spmatrix, k: int, denominator: str = "min_r_k"
) -> np.ndarray:
    """AP@k of every customer (NaN without truth), with either published normalisation.

    ``denominator="min_r_k"`` divides by ``min(R, k)`` (what ``map_at_k`` logs: a perfect
    list scores 1 even when ``R > k``); ``"r"`` divides by ``R`` (as several published
    tables do: customers with more than ``k`` relevant items can never reach 1).
    """
    if denominator not in ("min_r_k", "r"):
        raise ValueError(f"denominator must be 'min_r_k' or 'r', not {denominator!r}")
    top = hits(np.asarray(recommended)[:, :k], truth).astype(np.float64)
    if top.shape[1] < k:
        top = np.pad(top, ((0, 0), (0, k - top.shape[1])))
    n_relevant = np.diff(relevant_truth(truth).indptr)
    precision_at_rank = np.cumsum(top, axis=1) / np.arange(1, k + 1)
    total = (top * precision_at_rank).sum(axis=1)
    scale = np.minimum(n_relevant, k) if denominator == "min_r_k" else n_relevant
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, total / scale, np.nan)


def mean_metrics(per_customer: dict[str, np.ndarray], mask: np.ndarray | None = None):
    """Average per-customer metrics over evaluated customers (optionally a subset).

    Parameters
    ----------
    per_customer : dict
        Output of :func:`per_customer_metrics`.
    mask : numpy.ndarray of bool, optional
        Customers to include.

    Returns
    -------
    dict of str to float
        NaN for a metric with no evaluated customer.
    """
    means = {}
    for name, values in per_customer.items():
        selected = values if mask is None else values[mask]
        selected = selected[~np.isnan(selected)]
        means[name] = float(selected.mean()) if selected.size else float("nan")
    return means


def recall_curve(recommended: np.ndarray, truth: sp.spmatrix, max_k: int) -> np.ndarray:
    """Return mean recall@k for ``k = 1..max_k`` over customers with truth."""
    hit = hits(recommended[:, :max_k], truth).astype(np.float64)
    if hit.shape[1] < max_k:
        hit = np.pad(hit, ((0, 0), (0, max_k - hit.shape[1])))
    n_relevant = np.diff(relevant_truth(truth).indptr)
    has_truth = n_relevant > 0
    if not has_truth.any():
        return np.full(max_k, np.nan)
    cumulative = np.cumsum(hit[has_truth], axis=1) / n_relevant[has_truth, None]
    return cumulative.mean(axis=0)


def catalog_coverage(recommended: np.ndarray, n_products: int, k: int = 10) -> float:
    """Share of the ``n_products`` catalog that appears in at least one top-``k`` list."""
    if n_products == 0:
        return float("nan")
    top = np.asarray(recommended)[:, :k]
    return float(np.unique(top[top >= 0]).size / n_products)


def popularity_percentiles(item_popularity: np.ndarray) -> np.ndarray:
    """Return each item's popularity percentile in ``(0, 1]`` (ties share the mean rank)."""
    item_popularity = np.asarray(item_popularity, dtype=np.float64)
    if item_popularity.size == 0:
        return item_popularity
    return rankdata(item_popularity, method="average") / item_popularity.size


def popularity_bias(recommended: np.ndarray, item_popularity: np.ndarray, k: int = 10) -> float:
    """Mean popularity percentile of the items in the top-``k`` lists (1 = only bestsellers)."""
    top = np.asarray(recommended)[:, :k]
    top = top[top >= 0]
    if top.size == 0:
        return float("nan")
    return float(popularity_percentiles(item_popularity)[top].mean())


def recommendation_frequency(recommended: np.ndarray, n_products: int, k: int = 10) -> np.ndarray:
    """Return how many top-``k`` lists each product appears in."""
    top = np.asarray(recommended)[:, :k]
    return np.bincount(top[top >= 0].ravel(), minlength=n_products)
