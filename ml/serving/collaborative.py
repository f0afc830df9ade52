"""Collaborative lists: the warm customers' top products from the model's factors.

The customers scored collaboratively (in the model, enough history) are walked in chunks,
a chunk per thread on every core (:func:`score_block`, or the same blocks in Spark tasks
through :mod:`ml.spark.scoring`): each chunk's exact top products under the exclusions and
the category cap (:func:`ml.serving.topk.top_products`), each recommendation's reason product
(:func:`ml.serving.reasons.reason_products`), its reason code and the date the named
product was last bought. :func:`ml.serving.recommend.recommend_all` assembles these rows
with the cold-start ones (:func:`ml.serving.cold_start.cold_start_lists`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ml.serving.config import ScoreConfig
from ml.serving.model import ScoringModel
from ml.serving.reasons import POPULAR_OVERALL, LastBought, reason_codes, reason_products
from ml.serving.topk import feasible_cap, top_products
from ml.spark.scoring import spark_scoring_wanted

log = logging.getLogger(__name__)


def score_block(
    users,
    item_block,
    excluded,
    categories,
    candidate,
    history,
    unit,
    config,
    *,
    per_category_first=False,
    stats=None,
    exact_items=None,
):
    """One chunk: catalogue ids, scores, reason products (the driver's and Spark's unit)."""
    ids, scores = top_products(
        users,
        item_block,
        excluded,
        categories,
        config,
        per_category_first=per_category_first,
        stats=stats,
        exact_items=exact_items,
    )
    ids = np.where(ids >= 0, candidate[np.maximum(ids, 0)], -1)
    if unit is None:
        reasons = np.full(ids.shape, -1, dtype=np.int64)
    else:
        reasons = reason_products(ids, history, unit)
    return ids, scores, reasons


def _score_chunks_in_threads(
    users, item_block, excluded, categories, candidate, history, unit, config, out
):
    """Score the chunks on every core, a chunk per thread, into ``out`` (ids, scores, reasons).

    Each thread runs a whole chunk (top-k with one OpenMP thread, exclusions, cap, exact
    re-rank, reasons): numpy and implicit release the GIL in their loops, so the Python
    glue of one chunk overlaps the BLAS and selection of another. BLAS stays on one thread
    per chunk. A chunk's rows depend on its customers alone, so the result is the same
    whatever the thread count or finishing order.
    """
    out_ids, out_scores, out_reasons = out
    workers = max(1, config.num_threads or os.cpu_count() or 1)
    chunk_config = replace(config, num_threads=1) if workers > 1 else config
    exact_items = item_block.astype(np.float64)  # once, for every chunk's exact re-rank
    selection: dict[str, int] = {}
    lock = threading.Lock()
    started = time.perf_counter()
    done = 0

    def run(start: int) -> None:
        nonlocal done
        stop = min(start + config.chunk_size, len(users))
        with lock:
            # Once most customers' top lists fail the category cap, skip the global pass.
            per_category_first = (
                selection.get("per_category_rows", 0) > selection.get("rows", 1) / 2
            )
        stats: dict[str, int] = {}
        ids, scores, reasons = score_block(
            users[start:stop],
            item_block,
            excluded[start:stop],
            categories,
            candidate,
            history[start:stop],
            unit,
            chunk_config,
            per_category_first=per_category_first,
            stats=stats,
            exact_items=exact_items,
        )
        out_ids[start:stop], out_scores[start:stop], out_reasons[start:stop] = ids, scores, reasons
        with lock:
            for key, value in stats.items():
                selection[key] = selection.get(key, 0) + value
            done += stop - start
            if (start // config.chunk_size) % 25 == 24:
                log.info(
                    "scored %d/%d customers (%.0f/s)",
                    done,
                    len(users),
                    done / (time.perf_counter() - started),
                )

    starts = range(0, len(users), config.chunk_size)
    with threadpool_limits(limits=1, user_api="blas"):
        if workers == 1:
            for start in starts:
                run(start)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="score") as pool:
                list(pool.map(run, starts))


def collaborative_lists(
    positions: np.ndarray,
    model_rows: np.ndarray,
    model: ScoringModel,
    eligible: np.ndarray,
    categories: np.ndarray,
    excluded: sp.csr_matrix,
    reason_history: sp.csr_matrix,
    bought: sp.csr_matrix,
    product_ids: np.ndarray,
    config: ScoreConfig,
    last_bought: LastBought | None = None,
):
    """Score warm customers in chunks; return flat index arrays of the rows."""
    # Candidate items: eligible catalogue products the model knows, as one contiguous block.
    model_cols = model.product_cols(product_ids)
    candidate = np.flatnonzero(eligible & (model_cols >= 0))  # catalogue positions
    item_block = model.item_factors[model_cols[candidate]]
    # Map catalogue positions -> candidate positions for the exclusion matrix.
    to_candidate = np.full(len(eligible), -1, dtype=np.int64)
    to_candidate[candidate] = np.arange(len(candidate))
    excluded = excluded[positions].tocoo()
    ex_cols = to_candidate[excluded.col]
    keep = ex_cols >= 0
    excluded = sp.csr_matrix(
        (excluded.data[keep], (excluded.row[keep], ex_cols[keep])),
        shape=(len(positions), len(candidate)),
    )
    # Reasons are computed in catalogue space on the model's factors (zero if unknown).
    known = model_cols >= 0
    unit = np.zeros((len(eligible), model.item_factors.shape[1]), dtype=np.float32)
    unit[known] = model.unit_item_factors()[model_cols[known]]
    reason_history = reason_history[positions]
    has_purchase = np.diff(bought[positions].indptr) > 0
    cand_categories = categories[candidate]
    config = feasible_cap(config, cand_categories)

    n = config.n
    out_ids = np.empty((len(positions), n), dtype=np.int64)
    out_scores = np.empty((len(positions), n), dtype=np.float32)
    out_reasons = np.empty((len(positions), n), dtype=np.int64)
    blocks = (
        model.user_factors[model_rows[positions]],
        item_block,
        excluded,
        cand_categories,
        candidate,
        reason_history,
        unit if model.has_item_similarity else None,
        config,
    )
    if spark_scoring_wanted(len(positions)):  # Spark homes, many customers
        from ml.spark.scoring import score_blocks_on_spark

        out_ids, out_scores, out_reasons = score_blocks_on_spark(*blocks)
    else:
        _score_chunks_in_threads(*blocks, (out_ids, out_scores, out_reasons))

    filled = out_ids >= 0
    customer_pos = np.repeat(positions, n).reshape(-1, n)[filled]
    ranks = np.broadcast_to(np.arange(1, n + 1), out_ids.shape)[filled]
    reasons = out_reasons[filled]
    recommended = out_ids[filled]
    if model.family == "blend":
        # The blend ranks popularity lifted by the customer's categories: it can only
        # name a bought product of the same category; otherwise the product is popular.
        same_category = (categories[np.maximum(reasons, 0)] == categories[recommended]) & (
            categories[recommended] >= 0
        )
        reasons = np.where(same_category | (reasons == recommended), reasons, -1)
    buyer = np.repeat(has_purchase, n).reshape(-1, n)[filled]
    codes = reason_codes(recommended, reasons, buyer)
    if model.family == "blend":
        codes = np.where(reasons < 0, POPULAR_OVERALL, codes)
    context = np.full(len(reasons), None, dtype=object)
    if last_bought is not None:
        # "Bought" reasons say when: the day the customer last bought the named product.
        named = (reasons >= 0) & buyer
        context[named] = last_bought.dates(customer_pos[named], reasons[named])
    return customer_pos, ranks, recommended, out_scores[filled], codes, reasons, context
