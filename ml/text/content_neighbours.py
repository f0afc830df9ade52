"""Similar products from behaviour and text together (hybrid), with a minimum-support rule.

Entry point: :func:`hybrid_similar` (pure, no warehouse). It keeps the output shape of
:func:`ml.serving.similar.similar_all` (``product_id, rank, similar_product_id, score, reason,
method``) and its exactness: each list is the true top ``m`` of the blended score.

The rule, per source product ``s`` with ``b`` distinct buyers, and candidate ``c``:

``score(s, c) = w(s) * v(c) * cf(s, c) + (1 - w(s)) * text(s, c)``

* ``text`` is the cosine of the wordllama embeddings, ``cf`` the cosine of the ALS item
  factors.
* ``w(s) = b / (b + shrinkage)`` (default shrinkage 20: a product with 20 buyers weighs
  both signals equally, one with 1,000 buyers is 98 % behaviour), and ``w(s) = 0`` below
  ``min_source_buyers`` buyers or without factors: a product nobody (or hardly anybody)
  bought gets content neighbours only.
* **Minimum support**: ``v(c) = b(c) / (b(c) + shrinkage)`` for candidates with at least
  ``min_candidate_buyers`` buyers, 0 below (significance weighting). Factors of a product
  few customers bought are noise that happens to sit near popular items (on Online Retail
  11 % of collaborative rows pointed at products with at most 2 buyers, and products with
  3-4 buyers still reached a best seller's top 5 without the shrinkage); such products can
  still appear through their text.

The **reason** of each row says which signal produced it, by its share of the blended
score: ``bought together`` when the behaviour term ``w * cf`` is at least
``dominant_share`` (default 3/4) of it, ``similar description`` when the text term is, and
both joined otherwise. It costs one dot product per row, not another top-k pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp
from implicit.cpu.topk import topk

log = logging.getLogger(__name__)

BOUGHT_TOGETHER = "bought together"
SIMILAR_DESCRIPTION = "similar description"
BOTH_REASONS = "bought together, similar description"
# implicit's topk marks filtered slots with -FLT_MAX.
_FILTERED = -1e37

SIMILAR_SCHEMA = {
    "product_id": pl.String,
    "rank": pl.Int32,
    "similar_product_id": pl.String,
    "score": pl.Float64,
    "reason": pl.String,
    "method": pl.String,
}


@dataclass(frozen=True)
class HybridConfig:
    """The blend and the minimum-support rule of :func:`hybrid_similar`.

    Parameters
    ----------
    m : int
        Similar products per product.
    shrinkage : float
        Behaviour weight ``buyers / (buyers + shrinkage)``.
    min_source_buyers : int
        Products with fewer buyers get content neighbours only.
    min_candidate_buyers : int
        Candidates with fewer buyers never score on behaviour (minimum support).
    dominant_share : float
        Share of the blended score one signal needs to be the row's only reason.
    chunk_size : int
        Source products per batch.
    num_threads : int
        Threads of implicit's ``topk`` (0: all cores).
    """

    m: int = 10
    shrinkage: float = 20.0
    min_source_buyers: int = 3
    min_candidate_buyers: int = 3
    dominant_share: float = 0.75
    chunk_size: int = 2048
    num_threads: int = 0


def top_neighbours(
    vectors: np.ndarray,
    sources: np.ndarray,
    candidates: np.ndarray,
    m: int,
    *,
    queries: np.ndarray | None = None,
    chunk_size: int = 2048,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``m`` candidates by dot product, the source itself left out.

    Parameters
    ----------
    vectors : numpy.ndarray
        ``(n, d)`` candidate-side vectors (unit length for cosine).
    sources, candidates : numpy.ndarray
        Row indices into ``vectors``.
    m : int
        Neighbours per source.
    queries : numpy.ndarray, optional
        ``(len(sources), d)`` query vectors (default ``vectors[sources]``).

    Returns
    -------
    ids, scores : numpy.ndarray
        ``(len(sources), m)`` row indices into ``vectors`` (``-1`` padding), best first
        (ties: lower index), and their scores (NaN padding).
    """
    sources = np.asarray(sources, dtype=np.int64)
    candidates = np.asarray(candidates, dtype=np.int64)
    ids = np.full((len(sources), m), -1, dtype=np.int64)
    scores = np.full((len(sources), m), np.nan, dtype=np.float32)
    if len(sources) == 0 or len(candidates) == 0 or m == 0:
        return ids, scores
    block = np.ascontiguousarray(vectors[candidates], dtype=np.float32)
    position = np.full(len(vectors), -1, dtype=np.int64)
    position[candidates] = np.arange(len(candidates))
    width = min(m, len(candidates))
    for start in range(0, len(sources), chunk_size):
        rows = sources[start : start + chunk_size]
        query = vectors[rows] if queries is None else queries[start : start + chunk_size]
        own = position[rows]
        has_own = own >= 0
        itself = sp.csr_matrix(
            (np.ones(int(has_own.sum()), np.float32), (np.flatnonzero(has_own), own[has_own])),
            shape=(len(rows), len(candidates)),
        )
        top, top_scores = topk(
            block,
            np.ascontiguousarray(query, dtype=np.float32),
            width,
            filter_query_items=itself if itself.nnz else None,
            num_threads=num_threads,
        )
        top = np.where(top_scores <= _FILTERED, -1, top).astype(np.int64)
        top, top_scores = _stable_ties(top, top_scores, candidates)
        ids[start : start + len(rows), :width] = np.where(
            top >= 0, candidates[np.maximum(top, 0)], -1
        )
        scores[start : start + len(rows), :width] = np.where(top >= 0, top_scores, np.nan)
    return ids, scores


