"""Recommendations for every customer: the champion model, business filters, reasons, cold start.

For each customer of ``marts.dim_customers`` the top ``n`` products:

* **collaborative** (the customer is in the model and has at least
  ``min_history_products`` products in their history): exact top-k of the model's scores
  (implicit's ``topk``: one BLAS product per chunk of customers, selection in C), with the
  business filters applied inside the selection (nothing bought within
  ``exclusion_days``, no inactive product, no non-product code) and after it (at most
  ``max_per_category`` per category). The **reason** is the product of the customer's
  history whose item factors are closest (cosine) to the recommended product: "because you
  bought X";
* **cold start** (too little history, or not in the model): the products most bought in the
  last ``popularity_days`` by customers of the same RFM segment, else of the same country,
  else by everyone, with the same filters.

Results land in ``ml.recommendations`` (one partition per logical date, replaced on re-run).
The dbt output mart ``recommendations`` adds product names and the reason text.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from implicit.cpu.topk import topk

from ml.publish import read_frame, record_stage, to_date, write_partition
from ml.warehouse import connect

log = logging.getLogger(__name__)

# Reason codes (the dbt mart turns them into text with the product name / context).
BOUGHT_SIMILAR = "bought_similar"  # because you bought X
BOUGHT_BEFORE = "bought_before"  # you bought it before, outside the exclusion window
VIEWED_SIMILAR = "viewed_similar"  # because you viewed X (history without purchases)
RECOMMENDED_FOR_YOU = "recommended_for_you"  # collaborative, no history product to name
POPULAR_IN_SEGMENT = "popular_in_segment"
POPULAR_IN_COUNTRY = "popular_in_country"
POPULAR_OVERALL = "popular_overall"

# implicit's topk marks filtered slots with -FLT_MAX.
_FILTERED = -1e37
# Cap on (customers x history length) gathered at once when computing reasons.
_REASON_BLOCK = 400_000

RECOMMENDATION_COLUMNS = {
    "logical_date": "DATE",
    "customer_id": "VARCHAR",
    "rank": "INTEGER",
    "product_id": "VARCHAR",
    "score": "DOUBLE",
    "reason_code": "VARCHAR",
    "reason_product_id": "VARCHAR",
    "reason_context": "VARCHAR",
    "model_name": "VARCHAR",
    "model_version": "VARCHAR",
}


@dataclass(frozen=True)
class ScoreConfig:
    """Business rules and batch sizes of the recommendation scoring.

    Parameters
    ----------
    n : int
        Recommendations per customer.
    exclusion_days : int or None
        Never recommend a product the customer bought in the last ``exclusion_days`` days
        (up to the end of the logical date); ``None`` excludes everything ever bought.
    max_per_category : int or None
        At most this many products of one category per list (uncategorised products are
        not capped); ``None`` switches the cap off.
    min_history_products : int
        Customers with fewer distinct products in their history get cold-start lists.
    popularity_days : int
        Window of the cold-start popularity (distinct buyers per product).
    chunk_size : int
        Customers scored per batch (memory ~ chunk_size x candidates).
    num_threads : int
        Threads of implicit's topk (0: all cores).
    keep_dates : int
        Logical dates kept in ``ml.recommendations``.
    """

    n: int = 20
    exclusion_days: int | None = 365
    max_per_category: int | None = 5
    min_history_products: int = 2
    popularity_days: int = 90
    chunk_size: int = 4096
    num_threads: int = 0
    keep_dates: int = 3


# --------------------------------------------------------------------------- model adapter


@dataclass
class ScoringModel:
    """A fitted recommender as scoring sees it: factors plus id maps.

    Attributes
    ----------
    name, version, family : str
        Registered model name, version, and family (``als``, ``bpr``, ``popularity``).
    customer_ids, product_ids : numpy.ndarray
        Ids of the factor rows (customers) and columns (products).
    user_factors, item_factors : numpy.ndarray
        float32 factors; the popularity baseline is the rank-1 model
        ``user = 1, item = popularity``.
    """

    name: str
    version: str
    family: str
    customer_ids: np.ndarray
    product_ids: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray

    def __post_init__(self) -> None:
        self.customer_ids = np.asarray(self.customer_ids).astype(str)
        self.product_ids = np.asarray(self.product_ids).astype(str)
        self.user_factors = np.ascontiguousarray(self.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(self.item_factors, dtype=np.float32)
        if self.user_factors.shape[0] != len(self.customer_ids):
            raise ValueError("user_factors needs one row per customer id")
        if self.item_factors.shape[0] != len(self.product_ids):
            raise ValueError("item_factors needs one row per product id")
        self._customer_index = _Index(self.customer_ids)
        self._product_index = _Index(self.product_ids)

    @property
    def has_item_similarity(self) -> bool:
        """Whether item factors carry similarity (not the rank-1 popularity model)."""
        return self.family != "popularity" and self.item_factors.shape[1] > 1

    def customer_rows(self, ids) -> np.ndarray:
        """Row of each customer id, ``-1`` when the model does not know it."""
        return self._customer_index.lookup(ids)

    def product_cols(self, ids) -> np.ndarray:
        """Column of each product id, ``-1`` when the model does not know it."""
        return self._product_index.lookup(ids)

    def unit_item_factors(self) -> np.ndarray:
        """Item factors scaled to unit length (zero vectors stay zero)."""
        norms = np.linalg.norm(self.item_factors, axis=1, keepdims=True)
        return (self.item_factors / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    @classmethod
    def from_recommender(cls, recommender, maps, *, name: str, version: str) -> ScoringModel:
        """Wrap an :mod:`ml.train.models` recommender and its ``IndexMaps``."""
        family = getattr(recommender, "family", "als")
        if family == "popularity":
            item = np.asarray(recommender.item_scores, dtype=np.float32)[:, None]
            user = np.ones((len(maps.customer_ids), 1), dtype=np.float32)
        else:
            user, item = recommender.user_factors, recommender.item_factors
        return cls(name, str(version), family, maps.customer_ids, maps.product_ids, user, item)


class _Index:
    """Vectorised id -> position lookup (``-1`` for unknown ids)."""

    def __init__(self, ids: np.ndarray) -> None:
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]

    def lookup(self, wanted) -> np.ndarray:
        wanted = np.asarray(wanted).astype(str)
        if len(self._sorted) == 0:
            return np.full(len(wanted), -1, dtype=np.int64)
        pos = np.clip(np.searchsorted(self._sorted, wanted), 0, len(self._sorted) - 1)
        found = self._sorted[pos] == wanted
        return np.where(found, self._order[pos], -1).astype(np.int64)


def load_scoring_model(name: str | None = None) -> ScoringModel:
    """Load the MLflow ``champion`` (:func:`ml.train.tracking.load_champion`) for scoring.

    Parameters
    ----------
    name : str, optional
        Registered model name (default: the training package's default name).

    Raises
    ------
    LookupError
        No version carries the ``champion`` alias yet (run ``affinity train``).
    """
    from ml.train.tracking import DEFAULT_MODEL_NAME, load_champion

    name = name or DEFAULT_MODEL_NAME
    champion = load_champion(name)
    model = ScoringModel.from_recommender(
        champion.model, champion.maps, name=name, version=str(champion.version)
    )
    log.info(
        "champion %s v%s (%s): %d customers x %d products, %d factors",
        name,
        model.version,
        model.family,
        len(model.customer_ids),
        len(model.product_ids),
        model.item_factors.shape[1],
    )
    return model


BASELINE_MODEL_NAME = "popularity-baseline"


def popularity_scoring_model(con, logical_date: date) -> ScoringModel:
    """The popularity baseline as a rank-1 model: what serves until a model passes the gate.

    Item score = distinct buyers of the product up to the end of ``logical_date``; every
    customer with a purchase gets the same (unit) user vector, so scoring ranks products
    by popularity and the business filters still apply.
    """
    purchases = """
        from marts.interaction_events
        where event_kind = 'purchase' and occurred_at < ?::date + interval 1 day
    """
    popularity = con.execute(
        f"select product_id, count(distinct customer_id) as buyers {purchases} group by 1 order by 1",
        [logical_date],
    ).fetchnumpy()
    customers = con.execute(
        f"select distinct customer_id {purchases} order by 1", [logical_date]
    ).fetchnumpy()["customer_id"]
    products, buyers = popularity["product_id"], popularity["buyers"]
    return ScoringModel(
        BASELINE_MODEL_NAME,
        "baseline",
        "popularity",
        customers,
        products,
        np.ones((len(customers), 1), dtype=np.float32),
        np.asarray(buyers, dtype=np.float32)[:, None],
    )


def load_serving_model(logical_date: date | str) -> ScoringModel:
    """The MLflow champion, or the popularity baseline while no model has passed the gate."""
    try:
        return load_scoring_model()
    except LookupError as exc:
        log.warning("%s; serving the popularity baseline until a model passes the gate", exc)
        with connect() as con:
            return popularity_scoring_model(con, to_date(logical_date))


# --------------------------------------------------------------------------- inputs


@dataclass
class ScoringInputs:
    """What scoring reads from the warehouse, as of the end of the logical date.

    Attributes
    ----------
    customers : polars.DataFrame
        ``customer_id, country, segment`` of every customer to score, sorted by id.
    products : polars.DataFrame
        ``product_id, category, eligible`` of the catalogue (eligible: an active product).
    history : polars.DataFrame
        ``customer_id, product_id, bought, last_bought_at`` per pair with any interaction.
    popular : polars.DataFrame
        ``group_kind, group_value, product_id, buyers`` over the popularity window.
    """

    logical_date: date
    customers: pl.DataFrame
    products: pl.DataFrame
    history: pl.DataFrame
    popular: pl.DataFrame

    @property
    def history_end(self) -> datetime:
        return datetime.combine(self.logical_date + timedelta(days=1), datetime.min.time())


def latest_logical_date(con) -> date:
    """Return the last day with an interaction (the default logical date)."""
    value = con.execute("SELECT max(occurred_at) FROM marts.interaction_events").fetchone()[0]
    if value is None:
        raise RuntimeError(
            "marts.interaction_events is empty: load data and build the marts first."
        )
    return value.date()


def load_inputs(con, logical_date: date, config: ScoreConfig) -> ScoringInputs:
    """Read customers, products, histories and popularity from the warehouse marts."""
    end = datetime.combine(logical_date + timedelta(days=1), datetime.min.time())
    customers = read_frame(
        con,
        """
        SELECT c.customer_id, c.country, s.segment
        FROM marts.dim_customers AS c
        LEFT JOIN marts.customer_rfm_segments AS s USING (customer_id)
        ORDER BY c.customer_id
        """,
    )
    products = read_frame(
        con,
        """
        SELECT product_id, category,
               coalesce(is_product, true) AND coalesce(is_active, true) AS eligible
        FROM marts.dim_products ORDER BY product_id
        """,
    )
    history = read_frame(
        con,
        """
        SELECT customer_id, product_id,
               bool_or(event_kind = 'purchase') AS bought,
               max(occurred_at) FILTER (WHERE event_kind = 'purchase') AS last_bought_at
        FROM marts.interaction_events
        WHERE occurred_at < ?
        GROUP BY customer_id, product_id
        ORDER BY customer_id, product_id
        """,
        [end],
    )
    since = end - timedelta(days=config.popularity_days)
    popular = read_frame(
        con,
        """
        WITH buys AS (
            SELECT DISTINCT e.customer_id, e.product_id, c.country, s.segment
            FROM marts.interaction_events AS e
            JOIN marts.dim_customers AS c USING (customer_id)
            LEFT JOIN marts.customer_rfm_segments AS s USING (customer_id)
            WHERE e.event_kind = 'purchase' AND e.occurred_at >= ? AND e.occurred_at < ?
        )
        SELECT 'segment' AS group_kind, segment AS group_value, product_id,
               count(*) AS buyers FROM buys WHERE segment IS NOT NULL GROUP BY ALL
        UNION ALL
        SELECT 'country', country, product_id, count(*) FROM buys
        WHERE country IS NOT NULL GROUP BY ALL
        UNION ALL
        SELECT 'overall', '', product_id, count(*) FROM buys GROUP BY ALL
        """,
        [since, end],
    )
    return ScoringInputs(logical_date, customers, products, history, popular)


# --------------------------------------------------------------------------- selection


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
    rank = np.cumsum(keep, axis=1) - 1
    slot = np.where(keep & (rank < n), rank, n)  # column n is a dump for dropped candidates
    ids = np.full((rows, n + 1), -1, dtype=np.int64)
    kept_scores = np.full((rows, n + 1), np.nan, dtype=np.float32)
    row_index = np.broadcast_to(np.arange(rows)[:, None], (rows, width))
    ids[row_index, slot] = candidates
    kept_scores[row_index, slot] = scores
    ids, kept_scores = ids[:, :n], kept_scores[:, :n]
    return ids, kept_scores, (ids < 0).any(axis=1)


def candidate_products(
    user_vectors: np.ndarray,
    item_factors: np.ndarray,
    exclude: sp.csr_matrix,
    width: int,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``width`` items per user, excluded items left out.

    implicit's ``topk`` can filter per user, but its filtering costs ~40 % of the
    throughput. Users with few exclusions (nearly all) therefore get ``width + their
    exclusion count`` candidates unfiltered and lose the excluded ones here, vectorised;
    only users with many exclusions go through the filtered ``topk``.

    Returns
    -------
    ids, scores : numpy.ndarray
        ``(users, width)`` item indices in rank order (``-1`` padding) and their scores.
    """
    users, n_items = len(user_vectors), item_factors.shape[0]
    ids = np.full((users, width), -1, dtype=np.int64)
    scores = np.full((users, width), np.nan, dtype=np.float32)
    counts = np.diff(exclude.indptr)
    light = counts <= max(32, width)
    for rows, filtered in ((np.flatnonzero(light), False), (np.flatnonzero(~light), True)):
        if len(rows) == 0:
            continue
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
    scores = np.where(ids >= 0, scores, np.nan).astype(np.float32)
    return ids, scores


def _feasible_cap(config: ScoreConfig, categories: np.ndarray) -> ScoreConfig:
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
        return capped_top_products(user_vectors, item_factors, exclude, categories, config)
    # Over-fetch so the category cap rarely needs the second pass.
    width = min(n_items, 2 * n if capped else n)
    ids = np.full((len(user_vectors), n), -1, dtype=np.int64)
    scores = np.full((len(user_vectors), n), np.nan, dtype=np.float32)
    pending = np.arange(len(user_vectors))
    while len(pending) and width > 0:
        cand, cand_scores = candidate_products(
            user_vectors[pending], item_factors, exclude[pending], width, config.num_threads
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
                user_vectors[pending], item_factors, exclude[pending], categories, config
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
        ids, scores = candidate_products(
            user_vectors,
            sorted_items[start:end],
            exclude[:, start:end],
            take,
            config.num_threads,
        )
        pool_ids.append(np.where(ids >= 0, order[np.maximum(ids, 0) + start], -1))
        pool_scores.append(scores)
    pool_ids = np.concatenate(pool_ids, axis=1)
    pool_scores = np.concatenate(pool_scores, axis=1)
    ranking = np.where(pool_ids >= 0, pool_scores, -np.inf)
    # Best first; equal scores keep the lower product index (the stable tie rule).
    best = np.lexsort((pool_ids, -ranking), axis=1)[:, :n] if users else np.empty((0, 0), int)
    ids = np.full((users, n), -1, dtype=np.int64)
    scores = np.full((users, n), np.nan, dtype=np.float32)
    width = best.shape[1]
    ids[:, :width] = np.take_along_axis(pool_ids, best, axis=1)
    scores[:, :width] = np.take_along_axis(pool_scores, best, axis=1)
    scores = np.where(ids >= 0, scores, np.nan).astype(np.float32)
    return ids, scores


def reason_products(
    recommended: np.ndarray, history: sp.csr_matrix, unit_factors: np.ndarray
) -> np.ndarray:
    """For each recommendation, the history product with the closest item factors.

    Parameters
    ----------
    recommended : numpy.ndarray
        ``(users, n)`` item indices, ``-1`` for padding.
    history : scipy.sparse.csr_matrix
        ``(users, items)`` products in each user's history (sorted indices).
    unit_factors : numpy.ndarray
        Unit-length item factors.

    Returns
    -------
    numpy.ndarray
        ``(users, n)`` item indices (``-1`` where no history or no recommendation). Ties
        go to the lowest item index. A recommended product that is itself in the history
        is its own reason (cosine 1).
    """
    users, n = recommended.shape
    reasons = np.full((users, n), -1, dtype=np.int64)
    lengths = np.diff(history.indptr)
    # Customers sorted by history length, in blocks of bounded padded size: a few heavy
    # buyers do not inflate the padding of everyone else.
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    start = 0
    while start < len(order):
        longest = lengths[order[start]]
        stop = start + 1
        while stop < len(order):
            candidate_longest = lengths[order[min(stop + 255, len(order) - 1)]]
            if (min(stop + 256, len(order)) - start) * candidate_longest > _REASON_BLOCK:
                break
            stop = min(stop + 256, len(order))
            longest = candidate_longest
        block = order[start:stop]
        longest = lengths[block].max()
        offsets = np.arange(longest)
        valid = offsets[None, :] < lengths[block][:, None]
        positions = np.where(valid, history.indptr[block][:, None] + offsets[None, :], 0)
        past = history.indices[positions]  # (b, L)
        recs = recommended[block]
        rec_vectors = unit_factors[np.maximum(recs, 0)]  # (b, n, f)
        past_vectors = unit_factors[past]  # (b, L, f)
        similarity = np.matmul(rec_vectors, past_vectors.transpose(0, 2, 1))  # (b, n, L)
        # Its own cosine is 1 only up to rounding: make "bought before" win exactly.
        similarity = np.where(past[:, None, :] == recs[:, :, None], np.inf, similarity)
        similarity = np.where(valid[:, None, :], similarity, -np.inf)  # padding last
        best = np.argmax(similarity, axis=2)
        chosen = np.take_along_axis(past, best, axis=1)
        reasons[block] = np.where(recs >= 0, chosen, -1)
        start = stop
    return reasons


# --------------------------------------------------------------------------- scoring


@dataclass
class ScoreReport:
    """What one scoring run produced."""

    logical_date: date
    customers: int
    collaborative: int
    cold_start: int
    rows: int
    seconds: float
    catalog_coverage: float
    model_name: str
    model_version: str

    @property
    def customers_per_second(self) -> float:
        return self.customers / self.seconds if self.seconds else float("nan")

    def summary(self) -> str:
        return (
            f"scored {self.customers:,} customers for {self.logical_date} "
            f"({self.collaborative:,} collaborative, {self.cold_start:,} cold start): "
            f"{self.rows:,} recommendations in {self.seconds:.1f}s "
            f"({self.customers_per_second:,.0f} customers/s), catalog coverage "
            f"{self.catalog_coverage:.1%}, model {self.model_name} v{self.model_version}"
        )


def _pairs_csr(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    keep = (rows >= 0) & (cols >= 0)
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (rows[keep], cols[keep])), shape=shape
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix


def _category_codes(categories: pl.Series) -> np.ndarray:
    """Integer code per product; ``-1`` for a missing category (never capped)."""
    values = categories.cast(pl.String)
    known = sorted(v for v in values.unique().to_list() if v is not None)
    lookup = {v: i for i, v in enumerate(known)}
    return np.array([lookup.get(v, -1) for v in values.to_list()], dtype=np.int64)


def recommend_all(
    inputs: ScoringInputs, model: ScoringModel, config: ScoreConfig | None = None
) -> pl.DataFrame:
    """Compute the recommendations of every customer of ``inputs`` (no warehouse I/O).

    Returns
    -------
    polars.DataFrame
        Columns of ``ml.recommendations`` except ``logical_date``, sorted by customer and
        rank.
    """
    config = config or ScoreConfig()
    started = time.perf_counter()
    customers, products, history = inputs.customers, inputs.products, inputs.history
    customer_ids = customers["customer_id"].cast(pl.String).to_numpy().astype(str)
    product_ids = products["product_id"].cast(pl.String).to_numpy().astype(str)
    n_customers, n_products = len(customer_ids), len(product_ids)
    customer_index, product_index = _Index(customer_ids), _Index(product_ids)
    categories = _category_codes(products["category"])
    eligible = products["eligible"].fill_null(False).to_numpy().astype(bool)

    # Histories in catalogue space: everything interacted, what was bought, and what was
    # bought inside the exclusion window.
    h_rows = customer_index.lookup(history["customer_id"].to_numpy())
    h_cols = product_index.lookup(history["product_id"].to_numpy())
    bought_flag = history["bought"].fill_null(False).to_numpy().astype(bool)
    shape = (n_customers, n_products)
    interacted = _pairs_csr(h_rows, h_cols, shape)
    bought = _pairs_csr(h_rows[bought_flag], h_cols[bought_flag], shape)
    if config.exclusion_days is None:
        recent = bought_flag
    else:
        window_start = inputs.history_end - timedelta(days=config.exclusion_days)
        last = history["last_bought_at"].to_numpy()
        recent = bought_flag & (last >= np.datetime64(window_start))
    excluded = _pairs_csr(h_rows[recent], h_cols[recent], shape)
    # Reasons come from purchases; customers who only browsed get their browsing history.
    has_purchase = np.diff(bought.indptr) > 0
    reason_history = (bought + sp.diags((~has_purchase).astype(np.float32)) @ interacted).tocsr()
    reason_history.data[:] = 1.0
    reason_history.sort_indices()

    model_rows = model.customer_rows(customer_ids)
    history_size = np.diff(interacted.indptr)
    warm = (model_rows >= 0) & (history_size >= config.min_history_products)
    if model.family == "popularity":
        warm[:] = False  # the baseline is the cold-start list itself, with better context
    parts = []
    if warm.any():
        parts.append(
            _collaborative(
                np.flatnonzero(warm),
                model_rows,
                model,
                eligible,
                categories,
                excluded,
                reason_history,
                bought,
                product_ids,
                config,
            )
        )
    if (~warm).any():
        parts.append(
            _cold_start(np.flatnonzero(~warm), inputs, eligible, categories, excluded, config)
        )
    # Assemble the rows once, already in (customer_id, rank) order, gathering ids from
    # polars string columns: numpy string/object arrays of every row, then a concat and a
    # sort of the frame, took 9 s instead of 2.5 s at 10M rows, with extra full copies.
    if parts:
        customer_pos, ranks, product_pos, scores, codes, reason_pos, context = (
            np.concatenate(columns) for columns in zip(*parts, strict=True)
        )
    else:
        customer_pos = ranks = product_pos = reason_pos = codes = np.empty(0, np.int64)
        scores, context = np.empty(0, np.float32), np.empty(0, object)
    del parts
    id_order = np.empty(n_customers, dtype=np.int64)
    id_order[np.argsort(customer_ids, kind="stable")] = np.arange(n_customers)
    order = np.lexsort((ranks, id_order[customer_pos]))
    customer_series = pl.Series("customer_id", customer_ids, dtype=pl.String)
    product_series = pl.Series("product_id", product_ids, dtype=pl.String)
    reason_pos = reason_pos[order]
    result = pl.DataFrame(
        {
            "customer_id": customer_series.gather(customer_pos[order]),
            "rank": ranks[order].astype(np.int32),
            "product_id": product_series.gather(product_pos[order]),
            "score": np.round(scores[order].astype(np.float64), 6),
            "reason_code": codes[order],
            "reason_product_id": product_series.gather(np.maximum(reason_pos, 0)),
            "has_reason": reason_pos >= 0,
            "reason_context": pl.Series(context[order].tolist(), dtype=pl.String),
        }
    )
    result = result.with_columns(
        pl.when(pl.col("has_reason")).then(pl.col("reason_product_id")),
        pl.lit(model.name, dtype=pl.String).alias("model_name"),
        pl.lit(model.version, dtype=pl.String).alias("model_version"),
    ).drop("has_reason")
    log.info(
        "recommendations: %d customers (%d collaborative, %d cold start), %d rows in %.2fs",
        n_customers,
        int(warm.sum()),
        int((~warm).sum()),
        result.height,
        time.perf_counter() - started,
    )
    return result


def _collaborative(
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
    config = _feasible_cap(config, cand_categories)

    n = config.n
    out_ids = np.empty((len(positions), n), dtype=np.int64)
    out_scores = np.empty((len(positions), n), dtype=np.float32)
    out_reasons = np.empty((len(positions), n), dtype=np.int64)
    started = time.perf_counter()
    selection: dict[str, int] = {}
    for start in range(0, len(positions), config.chunk_size):
        stop = min(start + config.chunk_size, len(positions))
        users = model.user_factors[model_rows[positions[start:stop]]]
        # Once most customers' top lists fail the category cap, skip the global pass.
        per_category_first = selection.get("per_category_rows", 0) > selection.get("rows", 1) / 2
        ids, scores = top_products(
            users,
            item_block,
            excluded[start:stop],
            cand_categories,
            config,
            per_category_first=per_category_first,
            stats=selection,
        )
        ids = np.where(ids >= 0, candidate[np.maximum(ids, 0)], -1)  # back to catalogue
        out_ids[start:stop], out_scores[start:stop] = ids, scores
        if model.has_item_similarity:
            out_reasons[start:stop] = reason_products(ids, reason_history[start:stop], unit)
        else:
            out_reasons[start:stop] = -1
        if (start // config.chunk_size) % 25 == 24:
            elapsed = time.perf_counter() - started
            log.info("scored %d/%d customers (%.0f/s)", stop, len(positions), stop / elapsed)

    filled = out_ids >= 0
    customer_pos = np.repeat(positions, n).reshape(-1, n)[filled]
    ranks = np.broadcast_to(np.arange(1, n + 1), out_ids.shape)[filled]
    reasons = out_reasons[filled]
    same = reasons == out_ids[filled]
    buyer = np.repeat(has_purchase, n).reshape(-1, n)[filled]
    codes = np.where(
        reasons < 0,
        RECOMMENDED_FOR_YOU,
        np.where(same, BOUGHT_BEFORE, np.where(buyer, BOUGHT_SIMILAR, VIEWED_SIMILAR)),
    )
    context = np.full(len(reasons), None, dtype=object)
    return customer_pos, ranks, out_ids[filled], out_scores[filled], codes, reasons, context


def _cold_start(
    positions: np.ndarray,
    inputs: ScoringInputs,
    eligible: np.ndarray,
    categories: np.ndarray,
    excluded: sp.csr_matrix,
    config: ScoreConfig,
):
    """Popular-in-segment (else country, else overall) lists for cold customers."""
    config = _feasible_cap(config, categories[eligible])
    n = config.n
    product_index = _Index(inputs.products["product_id"].cast(pl.String).to_numpy().astype(str))
    popular = inputs.popular.with_columns(
        pl.Series("col", product_index.lookup(inputs.popular["product_id"].to_numpy()))
    ).filter(pl.col("col") >= 0)
    popular = popular.filter(pl.Series(eligible[popular["col"].to_numpy()]))
    # Deterministic ranking inside each group: buyers, then product id.
    popular = popular.sort(
        ["group_kind", "group_value", "buyers", "product_id"],
        descending=[False, False, True, False],
    )
    depth = max(5 * n, 50)
    groups = {
        (kind, value): frame["col"].to_numpy()[:depth]
        for (kind, value), frame in popular.group_by(
            ["group_kind", "group_value"], maintain_order=True
        )
    }
    overall = groups.get(("overall", ""), np.empty(0, dtype=np.int64))
    if len(overall) < depth:
        # Top up with eligible products nobody bought recently (stable order).
        rest = np.setdiff1d(np.flatnonzero(eligible), overall, assume_unique=False)
        overall = np.concatenate([overall, rest[: depth - len(overall)]])
    # Each cold customer's group: their RFM segment, else their country, else everyone.
    present = set(groups)
    segments = inputs.customers[positions]["segment"].cast(pl.String)
    countries = inputs.customers[positions]["country"].cast(pl.String)
    seg_ok = segments.is_in([v for k, v in present if k == "segment"]).fill_null(False)
    ctry_ok = countries.is_in([v for k, v in present if k == "country"]).fill_null(False)
    group_keys = (
        pl.DataFrame({"segment": segments, "country": countries, "s": seg_ok, "c": ctry_ok})
        .select(
            kind=pl.when("s")
            .then(pl.lit("segment"))
            .when("c")
            .then(pl.lit("country"))
            .otherwise(pl.lit("overall")),
            value=pl.when("s").then("segment").when("c").then("country").otherwise(pl.lit("")),
        )
        .with_row_index("i")
    )
    code_of = {
        "segment": POPULAR_IN_SEGMENT,
        "country": POPULAR_IN_COUNTRY,
        "overall": POPULAR_OVERALL,
    }
    out = []
    excluded = excluded[positions]
    for (kind, value), members in group_keys.group_by(["kind", "value"], maintain_order=True):
        local = members["i"].to_numpy()
        listing = groups.get((kind, value), overall)
        listing = np.concatenate([listing, overall[~np.isin(overall, listing)]])
        cand = np.broadcast_to(listing, (len(local), len(listing))).copy()
        # Per-customer exclusion: drop products bought within the window.
        ex = excluded[local]
        if ex.nnz:
            ex_keys = (
                np.repeat(np.arange(len(local)), np.diff(ex.indptr)) * len(eligible) + ex.indices
            )
            keys = np.arange(len(local))[:, None] * len(eligible) + cand
            cand = np.where(np.isin(keys, ex_keys), -1, cand)
        # Popularity score: share of the group's top product buyers (1.0 for the top one).
        score_row = np.linspace(1.0, 0.0, len(listing), endpoint=False, dtype=np.float32)
        scores = np.broadcast_to(score_row, cand.shape)
        # Compact exclusions out before capping so the rank order stays.
        order = np.argsort(cand < 0, axis=1, kind="stable")
        cand = np.take_along_axis(cand, order, axis=1)
        scores = np.take_along_axis(scores, order, axis=1)
        ids, kept, _ = cap_per_category(cand, scores, categories, n, config.max_per_category)
        filled = ids >= 0
        count = int(filled.sum())
        out.append(
            (
                positions[np.repeat(local, n).reshape(-1, n)[filled]],
                np.broadcast_to(np.arange(1, n + 1), ids.shape)[filled],
                ids[filled],
                kept[filled],
                np.full(count, code_of[kind], dtype=object),
                np.full(count, -1, dtype=np.int64),
                np.full(count, value if kind != "overall" else None, dtype=object),
            )
        )
    if not out:
        empty = np.empty(0, dtype=np.int64)
        return (
            empty,
            empty,
            empty,
            np.empty(0, np.float32),
            np.empty(0, object),
            empty,
            np.empty(0, object),
        )
    return tuple(np.concatenate([part[i] for part in out]) for i in range(7))


def score(
    logical_date: date | str | None = None,
    *,
    config: ScoreConfig | None = None,
    model: ScoringModel | None = None,
) -> ScoreReport:
    """Score every customer and replace the logical date's rows of ``ml.recommendations``.

    Parameters
    ----------
    logical_date : date or str, optional
        The run's logical date (default: the last day with an interaction). History up to
        the end of that day counts.
    config : ScoreConfig, optional
        Business rules (defaults: top 20, a year's exclusion window, 5 per category).
    model : ScoringModel, optional
        The model to serve (default: the MLflow ``champion``, see
        :func:`load_scoring_model`).

    Returns
    -------
    ScoreReport
    """
    config = config or ScoreConfig()
    started = time.perf_counter()
    model = model or load_scoring_model()
    with connect() as con:
        day = to_date(logical_date) if logical_date is not None else latest_logical_date(con)
        inputs = load_inputs(con, day, config)
        recommendations = recommend_all(inputs, model, config)
        written = write_partition(
            con,
            "recommendations",
            recommendations,
            day,
            columns=RECOMMENDATION_COLUMNS,
            order_by="customer_id, rank",
            keep_dates=config.keep_dates,
        )
        coverage = (
            recommendations["product_id"].n_unique()
            / max(1, int(inputs.products["eligible"].sum()))
            if written
            else 0.0
        )
        cold = int(
            recommendations.filter(pl.col("rank") == 1)["reason_code"]
            .str.starts_with("popular")
            .sum()
        )
        seconds = time.perf_counter() - started
        report = ScoreReport(
            day,
            recommendations["customer_id"].n_unique(),
            recommendations["customer_id"].n_unique() - cold,
            cold,
            written,
            seconds,
            coverage,
            model.name,
            model.version,
        )
        record_stage(
            con,
            day,
            "score",
            rows=written,
            seconds=seconds,
            detail={**asdict(config), "catalog_coverage": round(coverage, 4)},
        )
    log.info("%s", report.summary())
    return report


def describe(report: ScoreReport) -> dict[str, Any]:
    """Return the report as plain data (for logs, XComs and benchmark files)."""
    return {**asdict(report), "customers_per_second": report.customers_per_second}
