"""Exact top-k selection under the business filters: exclusions and the category cap.

implicit's ``topk`` does the scoring (one BLAS product per chunk of customers, selection
in C); this module keeps the selection exact when products are excluded per customer and
when at most ``max_per_category`` products of one category may be in a list.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from implicit.cpu.topk import topk

from ml.serving.config import ScoreConfig

log = logging.getLogger(__name__)

# implicit's topk marks filtered slots with -FLT_MAX.
_FILTERED = -1e37
# Extra candidates fetched per list before the exact re-ranking (see candidate_products).
RERANK_MARGIN = 8


def exact_scores(user_vectors: np.ndarray, item_factors: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``user . item`` for each ``(user, ids[user, j])`` in float64, rounded to 1e-9, the
    same for a customer whatever else is in the batch (``-inf`` where ``ids < 0``).

    BLAS's float32 GEMM rounds a row's dot products differently depending on where the
    row sits in the block (tile edges, kernels): the same customer scored among others
    got scores differing in the last bit, enough to swap two near-equal products.
    Products of float32 values are exact in float64; what is left of the summation order
    (~1e-16) is rounded away at 1e-9, so these scores, and every ranking made from them
    (ties: the lower item index), depend on the customer alone.
    """
    users = np.asarray(user_vectors, dtype=np.float64)
    safe = np.maximum(ids, 0)
    items = item_factors[safe].astype(np.float64, copy=False)  # (users, k, factors)
    out = np.matmul(items, users[:, :, None])[:, :, 0]
    out = np.round(out, 9)
    return np.where(ids >= 0, out, -np.inf)


def _under_cap(
    candidates: np.ndarray, categories: np.ndarray, max_per_category: int | None
) -> np.ndarray:
    """Which candidates (rank order per row) the cap keeps: at most ``max_per_category``
    per category, uncategorised (``-1``) never capped, empty slots (``-1``) never kept."""
    rows, width = candidates.shape
    valid = candidates >= 0
    keep = valid.copy()
    if max_per_category is not None and width:
        cats = np.where(valid, categories[np.maximum(candidates, 0)], -1)
        # Occurrence number of each candidate within its category, in rank order: a stable
        # sort groups equal categories and keeps rank order inside each group.
        order = np.argsort(cats, axis=1, kind="stable")
        grouped = np.take_along_axis(cats, order, axis=1)
        positions = np.broadcast_to(np.arange(width), (rows, width))
        starts = np.ones((rows, width), dtype=bool)
        starts[:, 1:] = grouped[:, 1:] != grouped[:, :-1]
        group_start = np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
        occurrence = np.empty_like(order)
        np.put_along_axis(occurrence, order, positions - group_start, axis=1)
        keep &= (cats < 0) | (occurrence < max_per_category)
    return keep


