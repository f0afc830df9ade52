"""Recommenders behind one small interface: ALS, BPR and a popularity baseline.

Every model works in matrix index space (customer rows, product columns of
:class:`~ml.train.interactions.IndexMaps`) and offers ``fit``, ``recommend``,
``similar_items``, ``save`` and ``load``. Fits are single-threaded and seeded, so the same
matrix and parameters give the same factors. Saved models are ``.npz`` arrays plus a JSON
file: no pickle, nothing but numbers and parameters.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking

from ml.train.config import ALSParams, BPRParams

if TYPE_CHECKING:
    from ml.train.interactions import IndexMaps

log = logging.getLogger(__name__)

# implicit marks filtered slots with -FLT_MAX; anything this low is "no recommendation".
_FILTERED_SCORE = -1e38
PARAMS_FILE = "params.json"
ARRAYS_FILE = "arrays.npz"


def _finish_topk(ids: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad to ``n`` columns, turn filtered slots into ``-1`` / NaN."""
    ids = np.asarray(ids, dtype=np.int64).reshape(len(ids), -1)
    scores = np.asarray(scores, dtype=np.float32).reshape(len(scores), -1)
    empty = scores <= _FILTERED_SCORE
    ids = np.where(empty, -1, ids)
    scores = np.where(empty, np.nan, scores).astype(np.float32)
    if ids.shape[1] < n:
        pad = n - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=np.nan)
    return ids, scores


class Recommender(ABC):
    """A recommender in matrix index space.

    Subclasses set :attr:`family` (the MLflow ``model_family`` tag) and implement
    :meth:`fit`, :meth:`_score_topk`, :meth:`similar_items` and the array state.
    """

    family: ClassVar[str]

    @abstractmethod
    def fit(self, user_items: sp.csr_matrix) -> Recommender:
        """Fit on a customers x products confidence matrix; return self."""

    @property
    @abstractmethod
    def n_products(self) -> int:
        """Number of product columns the model knows."""

    @property
    @abstractmethod
    def is_fitted(self) -> bool:
        """Whether the model has learned state (fit or load was called)."""

    def recommend(
        self, rows: np.ndarray, exclude: sp.csr_matrix | None, n: int = 10
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the top ``n`` products for each customer row.

        Parameters
        ----------
        rows : numpy.ndarray
            Customer rows (must exist in the model).
        exclude : scipy.sparse.csr_matrix or None
            One row per entry of ``rows``: products never to recommend to that customer
            (typically the ones already bought).
        n : int
            List length.

        Returns
        -------
        ids : numpy.ndarray
            ``(len(rows), n)`` product columns, best first; ``-1`` where fewer than ``n``
            products are left.
        scores : numpy.ndarray
            Matching float32 scores (NaN for padding).
        """
        rows = np.asarray(rows, dtype=np.int64)
        if exclude is not None and exclude.shape[0] != len(rows):
            raise ValueError("exclude must have one row per entry of rows")
        if not self.is_fitted:
            raise RuntimeError(f"the {self.family} model is not fitted: call fit() or load()")
        if len(rows) == 0 or self.n_products == 0:
            return np.full((len(rows), n), -1, np.int64), np.full(
                (len(rows), n), np.nan, np.float32
            )
        ids, scores = self._score_topk(rows, exclude, min(n, self.n_products))
        return _finish_topk(ids, scores, n)

    @abstractmethod
    def _score_topk(self, rows, exclude, n) -> tuple[np.ndarray, np.ndarray]:
        """Return implicit-style ``(ids, scores)`` with filtered slots at -FLT_MAX."""

    @abstractmethod
    def similar_items(self, cols: np.ndarray, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``n`` most similar products of each product column (itself excluded)."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Return the hyperparameters (logged and saved)."""

    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """Return the learned state as named arrays."""

    @abstractmethod
    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the learned state from :meth:`_arrays` output."""

    def save(self, directory: Path | str) -> Path:
        """Write the model to ``directory`` (created); return it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / PARAMS_FILE).write_text(
            json.dumps({"family": self.family, "params": self.params()}, sort_keys=True)
        )
        np.savez(directory / ARRAYS_FILE, **self._arrays())
        return directory

    @staticmethod
    def load(directory: Path | str) -> Recommender:
        """Read a model written by :meth:`save` (any family)."""
        directory = Path(directory)
        meta = json.loads((directory / PARAMS_FILE).read_text())
        family = meta["family"]
        if family not in MODEL_FAMILIES:
            raise ValueError(
                f"{directory} holds a {family!r} model; known families: {sorted(MODEL_FAMILIES)}"
            )
        model = MODEL_FAMILIES[family].from_params(meta["params"])
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as arrays:
            model._restore({name: arrays[name] for name in arrays.files})
        return model


