"""The interface every recommender family implements, in matrix index space.

Every model works on customer rows and product columns of
:class:`~ml.train.interactions.IndexMaps` and offers ``fit``, ``recommend``,
``similar_items``, ``save`` and ``load``. Saved models are ``.npz`` arrays plus a JSON
file: no pickle, nothing but numbers and parameters.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

# implicit marks filtered slots with -FLT_MAX; anything this low is "no recommendation".
_FILTERED_SCORE = -1e38


PARAMS_FILE = "params.json"


ARRAYS_FILE = "arrays.npz"


def finish_topk(ids: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
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
        return finish_topk(ids, scores, n)

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


class SettingsDataclass:
    """``from_params`` / ``params`` for a recommender whose settings are one dataclass.

    Subclasses set :attr:`settings_class` and keep the instance in ``self.hyper``; unknown
    keys in stored params (a newer version's) are ignored.
    """

    settings_class: ClassVar[type]
    hyper: Any

    @classmethod
    def from_params(cls, params: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls.settings_class)}
        return cls(cls.settings_class(**{k: v for k, v in params.items() if k in names}))

    def params(self) -> dict[str, Any]:
        return dict(vars(self.hyper))