def cap_per_category(
    candidates: np.ndarray,
    scores: np.ndarray,
    categories: np.ndarray,
    n: int,
    max_per_category: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the first ``n`` candidates of each row with at most ``max_per_category`` per category.

    Parameters
    ----------
    candidates : numpy.ndarray
        ``(rows, c)`` product indices in rank order, ``-1`` for empty slots.
    scores : numpy.ndarray
        Matching scores.
    categories : numpy.ndarray
        Category code of each product index; ``-1`` means uncategorised (never capped).
    n : int
        List length.
    max_per_category : int or None
        The cap (``None``: no cap).

    Returns
    -------
    ids, kept_scores : numpy.ndarray
        ``(rows, n)``, ``-1`` / NaN where fewer than ``n`` candidates survive.
    short : numpy.ndarray
        Rows with fewer than ``n`` survivors.
    """
    rows, width = candidates.shape
    keep = _under_cap(candidates, categories, max_per_category)
    rank = np.cumsum(keep, axis=1) - 1
    slot = np.where(keep & (rank < n), rank, n)  # column n is a dump for dropped candidates
    ids = np.full((rows, n + 1), -1, dtype=np.int64)
    kept_scores = np.full((rows, n + 1), np.nan, dtype=np.result_type(scores, np.float32))
    row_index = np.broadcast_to(np.arange(rows)[:, None], (rows, width))
    ids[row_index, slot] = candidates
    kept_scores[row_index, slot] = scores
    ids, kept_scores = ids[:, :n], kept_scores[:, :n]
    return ids, kept_scores, (ids < 0).any(axis=1)


def _fetch_groups(counts: np.ndarray, most: int) -> list[tuple[np.ndarray, bool]]:
    """Rows grouped by how many candidates to over-fetch for their exclusions.

    A selection's cost grows with its width, so rows are fetched with the exclusions of
    their own group (counts up to 0, 4, 8, ... 32, then doubling up to ``most``) rather
    than with the chunk's largest. Rows with more than ``most`` exclusions go to the
    filtered selection (``True``).
    """
    bounds = [0, *range(4, min(most, 32) + 1, 4)]
    while bounds[-1] < most:
        bounds.append(min(most, bounds[-1] * 2))
    group = np.searchsorted(bounds, counts)  # the first bound >= count
    groups = [(np.flatnonzero(group == g), False) for g in range(len(bounds))]
    groups.append((np.flatnonzero(group == len(bounds)), True))
    return [(rows, filtered) for rows, filtered in groups if len(rows)]


def candidate_products(
    user_vectors: np.ndarray,
    item_factors: np.ndarray,
    exclude: sp.csr_matrix,
    width: int,
    num_threads: int = 0,
    rerank: bool = True,
    exact_items: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``width`` items per user, excluded items left out.

    implicit's ``topk`` can filter per user, but its filtering costs ~40 % of the
    throughput. Users with few exclusions (nearly all) therefore get ``width + their
    exclusion count`` candidates unfiltered and lose the excluded ones here, vectorised;
    only users with many exclusions go through the filtered ``topk``.

    The float32 GEMM's top ``width + RERANK_MARGIN`` are then re-scored by
    :func:`exact_scores` and re-ranked (ties: the lower item index), so a customer's
    list is the same whichever customers share its batch (what incremental scoring
    relies on); the float32 error (~1e-7 relative) cannot reach past the margin.

    ``exact_items`` is ``item_factors`` as float64 when the caller has it (a chunk loop
    converts once, not per chunk). ``rerank=False`` skips that step and returns the
    float32 top ``width + RERANK_MARGIN`` in float32 order (the caller re-ranks a pool of
    them exactly).

    Returns
    -------
    ids, scores : numpy.ndarray
        ``(users, width)`` item indices in rank order (``-1`` padding) and their float64
        scores.
    """
    users, n_items = len(user_vectors), item_factors.shape[0]
    target = width
    width = min(n_items, width + RERANK_MARGIN)
    ids = np.full((users, width), -1, dtype=np.int64)
    scores = np.full((users, width), np.nan, dtype=np.float32)
    counts = np.diff(exclude.indptr)
    for rows, filtered in _fetch_groups(counts, max(32, width)):
        sub = exclude[rows] if len(rows) < users else exclude
        fetch = min(n_items, width + (0 if filtered else int(counts[rows].max())))
        cand, cand_scores = topk(
            item_factors,
            user_vectors[rows],
            fetch,
            filter_query_items=sub if filtered else None,
            num_threads=num_threads,
        )
        cand = np.where(cand_scores <= _FILTERED, -1, cand).astype(np.int64)
        if not filtered and sub.nnz:
            owner = np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(sub.indptr))
            excluded_keys = owner * n_items + sub.indices
            keys = np.arange(len(rows), dtype=np.int64)[:, None] * n_items + cand
            drop = (cand < 0) | np.isin(keys, excluded_keys)
            order = np.argsort(drop, axis=1, kind="stable")  # survivors first, in rank order
            cand = np.take_along_axis(cand, order, axis=1)
            cand_scores = np.take_along_axis(cand_scores, order, axis=1)
            cand = np.where(np.take_along_axis(drop, order, axis=1), -1, cand)
        ids[rows, : min(width, cand.shape[1])] = cand[:, :width]
        scores[rows, : min(width, cand.shape[1])] = cand_scores[:, :width]
    if not rerank:
        return ids, np.where(ids >= 0, scores, np.nan)
    exact = exact_scores(user_vectors, item_factors if exact_items is None else exact_items, ids)
    order = np.lexsort((np.where(ids >= 0, ids, n_items), -exact), axis=1)[:, :target]
    ids = np.take_along_axis(ids, order, axis=1)
    exact = np.take_along_axis(exact, order, axis=1)
    return ids, np.where(ids >= 0, exact, np.nan)


