"""The popularity baseline: every customer gets the products most customers bought."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from ml.train.recommender import Recommender

log = logging.getLogger(__name__)


def popular_topk(
    item_scores: np.ndarray, n_rows: int, exclude: sp.csr_matrix | None, n: int, chunk: int = 20_000
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` of one global ranking for each of ``n_rows`` customers, minus their exclusions.

    Everyone shares the ranking, so each customer's list is the first ``n`` products of it
    that they have not bought: only the top ``n`` + (their exclusions) ranks are looked at,
    instead of scoring every product per customer (which took ~50 s for 100k customers
    x 47k products). Ties keep the lower column first. Returns implicit-style
    ``(ids, scores)``: ``-1`` / ``-FLT_MAX`` where fewer than ``n`` products are left.
    """
    scores = np.asarray(item_scores, dtype=np.float32)
    order = np.argsort(-scores, kind="stable")
    rank_of = np.empty_like(order)
    rank_of[order] = np.arange(len(order))
    ids = np.full((n_rows, n), -1, dtype=np.int64)
    out = np.full((n_rows, n), np.finfo(np.float32).min, dtype=np.float32)
    exclude = sp.csr_matrix(exclude) if exclude is not None else None
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        width = n
        block = None
        if exclude is not None:
            block = exclude[start:stop]
            width = n + int(np.diff(block.indptr).max(initial=0))
        width = min(width, len(order))
        blocked = np.zeros((stop - start, width), dtype=bool)
        if block is not None and block.nnz:
            coo = block.tocoo()
            ranks = rank_of[coo.col]
            inside = ranks < width
            blocked[coo.row[inside], ranks[inside]] = True
        # Stable sort puts each row's free ranks first, still in ranking order.
        first_free = np.argsort(blocked, axis=1, kind="stable")[:, :n]
        free = ~np.take_along_axis(blocked, first_free, axis=1)
        chosen = order[:width][first_free]
        take = first_free.shape[1]
        ids[start:stop, :take] = np.where(free, chosen, -1)
        out[start:stop, :take] = np.where(free, scores[chosen], np.finfo(np.float32).min)
    return ids, out


class PopularityRecommender(Recommender):
    """Baseline: every customer gets the products bought by most distinct customers."""

    family = "popularity"

    def __init__(self) -> None:
        self.item_scores: np.ndarray | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> PopularityRecommender:
        return cls()

    def params(self):
        return {}

    @property
    def n_products(self) -> int:
        return 0 if self.item_scores is None else len(self.item_scores)

    @property
    def is_fitted(self) -> bool:
        return self.item_scores is not None

    def fit(self, user_items):
        binary = sp.csr_matrix(user_items, copy=True)
        binary.data = (binary.data > 0).astype(np.float32)
        self.item_scores = np.asarray(binary.sum(axis=0)).ravel().astype(np.float32)
        log.info("popularity fitted on %d products", len(self.item_scores))
        return self

    def _score_topk(self, rows, exclude, n):
        if self.item_scores is None:
            raise RuntimeError("the popularity model is not fitted: call fit() or load()")
        return popular_topk(self.item_scores, len(rows), exclude, n)

    def similar_items(self, cols, n=10):
        cols = np.asarray(cols, dtype=np.int64)
        exclude = sp.csr_matrix(
            (np.ones(len(cols), np.float32), (np.arange(len(cols)), cols)),
            shape=(len(cols), self.n_products),
        )
        return self.recommend(np.zeros(len(cols), np.int64), exclude, n)

    def _arrays(self):
        return {"item_scores": self.item_scores}

    def _restore(self, arrays):
        self.item_scores = arrays["item_scores"]
