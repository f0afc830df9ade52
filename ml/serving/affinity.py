"""Category affinity: for each category, the customers most likely to want it.

The predicted affinity of a customer for a category is the mean model score over the
category's products, ``u . mean(v_i)`` (the batch segment of AWS Personalize's
Item-Attribute-Affinity). Each customer's best category is kept too.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl

from ml.serving.model import ScoringModel

log = logging.getLogger(__name__)


def category_centroids(
    model: ScoringModel, products: pl.DataFrame
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Mean item factors of each category's recommendable products the model knows.

    Parameters
    ----------
    model : ScoringModel
    products : polars.DataFrame
        ``product_id, category, eligible``.

    Returns
    -------
    categories : list of str
        Every category with an eligible product, sorted.
    centroids : numpy.ndarray
        ``(categories, factors)`` float32; zero where ``present`` is false.
    present : numpy.ndarray
        Whether the model knows at least one product of the category.
    """
    eligible = products.filter(
        pl.col("eligible").fill_null(False) & pl.col("category").is_not_null()
    )
    categories = sorted(eligible["category"].unique().to_list())
    cols = model.product_cols(eligible["product_id"].cast(pl.String).to_numpy())
    known = eligible.with_columns(pl.Series("col", cols)).filter(pl.col("col") >= 0)
    centroids = np.zeros((len(categories), model.item_factors.shape[1]), dtype=np.float32)
    present = np.zeros(len(categories), dtype=bool)
    for j, category in enumerate(categories):
        members = known.filter(pl.col("category") == category)["col"].to_numpy()
        if len(members):
            centroids[j] = model.item_factors[members].mean(axis=0)
            present[j] = True
    return categories, centroids, present


def category_affinity(
    customer_ids: np.ndarray,
    products: pl.DataFrame,
    model: ScoringModel,
    audience_size: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Predicted affinity of each customer for each category, and the top audiences.

    Parameters
    ----------
    customer_ids : numpy.ndarray
        Customers eligible for audiences (the model scores those it knows).
    products : polars.DataFrame
        ``product_id, category, eligible``.
    model : ScoringModel
    audience_size : int
        Customers per category audience.

    Returns
    -------
    audiences : polars.DataFrame
        ``category, rank, customer_id, affinity`` (highest affinity first; ties by id).
    best : polars.DataFrame
        ``customer_id, top_category, affinity`` for every customer the model knows.
    """
    empty_audiences = pl.DataFrame(
        schema={
            "category": pl.String,
            "rank": pl.Int32,
            "customer_id": pl.String,
            "affinity": pl.Float64,
        }
    )
    empty_best = pl.DataFrame(
        schema={"customer_id": pl.String, "top_category": pl.String, "affinity": pl.Float64}
    )
    if not model.has_item_similarity:
        log.warning("the %s model has no item factors: no affinity audiences", model.family)
        return empty_audiences, empty_best
    customer_ids = np.sort(np.asarray(customer_ids).astype(str))
    rows = model.customer_rows(customer_ids)
    customer_ids, rows = customer_ids[rows >= 0], rows[rows >= 0]
    categories, centroids, present = category_centroids(model, products)
    categories = [c for c, p in zip(categories, present, strict=True) if p]
    centroids = centroids[present]
    if not categories or len(rows) == 0:
        return empty_audiences, empty_best
    # Mean score over a category's items = u . mean(v): one product per customer chunk.
    affinity = model.user_factors[rows] @ centroids.T  # (customers, categories)
    size = min(audience_size, len(rows))
    frames = []
    for j, category in enumerate(categories):
        column = affinity[:, j]
        top = (
            np.argpartition(-column, size - 1)[:size]
            if size < len(column)
            else np.arange(len(column))
        )
        top = top[np.lexsort((top, -column[top]))]  # affinity desc, then customer id
        frames.append(
            pl.DataFrame(
                {
                    "category": category,
                    "rank": np.arange(1, len(top) + 1, dtype=np.int32),
                    "customer_id": customer_ids[top],
                    "affinity": np.round(column[top].astype(np.float64), 6),
                }
            )
        )
    best_index = np.argmax(affinity, axis=1)
    best = pl.DataFrame(
        {
            "customer_id": customer_ids,
            "top_category": np.array(categories, dtype=object)[best_index],
            "affinity": np.round(affinity[np.arange(len(rows)), best_index].astype(np.float64), 6),
        },
        schema_overrides={"top_category": pl.String},
    )
    return pl.concat(frames), best