def feasible_cap(config: ScoreConfig, categories: np.ndarray) -> ScoreConfig:
    """Drop the per-category cap when the catalogue cannot fill a list under it.

    With fewer than ``n / max_per_category`` categories (Online Retail has one,
    "Uncategorized") the cap would cut every list short; a full list wins.
    """
    if config.max_per_category is None:
        return config
    uncapped = int((categories < 0).sum())
    capacity = len(np.unique(categories[categories >= 0])) * config.max_per_category + uncapped
    if capacity >= config.n:
        return config
    log.warning(
        "max_per_category=%d cannot be met with %d categories for lists of %d: cap switched off",
        config.max_per_category,
        len(np.unique(categories[categories >= 0])),
        config.n,
    )
    return replace(config, max_per_category=None)


def top_products(
    user_vectors: np.ndarray,
    item_factors: np.ndarray,
    exclude: sp.csr_matrix,
    categories: np.ndarray,
    config: ScoreConfig,
    *,
    per_category_first: bool = False,
    stats: dict[str, int] | None = None,
    exact_items: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``config.n`` per user with exclusions and the category cap.

    One pass over the catalogue fetches each user's top ``2n``; users whose list the cap
    leaves short get their exact capped list from :func:`capped_top_products` (one more
    pass, category by category). When most users need that (tastes concentrated in a
    few categories), ``per_category_first`` skips the first pass.

    Parameters
    ----------
    user_vectors : numpy.ndarray
        ``(users, factors)``.
    item_factors : numpy.ndarray
        ``(items, factors)`` of the *eligible* products only.
    exclude : scipy.sparse.csr_matrix
        ``(users, items)``: products never to recommend to each user.
    categories : numpy.ndarray
        Category code per item (``-1``: uncategorised).
    config : ScoreConfig
    per_category_first : bool
        Go straight to the per-category selection (same result, other cost).
    stats : dict, optional
        Incremented with ``rows`` and ``per_category_rows`` (rows that needed it).
    exact_items : numpy.ndarray, optional
        ``item_factors`` as float64 (for the exact re-ranking), when the caller keeps it.

    Returns
    -------
    ids, scores : numpy.ndarray
        ``(users, n)`` item indices (``-1`` padding) and scores.
    """
    n, n_items = config.n, item_factors.shape[0]
    capped = config.max_per_category is not None and n_items > 0
    stats = stats if stats is not None else {}
    stats["rows"] = stats.get("rows", 0) + len(user_vectors)
    if capped and per_category_first:
        stats["per_category_rows"] = stats.get("per_category_rows", 0) + len(user_vectors)
        return capped_top_products(
            user_vectors, item_factors, exclude, categories, config, exact_items
        )
    # Over-fetch so the category cap rarely needs the second pass.
    width = min(n_items, 2 * n if capped else n)
    ids = np.full((len(user_vectors), n), -1, dtype=np.int64)
    scores = np.full((len(user_vectors), n), np.nan, dtype=np.float64)
    pending = np.arange(len(user_vectors))
    while len(pending) and width > 0:
        cand, cand_scores = candidate_products(
            user_vectors[pending],
            item_factors,
            exclude[pending],
            width,
            config.num_threads,
            exact_items=exact_items,
        )
        got, got_scores, short = cap_per_category(
            cand, cand_scores, categories, n, config.max_per_category
        )
        ids[pending], scores[pending] = got, got_scores
        # Short rows whose candidate list was full may find more further down the ranking.
        retry = short & (cand[:, -1] >= 0)
        if width >= n_items or not retry.any():
            break
        pending = pending[retry]
        if capped:
            stats["per_category_rows"] = stats.get("per_category_rows", 0) + len(pending)
            ids[pending], scores[pending] = capped_top_products(
                user_vectors[pending],
                item_factors,
                exclude[pending],
                categories,
                config,
                exact_items,
            )
            break
        width = min(n_items, width * 4)
    return ids, scores


def capped_top_products(
    user_vectors: np.ndarray,
    item_factors: np.ndarray,
    exclude: sp.csr_matrix,
    categories: np.ndarray,
    config: ScoreConfig,
    exact_items: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``config.n`` under the category cap, one category at a time.

    Customers' tastes concentrate in a few categories, so a global top-``2n`` mostly fails
    the cap and must be widened again and again (at 500k customers x 50k products, 90 %
    of the customers needed a second pass and 40 % a third: 3x the work). The capped list
    is exactly the best ``n`` among each category's own top ``max_per_category`` (the
    uncategorised products are never capped: their top ``n``), and those per-category
    top lists cost one pass over the catalogue in total.
    """
    n, cap = config.n, config.max_per_category
    users = len(user_vectors)
    order = np.argsort(categories, kind="stable")  # products grouped by category
    sorted_categories = categories[order]
    sorted_items = np.ascontiguousarray(item_factors[order])
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    exclude = sp.csr_matrix(exclude)
    exclude = sp.csr_matrix(
        (exclude.data, position[exclude.indices], exclude.indptr), shape=exclude.shape
    )
    exclude.sort_indices()
    starts = np.flatnonzero(np.r_[True, sorted_categories[1:] != sorted_categories[:-1]])
    ends = np.r_[starts[1:], len(order)]
    pool_ids, pool_scores = [], []
    for start, end in zip(starts, ends, strict=True):
        take = min(end - start, n if sorted_categories[start] < 0 else cap)
        # Each category's float32 top `take + RERANK_MARGIN`: the exact top `take` is in it.
        ids, scores = candidate_products(
            user_vectors,
            sorted_items[start:end],
            exclude[:, start:end],
            take,
            config.num_threads,
            rerank=False,
        )
        pool_ids.append(np.where(ids >= 0, order[np.maximum(ids, 0) + start], -1))
        pool_scores.append(scores)
    if not users:
        return np.full((0, n), -1, dtype=np.int64), np.full((0, n), np.nan)
    pool_ids = np.concatenate(pool_ids, axis=1)
    pool_scores = np.concatenate(pool_scores, axis=1)
    # The pool in float32 order; the capped list ends at the n-th kept position p, so the
    # exact capped list lies in the first p + 1 + RERANK_MARGIN: re-rank only those.
    ranking = np.where(pool_ids >= 0, pool_scores, -np.inf)
    first = np.lexsort((np.where(pool_ids >= 0, pool_ids, len(categories)), -ranking), axis=1)
    pool_ids = np.take_along_axis(pool_ids, first, axis=1)
    kept = np.cumsum(_under_cap(pool_ids, categories, cap), axis=1)
    full = kept[:, -1] >= n
    last = np.where(full, np.argmax(kept >= n, axis=1), pool_ids.shape[1] - 1)
    head = pool_ids[:, : min(pool_ids.shape[1], int(last.max()) + 1 + RERANK_MARGIN)]
    exact = exact_scores(user_vectors, item_factors if exact_items is None else exact_items, head)
    best = np.lexsort((np.where(head >= 0, head, len(categories)), -exact), axis=1)
    head = np.take_along_axis(head, best, axis=1)
    exact = np.take_along_axis(exact, best, axis=1)
    ids, scores, _ = cap_per_category(head, exact, categories, n, cap)
    return ids, np.where(ids >= 0, scores, np.nan)
