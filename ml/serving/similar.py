"""Similar products for every product: item-factor cosine, TF-IDF content for unseen ones.

* A product the model knows gets the ``m`` eligible products whose item factors are closest
  by cosine (exact, implicit's ``topk`` on unit vectors), reason
  :data:`COLLABORATIVE_REASON`.
* A product the model has not seen (new, or never bought) gets the ``m`` eligible products
  whose name, description and category are closest by TF-IDF cosine (scikit-learn), reason
  :data:`CONTENT_REASON`. Products sharing no word with it are not listed.

A product is never similar to itself, and only active merchandise is ever suggested.
Results land in ``ml.similar_products`` (one partition per logical date).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
import scipy.sparse as sp
from implicit.cpu.topk import topk
from sklearn.feature_extraction.text import TfidfVectorizer

from ml.dates import to_date
from ml.serving.inputs import latest_logical_date
from ml.serving.model import ScoringModel, load_scoring_model
from ml.warehouse import connect
from ml.warehouse.stage_log import record_stage
from ml.warehouse.tables import read_frame, write_partition

log = logging.getLogger(__name__)

COLLABORATIVE_REASON = "bought by the same customers"
CONTENT_REASON = "similar description"
_FILTERED = -1e37

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
class SimilarConfig:
    """Size and batching of the similar-products lists.

    Parameters
    ----------
    m : int
        Similar products per product.
    chunk_size : int
        Products per batch.
    num_threads : int
        Threads of implicit's topk (0: all cores).
    keep_dates : int
        Logical dates kept in ``ml.similar_products``.
    """

    m: int = 10
    chunk_size: int = 4096
    num_threads: int = 0
    keep_dates: int = 3


def load_products(con) -> pl.DataFrame:
    """Read the catalogue: ids, text, and whether a product may be suggested."""
    return read_frame(
        con,
        """
        SELECT product_id, product_name, product_description, category,
               coalesce(is_product, true) AS is_product, is_recommendable AS eligible
        FROM marts.dim_products ORDER BY product_id
        """,
    )


def product_texts(products: pl.DataFrame) -> list[str]:
    """Name, description and category of each product as one document."""
    return (
        products.select(
            pl.concat_str(
                [
                    pl.col("product_name").fill_null(""),
                    pl.col("product_description").fill_null(""),
                    pl.col("category").fill_null(""),
                ],
                separator=" ",
            )
        )
        .to_series()
        .to_list()
    )


def _top_m(scores: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``m`` columns per row by score (ties: lower column first); ``-inf`` never kept."""
    width = scores.shape[1]
    take = min(m, width)
    if take == 0:
        return np.full((len(scores), m), -1), np.full((len(scores), m), np.nan, np.float32)
    part = np.argpartition(-scores, take - 1, axis=1)[:, :take] if take < width else None
    if part is None:
        part = np.broadcast_to(np.arange(width), scores.shape)
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    ids = np.take_along_axis(part, order, axis=1)
    values = np.take_along_axis(part_scores, order, axis=1)
    ids = np.where(np.isfinite(values), ids, -1)
    if take < m:
        ids = np.pad(ids, ((0, 0), (0, m - take)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, m - take)), constant_values=-np.inf)
    return ids, np.where(ids >= 0, values, np.nan).astype(np.float32)


