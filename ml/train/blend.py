"""Popularity re-ranked by the customer's categories and history: the never-worse fallback.

When no personalized model beats popularity on a shop, serving plain popularity throws
away what little is known about each customer. The blend keeps popularity's ranking and
lifts the products of the customer's own categories and history::

    score(u, i) = pop(i) * (1 + category_weight * share(u, cat(i)) + history_weight * seen(u, i))

``pop`` is the products' summed strength (so the recipe's recency weighting applies),
scaled to a maximum of 1; ``share(u, c)`` the share of the customer's strength in
category ``c``; ``seen`` 1 for products in the customer's history (views count). With
both weights 0 it is (recency-weighted) popularity, so the search can never make it
worse than popularity on the validation window.

It serves as a factor model: user ``[1, wc * share(u, .), wh * seen(u, .)]``, item
``[pop, pop * onehot(cat), pop * onehot(product)]``; the history block is dense in the
catalogue size, so it is only used (``history_weight > 0``) on small catalogues.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from ml.train.config import BlendParams
from ml.train.neighbours import chunked_topk, dense_topk
from ml.train.recommender import Recommender, SettingsDataclass

log = logging.getLogger(__name__)


class BlendRecommender(SettingsDataclass, Recommender):
    """Popularity with category and history lifts (see the module docstring).

    Parameters
    ----------
    params : BlendParams
        The two lift weights.
    """

    family = "blend"
    settings_class = BlendParams

    def __init__(self, params: BlendParams | None = None) -> None:
        self.hyper = params or BlendParams()
        self.popularity: np.ndarray | None = None
        self.categories: np.ndarray | None = None
        self.shares: sp.csr_matrix | None = None
        self.seen: sp.csr_matrix | None = None

    @property
    def n_products(self) -> int:
        return 0 if self.popularity is None else len(self.popularity)

    @property
    def is_fitted(self) -> bool:
        return self.popularity is not None

    @property
    def n_categories(self) -> int:
        if self.categories is None or not (self.categories >= 0).any():
            return 0
        return int(self.categories.max()) + 1

    def fit(self, user_items: sp.csr_matrix, categories: np.ndarray | None = None):
        """Fit on a customers x products strength matrix and the products' category codes."""
        matrix = sp.csr_matrix(user_items, dtype=np.float64)
        matrix.eliminate_zeros()
        popularity = np.asarray(matrix.sum(axis=0)).ravel()
        top = popularity.max() if len(popularity) else 0.0
        self.popularity = (popularity / top if top > 0 else popularity).astype(np.float32)
        n_products = matrix.shape[1]
        self.categories = (
            np.full(n_products, -1, np.int64)
            if categories is None
            else np.asarray(categories, dtype=np.int64)
        )
        n_categories = self.n_categories
        if n_categories:
            known = self.categories >= 0
            to_category = sp.csr_matrix(
                (
                    np.ones(int(known.sum())),
                    (np.flatnonzero(known), self.categories[known]),
                ),
                shape=(n_products, n_categories),
            )
            totals = np.asarray(matrix.sum(axis=1)).ravel()
            per_category = (matrix @ to_category).tocsr()
            scale = np.where(totals > 0, 1.0 / np.where(totals > 0, totals, 1.0), 0.0)
            self.shares = (sp.diags(scale) @ per_category).astype(np.float32).tocsr()
        else:
            self.shares = sp.csr_matrix((matrix.shape[0], 0), dtype=np.float32)
        seen = matrix.copy()
        seen.data[:] = 1.0
        self.seen = seen.astype(np.float32).tocsr()
        log.info(
            "blend fitted: %d customers x %d products, %d categories (weights %g / %g)",
            *matrix.shape,
            n_categories,
            self.hyper.category_weight,
            self.hyper.history_weight,
        )
        return self

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        lift = np.ones((len(rows), self.n_products), dtype=np.float32)
        if self.hyper.category_weight and self.n_categories:
            shares = self.shares[rows].toarray()
            known = self.categories >= 0
            lift[:, known] += self.hyper.category_weight * shares[:, self.categories[known]]
        if self.hyper.history_weight:
            lift += self.hyper.history_weight * self.seen[rows].toarray()
        return lift * self.popularity[None, :]

    def _score_topk(self, rows, exclude, n):
        if not self.is_fitted:
            raise RuntimeError("the blend model is not fitted: call fit() or load()")
        return chunked_topk(self._scores, rows, exclude, n, self.n_products)

    def similar_items(self, cols, n=10):
        """Products of the same category, most popular first (else the most popular)."""
        cols = np.asarray(cols, dtype=np.int64)
        same = np.zeros((len(cols), self.n_products), dtype=np.float32)
        if self.n_categories:
            same = (self.categories[cols][:, None] == self.categories[None, :]) & (
                self.categories[cols][:, None] >= 0
            )
        scores = (1.0 + same.astype(np.float32)) * self.popularity[None, :]
        exclude = sp.csr_matrix(
            (np.ones(len(cols), np.float32), (np.arange(len(cols)), cols)),
            shape=(len(cols), self.n_products),
        )
        ids, values = dense_topk(scores, exclude, n)
        values = np.where(values <= np.finfo(np.float32).min, np.nan, values)
        ids = np.where(np.isnan(values), -1, ids)
        if ids.shape[1] < n:
            pad = n - ids.shape[1]
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            values = np.pad(values, ((0, 0), (0, pad)), constant_values=np.nan)
        return ids, values.astype(np.float32)

    # -- serving as a factor model ----------------------------------------------------

    @property
    def user_factors(self) -> np.ndarray:
        """Customers x (1 + categories [+ products]): see the module docstring."""
        parts = [np.ones((self.seen.shape[0], 1), np.float32)]
        if self.hyper.category_weight and self.n_categories:
            parts.append(self.hyper.category_weight * self.shares.toarray().astype(np.float32))
        if self.hyper.history_weight:
            parts.append(self.hyper.history_weight * self.seen.toarray().astype(np.float32))
        return np.hstack(parts).astype(np.float32)

    @property
    def item_factors(self) -> np.ndarray:
        """Products x (1 + categories [+ products]), matching :attr:`user_factors`."""
        pop = self.popularity[:, None]
        parts = [pop]
        if self.hyper.category_weight and self.n_categories:
            onehot = np.zeros((self.n_products, self.n_categories), np.float32)
            known = self.categories >= 0
            onehot[np.flatnonzero(known), self.categories[known]] = 1.0
            parts.append(onehot * pop)
        if self.hyper.history_weight:
            parts.append(np.diag(self.popularity).astype(np.float32))
        return np.hstack(parts).astype(np.float32)

    # -- persistence -------------------------------------------------------------------

    def _arrays(self):
        if not self.is_fitted:
            raise RuntimeError("the blend model is not fitted: call fit() or load()")
        return {
            "popularity": self.popularity,
            "categories": self.categories,
            "shares_data": self.shares.data,
            "shares_indices": self.shares.indices,
            "shares_indptr": self.shares.indptr,
            "shares_shape": np.asarray(self.shares.shape),
            "seen_indices": self.seen.indices,
            "seen_indptr": self.seen.indptr,
            "seen_shape": np.asarray(self.seen.shape),
        }

    def _restore(self, arrays):
        self.popularity = arrays["popularity"]
        self.categories = arrays["categories"]
        self.shares = sp.csr_matrix(
            (arrays["shares_data"], arrays["shares_indices"], arrays["shares_indptr"]),
            shape=tuple(arrays["shares_shape"]),
        )
        indices = arrays["seen_indices"]
        self.seen = sp.csr_matrix(
            (np.ones(len(indices), np.float32), indices, arrays["seen_indptr"]),
            shape=tuple(arrays["seen_shape"]),
        )
