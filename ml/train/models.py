"""The model families: ALS and BPR (implicit, with warm starts) and the registry of all.

Item-item neighbours live in :mod:`ml.train.neighbours`, the popularity blend in
:mod:`ml.train.blend`, the baseline in :mod:`ml.train.popularity`;
:data:`MODEL_FAMILIES` names them all for :func:`load_recommender`.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking

from ml.train.blend import BlendRecommender
from ml.train.config import ALSParams, BPRParams
from ml.train.neighbours import ItemKNNRecommender
from ml.train.popularity import PopularityRecommender, popular_topk
from ml.train.recommender import ARRAYS_FILE, PARAMS_FILE, Recommender, finish_topk

if TYPE_CHECKING:
    from ml.train.interactions import IndexMaps

log = logging.getLogger(__name__)

# Rows of factors carried per step of a warm start (64 MiB of 64 float32 factors).
WARM_START_BLOCK_ROWS = 262_144

__all__ = [
    "MODEL_FAMILIES",
    "ALSRecommender",
    "BPRRecommender",
    "BlendRecommender",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "Recommender",
    "popular_topk",
    "load_recommender",
    "warm_start_factors",
]


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
        ids, scores = finish_topk(ids, scores, take)
        # Drop the item itself (normally rank 0), keep n.
        is_self = ids == cols[:, None]
        order = np.argsort(is_self, axis=1, kind="stable")
        ids = np.take_along_axis(ids, order, axis=1)[:, : take - 1]
        scores = np.take_along_axis(scores, order, axis=1)[:, : take - 1]
        return finish_topk(ids, np.nan_to_num(scores, nan=-3.4e38), n)

    def fit_more(self, user_items, iterations: int):
        """Continue fitting from the current factors for ``iterations`` more iterations.

        What early stopping needs: validate, fit a few more, validate again. For ALS the
        result equals one fit with the summed iterations (each iteration is a
        deterministic function of the factors); BPR re-seeds its sampler per call, so
        its result is reproducible but not identical to one longer fit.
        """
        self._require_fit()
        self._model.iterations = int(iterations)
        self._model.fit(
            sp.csr_matrix(user_items, dtype=np.float32),
            show_progress=False,
            callback=_log_iteration(self.family, int(iterations)),
        )
        return self

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
        # In place and by blocks: at 100M events one customers x factors array is 2 GB,
        # and each temporary copy of it was another 2 GB at the re-fit's peak.
        start = rng.random((len(rows), old.shape[1]), dtype=np.float32)
        start *= np.float32(0.01)
        for low in range(0, len(rows), WARM_START_BLOCK_ROWS):
            block = rows[low : low + WARM_START_BLOCK_ROWS]
            known = block >= 0
            start[low : low + len(block)][known] = old[block[known]]
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


MODEL_FAMILIES: dict[str, type[Recommender]] = {
    "als": ALSRecommender,
    "bpr": BPRRecommender,
    "itemknn": ItemKNNRecommender,
    "blend": BlendRecommender,
    "popularity": PopularityRecommender,
}


def load_recommender(directory: Path | str) -> Recommender:
    """Read a model written by :meth:`Recommender.save` (any family).

    Raises
    ------
    ValueError
        The directory holds a family this code does not know.
    """
    directory = Path(directory)
    meta = json.loads((directory / PARAMS_FILE).read_text())
    family = meta["family"]
    if family == "spark_als":
        # Factors fit by Spark MLlib: they load and serve as plain ALS factors, without
        # Spark (ml.spark.als subclasses ALSRecommender for the fit only).
        model = ALSRecommender.from_params(meta["params"])
        model.family = family
        with np.load(directory / ARRAYS_FILE, allow_pickle=False) as arrays:
            model._restore({name: arrays[name] for name in arrays.files})
        return model
    if family not in MODEL_FAMILIES:
        raise ValueError(
            f"{directory} holds a {family!r} model; known families: {sorted(MODEL_FAMILIES)}"
        )
    model = MODEL_FAMILIES[family].from_params(meta["params"])
    with np.load(directory / ARRAYS_FILE, allow_pickle=False) as arrays:
        model._restore({name: arrays[name] for name in arrays.files})
    return model