def _log_iteration(family: str, total: int):
    """Return an implicit fit callback that logs per-iteration timing."""

    # ALS calls back with (iteration, seconds, loss), BPR with (iteration, seconds,
    # correct share, skipped share).
    def callback(iteration: int, elapsed: float, *extra) -> None:
        detail = ", ".join(f"{value:.4f}" for value in extra if value is not None)
        log.debug("%s iteration %d/%d in %.3fs %s", family, iteration + 1, total, elapsed, detail)

    return callback


class _FactorModel(Recommender):
    """Shared state and scoring of the implicit matrix-factorization models.

    Subclasses set ``params_class`` (their hyperparameter dataclass).
    """

    params_class: type

    def __init__(self, params=None, seed: int = 42) -> None:
        self._model = None
        self.hyper = params or self.params_class()
        self.seed = seed

    @classmethod
    def from_params(cls, params: dict[str, Any]):
        seed = params.get("seed", 42)
        fields = {k: v for k, v in params.items() if k != "seed"}
        return cls(cls.params_class(**fields), seed=seed)

    def params(self):
        return {**vars(self.hyper), "seed": self.seed}

    @property
    def n_products(self) -> int:
        return 0 if self._model is None else self._model.item_factors.shape[0]

    @property
    def is_fitted(self) -> bool:
        return self._model is not None and self._model.item_factors is not None

    def _require_fit(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"the {self.family} model is not fitted: call fit() or load()")

    def _score_topk(self, rows, exclude, n):
        self._require_fit()
        return self._model.recommend(
            rows,
            exclude if exclude is not None else sp.csr_matrix((len(rows), self.n_products)),
            N=n,
            filter_already_liked_items=exclude is not None,
        )

    def similar_items(self, cols, n=10):
        self._require_fit()
        cols = np.asarray(cols, dtype=np.int64)
        if len(cols) == 0:
            return np.empty((0, n), np.int64), np.empty((0, n), np.float32)
        take = min(n + 1, self.n_products)
        ids, scores = self._model.similar_items(cols, N=take)
        ids, scores = _finish_topk(ids, scores, take)
        # Drop the item itself (normally rank 0), keep n.
        is_self = ids == cols[:, None]
        order = np.argsort(is_self, axis=1, kind="stable")
        ids = np.take_along_axis(ids, order, axis=1)[:, : take - 1]
        scores = np.take_along_axis(scores, order, axis=1)[:, : take - 1]
        return _finish_topk(ids, np.nan_to_num(scores, nan=-3.4e38), n)

    def _arrays(self):
        self._require_fit()
        return {
            "user_factors": np.asarray(self._model.user_factors),
            "item_factors": np.asarray(self._model.item_factors),
        }

    def _restore(self, arrays):
        self._model = self._new_model()
        self._model.user_factors = arrays["user_factors"]
        self._model.item_factors = arrays["item_factors"]

    @property
    def user_factors(self) -> np.ndarray:
        self._require_fit()
        return self._model.user_factors

    @property
    def item_factors(self) -> np.ndarray:
        self._require_fit()
        return self._model.item_factors


