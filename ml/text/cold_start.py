"""New-product cold start: recommend a never-bought product to buyers of its look-alikes.

Collaborative filtering cannot see a product nobody has bought. Its text can: the rule is

1. :func:`new_product_neighbours`: each new product (eligible, no purchases yet) gets its
   ``neighbours`` nearest bought products by text cosine, keeping those at least
   ``min_similarity`` alike.
2. :func:`new_product_candidates`: a customer who bought one of those neighbours is a
   candidate for the new product, scored by the similarity of the closest neighbour they
   bought (which becomes the reason: "new, similar to X you bought").
3. :func:`add_exploration`: each customer's recommendation list (the frame of
   :func:`ml.serving.recommend.recommend_all`) gives ``floor(exploration_share * n)`` slots to their
   best new-product candidates not already listed, at evenly spaced ranks (for n = 20 and
   share 0.1: ranks 7 and 13); the other rows move down and the list keeps ``n`` rows.
   ``exploration_share = 0`` switches it off.

On Online Retail (``bench/results/product_text.md``) customers who had bought a content
neighbour bought the new product about twice as often as customers reached through random
or popular products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from ml.serving.reasons import NEW_SIMILAR_BOUGHT
from ml.text.content_neighbours import top_neighbours

# Its wording ("new, similar to X you bought") is in the seed reason_texts.


@dataclass(frozen=True)
class ColdStartConfig:
    """How much of each list goes to new products, and which look-alikes count.

    Parameters
    ----------
    exploration_share : float
        Share of each recommendation list given to new products (0 switches it off).
    neighbours : int
        Bought look-alikes considered per new product.
    min_similarity : float
        Text cosine a look-alike needs (wordllama: ~0.8 is a near-variant, ~0.5 the same
        kind of product).
    """

    exploration_share: float = 0.1
    neighbours: int = 10
    min_similarity: float = 0.5

    def slots(self, n: int) -> int:
        """Exploration slots in a list of ``n``."""
        if not 0 <= self.exploration_share <= 1:
            raise ValueError(f"exploration_share must be in [0, 1], got {self.exploration_share}")
        return math.floor(self.exploration_share * n + 1e-9)


def new_product_neighbours(
    product_ids: np.ndarray,
    text_vectors: np.ndarray,
    is_new: np.ndarray,
    is_bought: np.ndarray,
    config: ColdStartConfig | None = None,
) -> pl.DataFrame:
    """The bought look-alikes of each new product.

    Parameters
    ----------
    product_ids : numpy.ndarray
        Catalogue ids; the other arrays are aligned with it.
    text_vectors : numpy.ndarray
        Unit text embeddings.
    is_new : numpy.ndarray
        Products to place: eligible, never bought.
    is_bought : numpy.ndarray
        Products with purchases (the look-alikes to use).
    config : ColdStartConfig, optional

    Returns
    -------
    polars.DataFrame
        ``product_id, neighbour_id, neighbour_rank, similarity``, best first per product.
    """
    config = config or ColdStartConfig()
    product_ids = np.asarray(product_ids).astype(str)
    sources = np.flatnonzero(np.asarray(is_new, dtype=bool))
    ids, scores = top_neighbours(
        np.asarray(text_vectors, dtype=np.float32),
        sources,
        np.flatnonzero(np.asarray(is_bought, dtype=bool)),
        config.neighbours,
    )
    keep = (ids >= 0) & (scores >= config.min_similarity)
    return pl.DataFrame(
        {
            "product_id": product_ids[np.repeat(sources, ids.shape[1]).reshape(ids.shape)[keep]],
            "neighbour_id": product_ids[ids[keep]],
            "neighbour_rank": np.broadcast_to(
                np.arange(1, ids.shape[1] + 1, dtype=np.int32), ids.shape
            )[keep],
            "similarity": scores[keep].astype(np.float64),
        },
        schema={
            "product_id": pl.String,
            "neighbour_id": pl.String,
            "neighbour_rank": pl.Int32,
            "similarity": pl.Float64,
        },
    )


def new_product_candidates(neighbours: pl.DataFrame, history: pl.DataFrame) -> pl.DataFrame:
    """Customers who bought a look-alike of a new product, with the closest one they bought.

    Parameters
    ----------
    neighbours : polars.DataFrame
        :func:`new_product_neighbours`.
    history : polars.DataFrame
        ``customer_id, product_id`` of purchases (duplicates are fine).

    Returns
    -------
    polars.DataFrame
        ``customer_id, product_id, score, reason_product_id``: one row per customer and
        new product; ``score`` is the look-alike's similarity, the reason product the
        look-alike (ties: the better-ranked neighbour).
    """
    pairs = history.select(
        pl.col("customer_id").cast(pl.String), pl.col("product_id").cast(pl.String)
    ).unique()
    matched = pairs.join(
        neighbours.rename({"product_id": "new_id", "neighbour_id": "product_id"}),
        on="product_id",
        how="inner",
    )
    best = matched.sort(
        ["customer_id", "new_id", "similarity", "neighbour_rank"],
        descending=[False, False, True, False],
    ).unique(["customer_id", "new_id"], keep="first", maintain_order=True)
    return best.select(
        "customer_id",
        pl.col("new_id").alias("product_id"),
        pl.col("similarity").alias("score"),
        pl.col("product_id").alias("reason_product_id"),
    ).sort("customer_id", "score", "product_id", descending=[False, True, False])


def exploration_ranks(n: int, slots: int) -> list[int]:
    """Evenly spaced ranks for ``slots`` exploration rows in a list of ``n``."""
    return [round((j + 1) * n / (slots + 1)) for j in range(slots)]


def add_exploration(
    recommendations: pl.DataFrame,
    candidates: pl.DataFrame,
    n: int,
    config: ColdStartConfig | None = None,
) -> pl.DataFrame:
    """Give each list's exploration slots to the customer's best new-product candidates.

    Parameters
    ----------
    recommendations : polars.DataFrame
        :func:`ml.serving.recommend.recommend_all`'s frame (``customer_id, rank, product_id, score,
        reason_code, reason_product_id`` and any other columns, which exploration rows
        take from the customer's rank-1 row, e.g. ``model_name``).
    candidates : polars.DataFrame
        :func:`new_product_candidates`.
    n : int
        List length.
    config : ColdStartConfig, optional

    Returns
    -------
    polars.DataFrame
        Same columns, at most ``n`` rows per customer, sorted by ``customer_id, rank``;
        exploration rows have ``reason_code`` :data:`NEW_SIMILAR_BOUGHT`. Customers without
        a list or without candidates are unchanged.
    """
    config = config or ColdStartConfig()
    slots = config.slots(n)
    if slots == 0 or candidates.height == 0 or recommendations.height == 0:
        return recommendations
    columns = recommendations.columns
    listed = recommendations.select("customer_id", "product_id")
    picks = (
        candidates.join(listed, on=["customer_id", "product_id"], how="anti")
        .join(listed.select("customer_id").unique(), on="customer_id", how="semi")
        .sort("customer_id", "score", "product_id", descending=[False, True, False])
        .group_by("customer_id", maintain_order=True)
        .head(slots)
        .with_columns(pl.int_range(pl.len()).over("customer_id").alias("_slot"))
    )
    if picks.height == 0:
        return recommendations
    taken = picks.group_by("customer_id").agg(pl.len().alias("_k"))
    # Exploration row j of a customer with k picks sits at exploration_ranks(n, k)[j].
    rank_table = pl.DataFrame(
        [
            {"_k": k, "_slot": j, "rank": rank}
            for k in range(1, slots + 1)
            for j, rank in enumerate(exploration_ranks(n, k))
        ],
        schema={"_k": pl.UInt32, "_slot": pl.Int64, "rank": pl.Int32},
    )
    first_rows = recommendations.sort("customer_id", "rank").unique(
        "customer_id", keep="first", maintain_order=True
    )
    explore = (
        picks.join(taken, on="customer_id")
        .with_columns(pl.col("_slot").cast(pl.Int64), pl.col("_k").cast(pl.UInt32))
        .join(rank_table, on=["_k", "_slot"])
        .join(
            first_rows.drop("rank", "product_id", "score", "reason_code", "reason_product_id"),
            on="customer_id",
            how="left",
        )
        .with_columns(pl.lit(NEW_SIMILAR_BOUGHT).alias("reason_code"))
    )
    if "reason_context" in columns:
        explore = explore.with_columns(pl.lit(None, dtype=pl.String).alias("reason_context"))
    # Existing rows move down past the exploration ranks before them: with sorted ranks
    # p_0 < p_1 < ..., an existing rank r lands on r + #{j : p_j - j <= r}.
    shifted = recommendations.join(taken, on="customer_id", how="left").with_columns(
        pl.col("_k").fill_null(0)
    )
    new_rank = pl.col("rank")
    for k in range(1, slots + 1):
        thresholds = [p - j for j, p in enumerate(exploration_ranks(n, k))]
        moved = sum((pl.col("rank") >= t).cast(pl.Int32) for t in thresholds)
        new_rank = pl.when(pl.col("_k") == k).then(pl.col("rank") + moved).otherwise(new_rank)
    shifted = shifted.with_columns(new_rank.cast(pl.Int32).alias("rank")).filter(
        pl.col("rank") <= n
    )
    explore = explore.select([pl.col(c).cast(recommendations.schema[c]) for c in columns])
    # Short lists: close the gaps, keeping the order.
    return (
        pl.concat([shifted.select(columns), explore])
        .sort("customer_id", "rank")
        .with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("customer_id").alias("rank")
        )
        .select(columns)
    )
