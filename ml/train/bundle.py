"""A fitted model with its index maps: what gets registered, served and compared.

A :class:`TrainedRecommender` speaks customer and product *ids*: it maps them to matrix
indices, never recommends what a customer already bought, and falls back to the most
popular products for customers it has never seen. On disk it is a directory of numeric
arrays, id lists and JSON (no pickle)::

    meta.json          family, recipe, cut-off, counts
    model/             the Recommender (params.json + arrays.npz)
    customer_ids.npy   row -> customer_id (ids only: no names, no e-mail addresses)
    product_ids.npy    column -> product_id
    bought.npz         customers x products, ones where bought before the cut-off
    item_popularity.npy  distinct buyers per product (cold-start fallback)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from implicit.cpu.topk import topk

from ml.train.config import Recipe
from ml.train.interactions import IndexMaps, TrainingData
from ml.train.models import load_recommender
from ml.train.recommender import Recommender, finish_topk

FORMAT_VERSION = 1
RECOMMENDATION_SCHEMA = {
    "customer_id": pl.String,
    "rank": pl.Int64,
    "product_id": pl.String,
    "score": pl.Float64,
    "source": pl.String,
}


@dataclass
class TrainedRecommender:
    """A fitted recommender, its index maps and what it must not recommend.

    Attributes
    ----------
    model : Recommender
        The fitted model (index space).
    maps : IndexMaps
        ``customer_id`` <-> row, ``product_id`` <-> column.
    bought : scipy.sparse.csr_matrix
        Purchases before :attr:`trained_until` (never recommended again).
    item_popularity : numpy.ndarray
        Distinct buyers per product, for customers the model does not know.
    recipe : Recipe
        How the model was built (lets the gate re-fit it on another split).
    trained_until : datetime
        Exclusive end of the training history.
    info : dict
        Free metadata (counts, as_of, run id).
    version : str or None
        Registered model version, when loaded from the registry.
    """

    model: Recommender
    maps: IndexMaps
    bought: sp.csr_matrix
    item_popularity: np.ndarray
    recipe: Recipe
    trained_until: datetime
    info: dict[str, Any] = field(default_factory=dict)
    version: str | None = None

    @classmethod
    def from_training(
        cls, model: Recommender, training: TrainingData, recipe: Recipe, **info
    ) -> TrainedRecommender:
        """Wrap a model fit on ``training``."""
        return cls(
            model=model,
            maps=training.maps,
            bought=training.bought.astype(np.float32).tocsr(),
            item_popularity=training.item_popularity,
            recipe=recipe,
            trained_until=training.cutoff,
            info=dict(info),
        )

    @property
    def family(self) -> str:
        return self.model.family

    # -- recommending -------------------------------------------------------------------

    def recommend_rows(
        self, rows: np.ndarray, exclude: sp.csr_matrix, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Recommend in index space; rows ``-1`` (unknown customers) get popular products.

        Parameters
        ----------
        rows : numpy.ndarray
            Customer rows, ``-1`` for customers the model does not know.
        exclude : scipy.sparse.csr_matrix
            One row per entry of ``rows``: product columns not to recommend.
        n : int
            List length.

        Returns
        -------
        ids, scores : numpy.ndarray
            ``(len(rows), n)`` product columns (``-1`` padding) and scores.
        known : numpy.ndarray of bool
            Whether each row was scored by the model (else popularity fallback).
        """
        rows = np.asarray(rows, dtype=np.int64)
        ids = np.full((len(rows), n), -1, dtype=np.int64)
        scores = np.full((len(rows), n), np.nan, dtype=np.float32)
        known = rows >= 0
        exclude = sp.csr_matrix(exclude)
        if known.any():
            ids[known], scores[known] = self.model.recommend(rows[known], exclude[known], n)
        unknown = np.flatnonzero(~known)
        if len(unknown) and len(self.item_popularity):
            take = min(n, len(self.item_popularity))
            fallback_ids, fallback_scores = topk(
                self.item_popularity[:, None].astype(np.float32),
                np.ones((len(unknown), 1), dtype=np.float32),
                take,
                filter_query_items=exclude[unknown],
                num_threads=1,
            )
            ids[unknown], scores[unknown] = finish_topk(fallback_ids, fallback_scores, n)
        return ids, scores, known

    def recommend(self, customer_ids, n: int = 10) -> pl.DataFrame:
        """Return the top ``n`` products for each customer id, none already bought.

        Parameters
        ----------
        customer_ids : sequence of str
            Customers to score (unknown ones get the most popular products).
        n : int
            List length.

        Returns
        -------
        polars.DataFrame
            ``customer_id, rank (1-based), product_id, score, source`` with ``source``
            ``"model"`` or ``"popular"`` (cold-start fallback), best first per customer.
        """
        customer_ids = np.asarray(list(customer_ids), dtype=object).astype(str)
        if len(customer_ids) == 0 or n <= 0:
            return pl.DataFrame(schema=RECOMMENDATION_SCHEMA)
        rows = self.maps.customer_rows(customer_ids)
        exclude = self.bought[np.where(rows >= 0, rows, 0)]
        exclude = sp.diags((rows >= 0).astype(np.float32)) @ exclude  # unknown: nothing bought
        ids, scores, known = self.recommend_rows(rows, exclude.tocsr(), n)
        valid = ids >= 0
        customer_index, rank_index = np.nonzero(valid)
        return pl.DataFrame(
            {
                "customer_id": customer_ids[customer_index],
                "rank": rank_index.astype(np.int64) + 1,
                "product_id": self.maps.product_ids[ids[valid]],
                "score": scores[valid].astype(np.float64),
                "source": np.where(known[customer_index], "model", "popular"),
            },
            schema=RECOMMENDATION_SCHEMA,
        )

    def similar_items(self, product_ids, n: int = 10) -> pl.DataFrame:
        """Return the ``n`` most similar products of each known product id.

        Returns
        -------
        polars.DataFrame
            ``product_id, rank, similar_product_id, score``; unknown ids are skipped.
        """
        product_ids = np.asarray(list(product_ids), dtype=object).astype(str)
        cols = self.maps.product_cols(product_ids)
        keep = cols >= 0
        ids, scores = self.model.similar_items(cols[keep], n)
        valid = ids >= 0
        query_index, rank_index = np.nonzero(valid)
        return pl.DataFrame(
            {
                "product_id": product_ids[keep][query_index],
                "rank": rank_index.astype(np.int64) + 1,
                "similar_product_id": self.maps.product_ids[ids[valid]],
                "score": scores[valid].astype(np.float64),
            }
        )

    # -- persistence --------------------------------------------------------------------

    def save(self, directory: Path | str) -> Path:
        """Write the bundle to ``directory`` (created); return it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / "model")
        np.save(directory / "customer_ids.npy", self.maps.customer_ids.astype(str))
        np.save(directory / "product_ids.npy", self.maps.product_ids.astype(str))
        np.save(directory / "item_popularity.npy", np.asarray(self.item_popularity, np.float32))
        sp.save_npz(directory / "bought.npz", self.bought.tocsr())
        meta = {
            "format_version": FORMAT_VERSION,
            "family": self.family,
            "recipe": self.recipe.to_dict(),
            "trained_until": self.trained_until.isoformat(),
            "n_customers": int(self.maps.shape[0]),
            "n_products": int(self.maps.shape[1]),
            "info": self.info,
        }
        (directory / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        return directory

    @classmethod
    def load(cls, directory: Path | str, version: str | None = None) -> TrainedRecommender:
        """Read a bundle written by :meth:`save`."""
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(
                f"{directory} is not a recommender bundle (no meta.json): "
                "pass the directory written by TrainedRecommender.save()"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"{directory} was written by a newer Affinity (format "
                f"{meta['format_version']} > {FORMAT_VERSION}): upgrade this installation"
            )
        maps = IndexMaps(
            customer_ids=np.load(directory / "customer_ids.npy", allow_pickle=False),
            product_ids=np.load(directory / "product_ids.npy", allow_pickle=False),
        )
        return cls(
            model=load_recommender(directory / "model"),
            maps=maps,
            bought=sp.load_npz(directory / "bought.npz").tocsr(),
            item_popularity=np.load(directory / "item_popularity.npy", allow_pickle=False),
            recipe=Recipe.from_dict(meta["recipe"]),
            trained_until=datetime.fromisoformat(meta["trained_until"]),
            info=meta.get("info", {}),
            version=version,
        )