def _stable_ties(top: np.ndarray, top_scores: np.ndarray, candidates: np.ndarray):
    """Order each row by score, then candidate index, so equal scores rank reproducibly."""
    keys = np.where(top >= 0, candidates[np.maximum(top, 0)], np.iinfo(np.int64).max)
    ranking = np.where(top >= 0, top_scores, -np.inf)
    order = np.lexsort((keys, -ranking), axis=1)
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, axis=1)


def behaviour_weight(buyers: np.ndarray, has_factors: np.ndarray, config: HybridConfig):
    """``w(s)``: the share of behaviour in each product's blended score."""
    buyers = np.asarray(buyers, dtype=np.float64)
    weight = buyers / (buyers + config.shrinkage)
    return np.where(has_factors & (buyers >= config.min_source_buyers), weight, 0.0).astype(
        np.float32
    )


def candidate_support(buyers: np.ndarray, has_factors: np.ndarray, config: HybridConfig):
    """How much a candidate's behaviour counts: ``b / (b + shrinkage)``, 0 below the minimum.

    A candidate bought by few customers has item factors that are mostly noise; shrinking
    its behavioural similarity by its own support (significance weighting) keeps a handful
    of buyers from topping a popular product's list, and below ``min_candidate_buyers`` it
    counts on text only.
    """
    buyers = np.asarray(buyers, dtype=np.float64)
    weight = buyers / (buyers + config.shrinkage)
    eligible = has_factors & (buyers >= config.min_candidate_buyers)
    return np.where(eligible, weight, 0.0).astype(np.float32)


