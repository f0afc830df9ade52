"""Incremental scoring: re-score only the customers whose list can have changed.

A customer's list is a function of the serving model, the catalogue's candidate products
(eligible and known to the model) with their categories, the business rules, the
customer's own history (what they bought, when, what they viewed) and, through the
new-product slots, the new products whose look-alikes they bought. After each scoring run
the state of those inputs is kept in ``ml.score_state*`` (:mod:`ml.serving.score_state`;
per customer: a hash of their history and of their new-product candidates; per product:
candidate or not, category; one row of run-wide settings). The next night re-scores:

* **everyone** when a run-wide input changed: the model (name, version, factors), the
  rules (:class:`~ml.serving.config.ScoreConfig`), whether the category cap is feasible,
  or for the popularity blend any category; also on a full refresh, a backfill, a re-run
  of the state's own date, or when the state or the partition it describes is missing;
* **cold-start customers** always: their popularity lists move every night (on a 20k
  generated shop all 4,817 differed from the day before, first at rank 4 in the median)
  and cost no model (``bench/results/incremental_probe_20k.md``);
* customers whose **history hash** or **new-product candidates** changed, and new ones;
* customers with a purchase that **left the exclusion window** since the state's date;
* for a product that **left the candidates or changed category**: every customer whose
  list holds it; for one that **joined the candidates or changed category**: every warm
  customer whose score for it reaches the lowest collaborative score in their list
  (below it, the product could only enter the list's tail that the new-product slots push
  out; a list shorter than ``n`` always counts);
* for a product **demoted or restored** (reviews turning negative, issue 14): every
  customer whose list holds it (demotion only reorders a list). Those affected by nothing
  else are **re-ranked** from their stored list, not re-scored
  (:mod:`ml.serving.demotion_rerank`), unless their list cannot be put back in its order
  before demotion (then they are re-scored).

Everyone else keeps their rows: they are copied from the state's partition of
``ml.recommendations`` inside DuckDB. ``tests/test_incremental_rebuild.py`` holds the
result to a full rebuild, table by table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb
import numpy as np
import polars as pl

from ml.serving.config import ScoreConfig
from ml.serving.demotion_rerank import rerankable
from ml.serving.inputs import ScoringInputs
from ml.serving.model import ScoringModel
from ml.serving.reasons import NEW_SIMILAR_BOUGHT
from ml.serving.score_state import ScoreState, load_state
from ml.warehouse.tables import ML_SCHEMA, read_frame, table_exists

# More added candidate products than this: re-score everyone (one pass is cheaper).
MAX_TARGETED_PRODUCTS = 2_000
# Scores are stored rounded to 6 decimals and computed by another BLAS path here.
SCORE_SLACK = 1e-4


@dataclass
class ScorePlan:
    """Which customers a scoring run computes, and where the others' rows come from.

    Attributes
    ----------
    full : bool
        Score every customer.
    reason : str
        Why (for the logs and ``ml.stage_runs``).
    rescore : numpy.ndarray
        Customer ids to compute (every customer when ``full``).
    carry_from : date or None
        Logical date of the ``ml.recommendations`` partition the other customers' rows
        are copied from (None when ``full``).
    stats : dict
        Counts per cause.
    rerank : numpy.ndarray
        Customer ids whose stored list is only re-ranked for a demotion flip
        (:mod:`ml.serving.demotion_rerank`); none when ``full``.
    demoted_before : list of str
        The products demoted in the ``carry_from`` partition.
    """

    full: bool
    reason: str
    rescore: np.ndarray
    carry_from: date | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    rerank: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=str))
    demoted_before: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- planning


def _partition_exists(con: duckdb.DuckDBPyConnection, day: date) -> bool:
    if not table_exists(con, ML_SCHEMA, "recommendations"):
        return False
    return bool(
        con.execute(
            f"SELECT count(*) > 0 FROM {ML_SCHEMA}.recommendations WHERE logical_date = ?", [day]
        ).fetchall()[0][0]
    )


def warm_customers(inputs: ScoringInputs, model: ScoringModel, config: ScoreConfig) -> np.ndarray:
    """Ids of the customers :func:`~ml.serving.recommend.recommend_all` scores
    collaboratively (the rest get cold-start lists)."""
    if model.family == "popularity":
        return np.empty(0, dtype=str)
    ids = inputs.customers["customer_id"].cast(pl.String)
    sizes = (
        inputs.history.select(pl.col("customer_id").cast(pl.String), "product_id")
        .unique()
        .group_by("customer_id")
        .len()
    )
    counted = pl.DataFrame({"customer_id": ids}).join(sizes, on="customer_id", how="left")
    size = counted["len"].fill_null(0).to_numpy()
    known = model.customer_rows(counted["customer_id"].to_numpy()) >= 0
    return counted["customer_id"].to_numpy()[known & (size >= config.min_history_products)]


def _everyone(inputs: ScoringInputs, reason: str) -> ScorePlan:
    ids = inputs.customers["customer_id"].cast(pl.String).to_numpy().astype(str)
    return ScorePlan(True, reason, ids, None, {"customers": len(ids), "scored_customers": len(ids)})


def plan_scoring(
    con: duckdb.DuckDBPyConnection,
    day: date,
    inputs: ScoringInputs,
    model: ScoringModel,
    config: ScoreConfig,
    current: ScoreState,
    *,
    full_refresh: bool = False,
) -> ScorePlan:
    """Decide whom to score on ``day`` (see the module docstring).

    ``current`` is the state of this run's inputs
    (:func:`~ml.serving.score_state.current_state`).
    """
    previous = load_state(con) if not full_refresh else None
    why_full = (
        "full refresh"
        if full_refresh
        else "no saved scoring state"
        if previous is None
        else f"the state is of {previous.logical_date}, not before {day}"
        if previous.logical_date >= day
        else f"the partition of {previous.logical_date} is gone"
        if not _partition_exists(con, previous.logical_date)
        else _changed_settings(previous.settings, current.settings)
    )
    if why_full:
        return _everyone(inputs, why_full)
    assert previous is not None
    customers = current.customers.select("customer_id")
    warm = pl.DataFrame({"customer_id": warm_customers(inputs, model, config)})
    cold = customers.join(warm, on="customer_id", how="anti")
    compared = current.customers.join(
        previous.customers, on="customer_id", how="left", suffix="_before"
    )
    changed = compared.filter(
        pl.col("history_hash_before").is_null()
        | (pl.col("history_hash") != pl.col("history_hash_before"))
        | (pl.col("explore_hash") != pl.col("explore_hash_before"))
    ).select("customer_id")
    crossing = _left_the_window(inputs, previous.window_start, current.window_start)
    removed, added = _changed_products(previous.products, current.products)
    if len(added) > MAX_TARGETED_PRODUCTS:
        return _everyone(inputs, f"{len(added)} products joined the candidates")
    holding = _customers_listing(con, previous.logical_date, removed)
    # A product demoted or restored since then moves within the lists that hold it.
    demoted_before = sorted(previous.settings.get("demoted") or [])
    flipped = sorted(set(demoted_before) ^ set(current.settings.get("demoted") or []))
    demotion = _customers_listing(con, previous.logical_date, flipped)
    reaching = _customers_reaching(con, previous.logical_date, added, warm, model, config)
    rescore = pl.concat(
        [
            frame.select(pl.col("customer_id").cast(pl.String))
            for frame in (cold, changed, crossing, holding, reaching)
        ]
    ).unique()
    # Only customers of this run (an erased customer is in none of the inputs).
    rescore = rescore.join(customers, on="customer_id", how="semi")
    # Lists touched only by a demotion flip are re-ranked, when exactly possible.
    only_demotion = demotion.join(customers, on="customer_id", how="semi").join(
        rescore, on="customer_id", how="anti"
    )
    rerank = rerankable(con, previous.logical_date, only_demotion, demoted_before)
    not_rerankable = only_demotion.join(rerank, on="customer_id", how="anti")
    rescore = pl.concat([rescore, not_rerankable]).unique().sort("customer_id")
    stats = {
        "customers": customers.height,
        "scored_customers": rescore.height,
        "cold_start": cold.height,
        # Of the re-scored: the warm customers the model scores (the cold-start ones get
        # popularity lists, ~0.06 s per 5k customers, and change nearly every night).
        "scored_by_model": rescore.join(warm, on="customer_id", how="semi").height,
        "history_or_new_products_changed": changed.height,
        "left_exclusion_window": crossing.height,
        "products_left_or_moved": len(removed),
        "products_joined_or_moved": len(added),
        "listing_a_changed_product": holding.height,
        "reaching_a_new_candidate": reaching.height,
        "products_demoted_or_restored": len(flipped),
        "listing_a_demoted_or_restored_product": demotion.height,
        "reranked_for_demotion": rerank.height,
        "rescored_for_demotion_without_positions": not_rerankable.height,
    }
    return ScorePlan(
        False,
        f"incremental from {previous.logical_date}",
        rescore["customer_id"].to_numpy().astype(str),
        previous.logical_date,
        stats,
        rerank["customer_id"].to_numpy().astype(str),
        demoted_before,
    )


# Settings that change some lists, not all: compared by plan_scoring itself.
PER_LIST_SETTINGS = frozenset({"demoted"})


def _changed_settings(before: dict[str, Any], now: dict[str, Any]) -> str:
    keys = (set(before) | set(now)) - PER_LIST_SETTINGS
    changed = sorted(k for k in keys if before.get(k) != now.get(k))
    if not changed:
        return ""
    return "changed since the last scoring: " + ", ".join(changed)


def _left_the_window(
    inputs: ScoringInputs, before: datetime | None, now: datetime | None
) -> pl.DataFrame:
    """Customers with a purchase whose last date left the exclusion window since then."""
    if before is None or now is None or now <= before:
        return pl.DataFrame(schema={"customer_id": pl.String})
    return (
        inputs.history.filter(
            pl.col("bought").fill_null(False)
            & (pl.col("last_bought_at") >= before)
            & (pl.col("last_bought_at") < now)
        )
        .select(pl.col("customer_id").cast(pl.String))
        .unique()
    )


def _changed_products(before: pl.DataFrame, now: pl.DataFrame) -> tuple[list[str], list[str]]:
    """Products that left the candidates or changed category; those that joined or changed."""
    joined = now.join(before, on="product_id", how="full", suffix="_before", coalesce=True)
    was = pl.col("candidate_before").fill_null(False)
    is_ = pl.col("candidate").fill_null(False)
    moved = pl.col("category").ne_missing(pl.col("category_before"))
    removed = joined.filter(was & (~is_ | moved))["product_id"].to_list()
    added = joined.filter(is_ & (~was | moved))["product_id"].to_list()
    return removed, added


def _customers_listing(
    con: duckdb.DuckDBPyConnection, day: date, products: list[str]
) -> pl.DataFrame:
    """Customers whose list of ``day`` holds one of ``products``."""
    if not products:
        return pl.DataFrame(schema={"customer_id": pl.String})
    con.register("_changed_products", pl.DataFrame({"product_id": products}).to_arrow())
    try:
        return read_frame(
            con,
            f"SELECT DISTINCT customer_id FROM {ML_SCHEMA}.recommendations "
            "WHERE logical_date = ? AND product_id IN (SELECT product_id FROM _changed_products)",
            [day],
        )
    finally:
        con.unregister("_changed_products")


def _customers_reaching(
    con: duckdb.DuckDBPyConnection,
    day: date,
    products: list[str],
    warm: pl.DataFrame,
    model: ScoringModel,
    config: ScoreConfig,
) -> pl.DataFrame:
    """Warm customers whose score for one of ``products`` reaches their list's
    collaborative tail (or whose list is short)."""
    if not products or warm.height == 0:
        return pl.DataFrame(schema={"customer_id": pl.String})
    lists = read_frame(
        con,
        f"SELECT customer_id, count(*) AS listed, "
        f"min(score) FILTER (WHERE reason_code IS DISTINCT FROM '{NEW_SIMILAR_BOUGHT}') AS floor "
        f"FROM {ML_SCHEMA}.recommendations WHERE logical_date = ? GROUP BY customer_id",
        [day],
    )
    lists = warm.join(lists, on="customer_id", how="left")
    floor = lists["floor"].to_numpy().astype(np.float64)
    short = (lists["listed"].fill_null(0).to_numpy() < config.n) | np.isnan(floor)
    users = model.user_factors[model.customer_rows(lists["customer_id"].to_numpy())]
    items = model.item_factors[model.product_cols(np.asarray(products))]
    reaches = short.copy()
    slack = SCORE_SLACK * np.maximum(1.0, np.abs(np.nan_to_num(floor)))
    for start in range(0, len(users), 65_536):
        block = users[start : start + 65_536] @ items.T
        best = block.max(axis=1) if block.shape[1] else np.full(len(block), -np.inf)
        stop = start + len(block)
        reaches[start:stop] |= best >= floor[start:stop] - slack[start:stop]
    return lists.filter(pl.Series(reaches)).select("customer_id")


def subset_inputs(inputs: ScoringInputs, customer_ids: np.ndarray) -> ScoringInputs:
    """``inputs`` restricted to ``customer_ids`` (products and popularity unchanged)."""
    wanted = pl.DataFrame({"customer_id": np.asarray(customer_ids).astype(str)})
    customers = inputs.customers.join(
        wanted, left_on=pl.col("customer_id").cast(pl.String), right_on="customer_id", how="semi"
    )
    history = inputs.history.join(
        wanted, left_on=pl.col("customer_id").cast(pl.String), right_on="customer_id", how="semi"
    )
    return ScoringInputs(inputs.logical_date, customers, inputs.products, history, inputs.popular)


def customer_batches(inputs: ScoringInputs, size: int) -> Iterator[ScoringInputs]:
    """``inputs`` split into batches of ``size`` customers, in customer id order.

    Lists are sorted by customer, so the batches' lists, one after the other, are in the
    same order as the lists of everyone at once. ``size`` 0, or no more customers than
    ``size``: ``inputs`` itself, once.
    """
    if size <= 0 or inputs.customers.height <= size:
        yield inputs
        return
    ids = inputs.customers.get_column("customer_id").cast(pl.String).sort()
    for start in range(0, len(ids), size):
        yield subset_inputs(inputs, ids.slice(start, size).to_numpy())
