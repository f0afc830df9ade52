"""Similar products for every product: behaviour and product text, blended.

The rule is :func:`ml.text.content_neighbours.hybrid_similar`: per source product, the
exact top ``m`` eligible products by ``w * cf + (1 - w) * text``, where ``cf`` is the
cosine of the serving model's item factors, ``text`` the cosine of the products' text
embeddings (``ml.product_embeddings``), and ``w = buyers / (buyers + shrinkage)``. A
product bought by fewer than ``min_source_buyers`` customers (or unknown to the model:
new, never bought) gets content neighbours only; a candidate bought by fewer than
``min_candidate_buyers`` never scores on behaviour (minimum support: one or two buyers'
factors are noise). ``reason`` names the signal that produced each row: ``bought
together``, ``similar description`` or both.

A product is never similar to itself, and only recommendable products are ever suggested.
Results land in ``ml.similar_products`` (one partition per logical date).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from ml.serving.model import ScoringModel
from ml.serving.run import serving_run
from ml.text.content_neighbours import HybridConfig, hybrid_similar
from ml.text.embeddings import embed_products
from ml.text.products import load_store
from ml.warehouse.stage_log import record_stage
from ml.warehouse.tables import read_frame, write_partition

log = logging.getLogger(__name__)

SIMILAR_COLUMNS = {
    "logical_date": "DATE",
    "product_id": "VARCHAR",
    "rank": "INTEGER",
    "similar_product_id": "VARCHAR",
    "score": "DOUBLE",
    "reason": "VARCHAR",
    "method": "VARCHAR",
}


@dataclass(frozen=True)
class SimilarConfig(HybridConfig):
    """The rule of :class:`~ml.text.content_neighbours.HybridConfig` (list length, blend,
    minimum support, batching) plus how long ``ml.similar_products`` keeps its dates.

    Parameters
    ----------
    keep_dates : int
        Logical dates kept in ``ml.similar_products``.
    """

    keep_dates: int = 3


def load_products(con) -> pl.DataFrame:
    """The catalogue: ids, text, distinct buyers, and whether a product may be suggested."""
    return read_frame(
        con,
        """
        SELECT p.product_id, p.product_name AS name, p.product_description AS description,
               p.brand, p.category, coalesce(p.is_product, true) AS is_product,
               p.is_recommendable AS eligible, coalesce(pop.buyers, 0) AS buyers
        FROM marts.dim_products AS p
        LEFT JOIN marts.product_popularity AS pop
          ON pop.product_id = p.product_id AND pop.group_kind = 'overall'
        ORDER BY p.product_id
        """,
    )


def similar_all(
    products: pl.DataFrame,
    model: ScoringModel,
    text_vectors: np.ndarray,
    config: SimilarConfig | None = None,
) -> pl.DataFrame:
    """Compute the similar-products lists of every merchandise product (no warehouse I/O).

    Parameters
    ----------
    products : polars.DataFrame
        :func:`load_products`.
    model : ScoringModel
        Its item factors carry the behaviour (none for the popularity baseline).
    text_vectors : numpy.ndarray
        ``(len(products), d)`` text embeddings in the same row order.

    Returns
    -------
    polars.DataFrame
        Columns of ``ml.similar_products`` except ``logical_date``.
    """
    config = config or SimilarConfig()
    product_ids = products["product_id"].cast(pl.String).to_numpy().astype(str)
    factors = None
    if model.has_item_similarity:
        cols = model.product_cols(product_ids)
        factors = np.zeros((len(product_ids), model.item_factors.shape[1]), dtype=np.float32)
        factors[cols >= 0] = model.item_factors[cols[cols >= 0]]
    buyers = products["buyers"].fill_null(0).to_numpy()
    # A product with neither text nor buyers has nothing to be similar by: no list.
    readable = (np.linalg.norm(text_vectors, axis=1) > 0) | (buyers > 0)
    return hybrid_similar(
        product_ids,
        text_vectors,
        factors,
        buyers,
        products["eligible"].fill_null(False).to_numpy().astype(bool),
        sources=products["is_product"].fill_null(True).to_numpy().astype(bool) & readable,
        config=config,
    )


@dataclass
class SimilarReport:
    """What one similar-products run produced."""

    logical_date: date
    products: int
    hybrid: int
    content: int
    rows: int
    seconds: float


def similar_products(
    logical_date: date | str | None = None,
    *,
    config: SimilarConfig | None = None,
    model: ScoringModel | None = None,
) -> SimilarReport:
    """Compute similar products and replace the date's rows of ``ml.similar_products``.

    Parameters
    ----------
    logical_date, model
        As :func:`ml.serving.run.serving_run` resolves them.
    config : SimilarConfig, optional
    """
    config = config or SimilarConfig()
    started = time.perf_counter()
    with serving_run(logical_date, model) as (con, day, model):
        products = load_products(con)
        # Texts the product_text stage embedded come from its store; others (a product it
        # has not seen yet) are embedded here, not stored.
        vectors, _, _ = embed_products(products, load_store(con))
        table = similar_all(products, model, vectors, config)
        rows = write_partition(
            con,
            "similar_products",
            table,
            day,
            columns=SIMILAR_COLUMNS,
            order_by="product_id, rank",
            keep_dates=config.keep_dates,
        )
        counts = dict(table.group_by("method").agg(pl.col("product_id").n_unique()).iter_rows())
        seconds = time.perf_counter() - started
        record_stage(con, day, "similar", rows=rows, seconds=seconds, detail=counts)
    report = SimilarReport(
        day,
        sum(counts.values()),
        counts.get("hybrid", 0),
        counts.get("content", 0),
        rows,
        seconds,
    )
    log.info(
        "similar products for %s: %d products (%d by description only), %d rows in %.1fs",
        day,
        report.products,
        report.content,
        rows,
        seconds,
    )
    return report