def content_similar(
    texts: list[str], sources: np.ndarray, candidates: np.ndarray, m: int, chunk_size: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """TF-IDF cosine neighbours of ``sources`` among ``candidates`` (indices into ``texts``).

    Returns
    -------
    ids, scores : numpy.ndarray
        ``(len(sources), m)`` indices into ``texts`` (``-1`` padding), best first; the
        source itself and candidates sharing no term are left out.
    """
    ids = np.full((len(sources), m), -1, dtype=np.int64)
    scores = np.full((len(sources), m), np.nan, dtype=np.float32)
    if len(sources) == 0 or len(candidates) == 0:
        return ids, scores
    # Word uni- and bigrams, sublinear tf: product names are short and repetitive.
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english")
    try:
        matrix = vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # every text empty or stop words only
        return ids, scores
    candidate_matrix = matrix[candidates].T.tocsc()
    for start in range(0, len(sources), chunk_size):
        block = sources[start : start + chunk_size]
        similarity = (matrix[block] @ candidate_matrix).toarray().astype(np.float32)
        similarity[similarity <= 0] = -np.inf
        similarity[candidates[None, :] == block[:, None]] = -np.inf
        top, top_scores = _top_m(similarity, m)
        ids[start : start + len(block)] = np.where(top >= 0, candidates[np.maximum(top, 0)], -1)
        scores[start : start + len(block)] = top_scores
    return ids, scores


def collaborative_similar(
    unit_factors: np.ndarray,
    sources: np.ndarray,
    candidates: np.ndarray,
    m: int,
    *,
    chunk_size: int = 4096,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Item-factor cosine neighbours of ``sources`` among ``candidates``.

    Parameters
    ----------
    unit_factors : numpy.ndarray
        Unit-length item factors, indexed like ``sources`` / ``candidates``.
    sources, candidates : numpy.ndarray
        Row indices into ``unit_factors``.
    m : int
        Neighbours per source (the source itself is never one).

    Returns
    -------
    ids, scores : numpy.ndarray
        ``(len(sources), m)`` indices into ``unit_factors`` (``-1`` padding), best first.
    """
    ids = np.full((len(sources), m), -1, dtype=np.int64)
    scores = np.full((len(sources), m), np.nan, dtype=np.float32)
    if len(sources) == 0 or len(candidates) == 0:
        return ids, scores
    block_factors = np.ascontiguousarray(unit_factors[candidates])
    position = np.full(len(unit_factors), -1, dtype=np.int64)
    position[candidates] = np.arange(len(candidates))
    width = min(m, len(candidates))
    for start in range(0, len(sources), chunk_size):
        block = sources[start : start + chunk_size]
        own = position[block]
        has_own = own >= 0
        # Each source's own column is filtered inside topk.
        itself = sp.csr_matrix(
            (np.ones(int(has_own.sum()), np.float32), (np.flatnonzero(has_own), own[has_own])),
            shape=(len(block), len(candidates)),
        )
        top, top_scores = topk(
            block_factors,
            unit_factors[block],
            width,
            filter_query_items=itself if itself.nnz else None,
            num_threads=num_threads,
        )
        top = np.where(top_scores <= _FILTERED, -1, top).astype(np.int64)
        ids[start : start + len(block), :width] = np.where(
            top >= 0, candidates[np.maximum(top, 0)], -1
        )
        scores[start : start + len(block), :width] = np.where(top >= 0, top_scores, np.nan)
    return ids, scores


SIMILAR_SCHEMA = {
    "product_id": pl.String,
    "rank": pl.Int32,
    "similar_product_id": pl.String,
    "score": pl.Float64,
    "reason": pl.String,
    "method": pl.String,
}


def similar_all(
    products: pl.DataFrame, model: ScoringModel, config: SimilarConfig | None = None
) -> pl.DataFrame:
    """Compute the similar-products lists of every merchandise product (no warehouse I/O).

    Returns
    -------
    polars.DataFrame
        Columns of ``ml.similar_products`` except ``logical_date``.
    """
    config = config or SimilarConfig()
    m = config.m
    product_ids = products["product_id"].cast(pl.String).to_numpy().astype(str)
    eligible = products["eligible"].fill_null(False).to_numpy().astype(bool)
    merchandise = products["is_product"].fill_null(True).to_numpy().astype(bool)
    model_cols = model.product_cols(product_ids)
    seen = model_cols >= 0
    if model.has_item_similarity:
        unit = np.zeros((len(product_ids), model.item_factors.shape[1]), dtype=np.float32)
        unit[seen] = model.unit_item_factors()[model_cols[seen]]
        seen &= np.linalg.norm(unit, axis=1) > 0
    else:
        unit = np.zeros((len(product_ids), 1), dtype=np.float32)
        seen[:] = False  # no item factors: content similarity for everyone
    cf_sources = np.flatnonzero(merchandise & seen)
    content_sources = np.flatnonzero(merchandise & ~seen)
    cf_ids, cf_scores = collaborative_similar(
        unit,
        cf_sources,
        np.flatnonzero(eligible & seen),
        m,
        chunk_size=config.chunk_size,
        num_threads=config.num_threads,
    )
    text_ids, text_scores = content_similar(
        product_texts(products), content_sources, np.flatnonzero(eligible), m, config.chunk_size
    )
    frames = []
    for sources, ids, scores, reason, method in (
        (cf_sources, cf_ids, cf_scores, COLLABORATIVE_REASON, "collaborative"),
        (content_sources, text_ids, text_scores, CONTENT_REASON, "content"),
    ):
        filled = ids >= 0
        frames.append(
            pl.DataFrame(
                {
                    "product_id": product_ids[np.repeat(sources, m).reshape(-1, m)[filled]],
                    "rank": np.broadcast_to(np.arange(1, m + 1, dtype=np.int32), ids.shape)[filled],
                    "similar_product_id": product_ids[ids[filled]],
                    "score": np.round(scores[filled].astype(np.float64), 6),
                    "reason": reason,
                    "method": method,
                },
                # Explicit types: an empty side (e.g. no item factors) must still concat.
                schema=SIMILAR_SCHEMA,
            )
        )
    result = pl.concat(frames).sort("product_id", "rank")
    log.info(
        "similar products: %d by item factors, %d by description, %d rows",
        len(cf_sources),
        len(content_sources),
        result.height,
    )
    return result


@dataclass
class SimilarReport:
    """What one similar-products run produced."""

    logical_date: date
    products: int
    collaborative: int
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
    logical_date : date or str, optional
        The run's logical date (default: the last day with an interaction).
    config : SimilarConfig, optional
    model : ScoringModel, optional
        Default: the MLflow ``champion``.
    """
    config = config or SimilarConfig()
    started = time.perf_counter()
    model = model or load_scoring_model()
    with connect() as con:
        day = to_date(logical_date) if logical_date is not None else latest_logical_date(con)
        table = similar_all(load_products(con), model, config)
        rows = write_partition(
            con,
            "similar_products",
            table,
            day,
            columns=SIMILAR_COLUMNS,
            order_by="product_id, rank",
            keep_dates=config.keep_dates,
        )
        by_method = table.group_by("method").agg(pl.col("product_id").n_unique())
        counts = dict(by_method.iter_rows())
        seconds = time.perf_counter() - started
        record_stage(con, day, "similar", rows=rows, seconds=seconds, detail=counts)
    report = SimilarReport(
        day,
        sum(counts.values()),
        counts.get("collaborative", 0),
        counts.get("content", 0),
        rows,
        seconds,
    )
    log.info(
        "similar products for %s: %d products (%d by description), %d rows in %.1fs",
        day,
        report.products,
        report.content,
        rows,
        seconds,
    )
    return report