class ALSRecommender(_FactorModel):
    """``implicit`` alternating least squares (Hu, Koren & Volinsky) on confidences.

    Parameters
    ----------
    params : ALSParams
        Factors, regularization, iterations.
    seed : int
        Seed of the factor initialisation.
    """

    family = "als"

    params_class = ALSParams

    def _new_model(self) -> AlternatingLeastSquares:
        # alpha stays 1: the confidence scaling is applied to the matrix beforehand.
        return AlternatingLeastSquares(
            factors=self.hyper.factors,
            regularization=self.hyper.regularization,
            alpha=1.0,
            iterations=self.hyper.iterations,
            # Every core: ALS solves each row independently, so threads do not change the
            # factors (checked bit for bit), unlike BPR's lock-free SGD.
            num_threads=0,
            random_state=self.seed,
        )

    def fit(self, user_items, initial_factors=None, iterations: int | None = None):
        """Fit on a confidence matrix.

        Parameters
        ----------
        user_items : scipy.sparse matrix
            Customers x products confidences.
        initial_factors : tuple of numpy.ndarray, optional
            ``(user_factors, item_factors)`` to start from (a warm start, see
            :func:`warm_start_factors`) instead of the seeded random start.
        iterations : int, optional
            Overrides the recipe's iteration count (a warm start needs fewer).
        """
        started = time.perf_counter()
        iterations = iterations or self.hyper.iterations
        self._model = self._new_model()
        self._model.iterations = iterations
        if initial_factors is not None:
            users, items = initial_factors
            if users.shape != (user_items.shape[0], self.hyper.factors) or items.shape != (
                user_items.shape[1],
                self.hyper.factors,
            ):
                raise ValueError(
                    f"initial factors {users.shape} / {items.shape} do not match the "
                    f"{user_items.shape} matrix with {self.hyper.factors} factors"
                )
            self._model.user_factors = np.ascontiguousarray(users, dtype=np.float32)
            self._model.item_factors = np.ascontiguousarray(items, dtype=np.float32)
        self._model.fit(
            sp.csr_matrix(user_items, dtype=np.float32),
            show_progress=False,
            callback=_log_iteration(self.family, iterations),
        )
        seconds = time.perf_counter() - started
        log.info(
            "als fitted: %d customers x %d products, %d factors, %d iterations%s in %.2fs "
            "(%.3fs/iteration)",
            *user_items.shape,
            self.hyper.factors,
            iterations,
            " (warm start)" if initial_factors is not None else "",
            seconds,
            seconds / max(iterations, 1),
        )
        return self


def warm_start_factors(
    model: ALSRecommender, source: IndexMaps, target: IndexMaps, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Starting factors for a re-fit on ``target`` from a model fit on ``source``.

    Customers and products both maps know keep their factors; new ones start like a
    cold fit (small seeded random values). A re-fit on a slightly longer history then
    converges in a few iterations instead of the recipe's full count.
    """
    rng = np.random.default_rng(seed)

    def carry(old: np.ndarray, rows: np.ndarray) -> np.ndarray:
        start = (rng.random((len(rows), old.shape[1]), dtype=np.float32) * 0.01).astype(np.float32)
        known = rows >= 0
        start[known] = old[rows[known]]
        return start

    users = carry(np.asarray(model.user_factors), source.customer_rows(target.customer_ids))
    items = carry(np.asarray(model.item_factors), source.product_cols(target.product_ids))
    return users, items


class BPRRecommender(_FactorModel):
    """``implicit`` Bayesian personalised ranking (pairwise SGD; confidences are binarised)."""

    family = "bpr"

    params_class = BPRParams

    def _new_model(self) -> BayesianPersonalizedRanking:
        return BayesianPersonalizedRanking(
            factors=self.hyper.factors,
            learning_rate=self.hyper.learning_rate,
            regularization=self.hyper.regularization,
            iterations=self.hyper.iterations,
            # One thread: BPR's lock-free SGD is only reproducible single-threaded.
            num_threads=1,
            random_state=self.seed,
        )

    def fit(self, user_items):
        started = time.perf_counter()
        self._model = self._new_model()
        self._model.fit(
            sp.csr_matrix(user_items, dtype=np.float32),
            show_progress=False,
            callback=_log_iteration(self.family, self.hyper.iterations),
        )
        seconds = time.perf_counter() - started
        log.info(
            "bpr fitted: %d customers x %d products, %d iterations in %.2fs (%.3fs/iteration)",
            *user_items.shape,
            self.hyper.iterations,
            seconds,
            seconds / max(self.hyper.iterations, 1),
        )
        return self


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


MODEL_FAMILIES: dict[str, type[Recommender]] = {
    "als": ALSRecommender,
    "bpr": BPRRecommender,
    "popularity": PopularityRecommender,
}