def hybrid_similar(
    product_ids: np.ndarray,
    text_vectors: np.ndarray,
    item_factors: np.ndarray | None,
    buyers: np.ndarray,
    eligible: np.ndarray,
    sources: np.ndarray | None = None,
    config: HybridConfig | None = None,
) -> pl.DataFrame:
    """Similar products of every source product, blending behaviour and text.

    Parameters
    ----------
    product_ids : numpy.ndarray
        Catalogue product ids; every other array is aligned with it.
    text_vectors : numpy.ndarray
        ``(n, d)`` text embeddings (normalised here).
    item_factors : numpy.ndarray or None
        ``(n, k)`` item factors, all-zero rows for products the model does not know;
        ``None``: text only.
    buyers : numpy.ndarray
        Distinct buyers of each product (up to the logical date).
    eligible : numpy.ndarray
        Products that may be suggested (active merchandise).
    sources : numpy.ndarray, optional
        Boolean mask of products that get a list (default: all).
    config : HybridConfig, optional

    Returns
    -------
    polars.DataFrame
        :data:`SIMILAR_SCHEMA`, sorted by ``product_id, rank``; ``method`` is
        ``content`` for text-only lists and ``hybrid`` otherwise.
    """
    config = config or HybridConfig()
    product_ids = np.asarray(product_ids).astype(str)
    n, m = len(product_ids), config.m
    text = _unit(text_vectors)
    no_factors = np.zeros((n, 1), dtype=np.float32)
    factors = no_factors if item_factors is None else _unit(item_factors)
    has_factors = np.linalg.norm(factors, axis=1) > 0
    buyers = np.asarray(buyers, dtype=np.int64)
    support = candidate_support(buyers, has_factors, config)
    weight = behaviour_weight(buyers, has_factors, config)
    source_rows = np.flatnonzero(np.ones(n, bool) if sources is None else np.asarray(sources))
    candidates = np.flatnonzero(np.asarray(eligible, dtype=bool))
    # One matrix so one exact top-k does the blend: candidate = [cf * support, text],
    # query = [w * cf, (1 - w) * text]; their dot product is the blended score.
    candidate_side = np.hstack([factors * support[:, None], text]).astype(np.float32)
    w = weight[source_rows][:, None]
    queries = np.hstack([w * factors[source_rows], (1 - w) * text[source_rows]])
    kwargs = {"chunk_size": config.chunk_size, "num_threads": config.num_threads}
    ids, scores = top_neighbours(
        candidate_side, source_rows, candidates, m, queries=queries, **kwargs
    )
    reasons = _reasons(ids, source_rows, factors, support, text, weight, config)
    filled = ids >= 0
    method = np.where(weight[source_rows] > 0, "hybrid", "content")
    result = pl.DataFrame(
        {
            "product_id": product_ids[np.repeat(source_rows, m).reshape(-1, m)[filled]],
            "rank": np.broadcast_to(np.arange(1, m + 1, dtype=np.int32), ids.shape)[filled],
            "similar_product_id": product_ids[ids[filled]],
            "score": np.round(scores[filled].astype(np.float64), 6),
            "reason": reasons[filled],
            "method": np.repeat(method, m).reshape(-1, m)[filled],
        },
        schema=SIMILAR_SCHEMA,
    ).sort("product_id", "rank")
    log.info(
        "hybrid similar products: %d lists (%d text only), %d rows",
        len(source_rows),
        int((weight[source_rows] == 0).sum()),
        result.height,
    )
    return result


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _reasons(ids, source_rows, factors, support, text, weight, config):
    """Which signal produced each row: its share of the blended score (module docstring)."""
    cf_part = np.zeros(ids.shape, dtype=np.float32)
    text_part = np.zeros(ids.shape, dtype=np.float32)
    # Chunked: the gathered vectors are sources x m x d.
    for start in range(0, len(source_rows), config.chunk_size):
        rows = slice(start, start + config.chunk_size)
        src = source_rows[rows]
        safe = np.maximum(ids[rows], 0)
        own_cf = np.einsum("ik,ijk->ij", factors[src], factors[safe]) * support[safe]
        own_text = np.einsum("ik,ijk->ij", text[src], text[safe])
        cf_part[rows] = np.maximum(weight[src][:, None] * own_cf, 0)
        text_part[rows] = np.maximum((1 - weight[src])[:, None] * own_text, 0)
    total = np.maximum(cf_part + text_part, 1e-12)
    dominant = config.dominant_share
    reasons = np.where(
        cf_part / total >= dominant,
        BOUGHT_TOGETHER,
        np.where(text_part / total >= dominant, SIMILAR_DESCRIPTION, BOTH_REASONS),
    )
    return reasons.astype(object)
