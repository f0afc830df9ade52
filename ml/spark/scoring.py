"""Scoring on Spark: blocks of customers against the item factors, with ``mapInPandas``.

The Python scorer (:func:`ml.serving.collaborative.collaborative_lists`) walks the warm
customers in chunks: each chunk's top products under the exclusions and the category cap
(:func:`ml.serving.topk.top_products`) and each recommendation's reason product
(:func:`ml.serving.reasons.reason_products`). Here the same two functions run inside
Spark tasks, one chunk per row: the customers' factors, exclusions and histories travel
as the rows (Arrow batches), the item side (candidate factors, categories, unit factors,
the config) is broadcast once. The lists, scores and reasons are therefore those of the
Python scorer by construction; what happens to them afterwards (reason codes, dates,
cold start, the table) is the existing code on the driver.

Used on Spark homes for at least ``AFFINITY_SPARK_SCORE_MIN_CUSTOMERS`` warm customers
(default 2,000,000: below it the driver's BLAS is faster than shipping the blocks).
"""

from __future__ import annotations

import io
import logging
import os
import time

import numpy as np
import scipy.sparse as sp

log = logging.getLogger(__name__)

DEFAULT_MIN_CUSTOMERS = 2_000_000


def spark_scoring_wanted(customers: int) -> bool:
    """Whether a Spark home scores ``customers`` warm customers on Spark."""
    from ml.engine import is_spark

    threshold = int(os.environ.get("AFFINITY_SPARK_SCORE_MIN_CUSTOMERS", DEFAULT_MIN_CUSTOMERS))
    return customers > 0 and customers >= threshold and is_spark()


def _pack(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _unpack(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def _pack_csr(matrix: sp.csr_matrix) -> bytes:
    matrix = sp.csr_matrix(matrix)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        data=matrix.data,
        indices=matrix.indices,
        indptr=matrix.indptr,
        shape=np.asarray(matrix.shape, dtype=np.int64),
    )
    return buffer.getvalue()


def _unpack_csr(data: bytes) -> sp.csr_matrix:
    with np.load(io.BytesIO(data), allow_pickle=False) as parts:
        matrix = sp.csr_matrix(
            (parts["data"], parts["indices"], parts["indptr"]), shape=tuple(parts["shape"])
        )
    matrix.sort_indices()
    return matrix


def score_blocks_on_spark(
    users: np.ndarray,
    item_block: np.ndarray,
    excluded: sp.csr_matrix,
    categories: np.ndarray,
    candidate: np.ndarray,
    history: sp.csr_matrix,
    unit: np.ndarray | None,
    config,
    spark=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score every customer row on Spark; return ``(ids, scores, reasons)`` like the loop.

    Parameters
    ----------
    users : numpy.ndarray
        ``(customers, factors)`` user vectors.
    item_block : numpy.ndarray
        ``(candidates, factors)`` factors of the eligible products.
    excluded : scipy.sparse.csr_matrix
        ``(customers, candidates)`` products never to recommend.
    categories : numpy.ndarray
        Category code per candidate.
    candidate : numpy.ndarray
        Catalogue position of each candidate.
    history : scipy.sparse.csr_matrix
        ``(customers, catalogue)`` reason histories.
    unit : numpy.ndarray or None
        Unit item factors in catalogue space (``None``: the model names no reasons).
    config : ScoreConfig
        List length, category cap, chunk size.
    """
    import pandas as pd

    from ml.spark.session import spark_session

    spark = spark or spark_session()
    started = time.perf_counter()
    chunk = max(1, int(config.chunk_size))
    excluded, history = sp.csr_matrix(excluded), sp.csr_matrix(history)
    rows = [
        {
            "block": block,
            "users": _pack(users[start : start + chunk]),
            "excluded": _pack_csr(excluded[start : start + chunk]),
            "history": _pack_csr(history[start : start + chunk]),
        }
        for block, start in enumerate(range(0, len(users), chunk))
    ]
    items = spark.sparkContext.broadcast(
        (np.ascontiguousarray(item_block), categories, candidate, unit, config)
    )

    def run(frames):
        from ml.serving.collaborative import score_block

        item_factors, cats, cand, unit_factors, settings = items.value
        for frame in frames:
            out = []
            for row in frame.itertuples(index=False):
                ids, scores, reasons = score_block(  # the driver's own unit
                    _unpack(row.users),
                    item_factors,
                    _unpack_csr(row.excluded),
                    cats,
                    cand,
                    _unpack_csr(row.history),
                    unit_factors,
                    settings,
                )
                out.append((row.block, _pack(ids), _pack(scores), _pack(reasons)))
            yield pd.DataFrame(out, columns=["block", "ids", "scores", "reasons"])

    partitions = max(1, min(len(rows), spark.sparkContext.defaultParallelism * 4))
    frame = spark.createDataFrame(pd.DataFrame(rows)).repartition(partitions)
    schema = "block long, ids binary, scores binary, reasons binary"
    result = frame.mapInPandas(run, schema).toPandas().sort_values("block")
    items.unpersist()
    n = config.n
    if not len(result):
        empty = np.empty((0, n))
        return empty.astype(np.int64), empty.astype(np.float32), empty.astype(np.int64)
    ids = np.concatenate([_unpack(b) for b in result["ids"]])
    scores = np.concatenate([_unpack(b) for b in result["scores"]])
    reasons = np.concatenate([_unpack(b) for b in result["reasons"]])
    log.info(
        "scored %d customers on Spark in %d blocks (%.1fs)",
        len(users),
        len(rows),
        time.perf_counter() - started,
    )
    return ids, scores, reasons
