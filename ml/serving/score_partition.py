"""One logical date of ``ml.recommendations``: plan, compute, write, keep the state.

:func:`score_partition` is the body of :func:`ml.serving.recommend.score`: it asks
:mod:`ml.serving.incremental` whom to score, computes those customers' lists
(:func:`~ml.serving.recommend.recommend_all` and the new-product slots), writes the
partition (everyone's rows, or the new rows plus the unchanged customers' rows copied from
the previous partition inside DuckDB) and saves the state the next night compares with.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
import numpy as np
import polars as pl

from ml.serving.config import ScoreConfig
from ml.serving.demotion_rerank import base_positions, carry_demotion, save_base_positions
from ml.serving.incremental import ScorePlan, customer_batches, plan_scoring, subset_inputs
from ml.serving.inputs import ScoringInputs
from ml.serving.model import ScoringModel
from ml.serving.new_products import exploration_candidates, explore_new_products
from ml.serving.review_demotion import demote_products
from ml.serving.score_state import current_state, save_state
from ml.serving.topk import feasible_cap
from ml.warehouse.tables import (
    ML_SCHEMA,
    partition_names,
    replacing_partition,
    row_slices,
    write_partition,
)

log = logging.getLogger(__name__)

TABLE = "recommendations"


@dataclass
class PartitionReport:
    """What was written for the logical date."""

    rows: int
    customers: int
    cold_start: int
    catalog_coverage: float
    plan: ScorePlan
    seconds: dict[str, float] = field(default_factory=dict)


def cap_is_feasible(inputs: ScoringInputs, model: ScoringModel, config: ScoreConfig) -> bool:
    """Whether collaborative lists keep the category cap (:func:`feasible_cap`)."""
    products = inputs.products
    eligible = products["eligible"].fill_null(False).to_numpy().astype(bool)
    known = model.product_cols(products["product_id"].cast(pl.String).to_numpy()) >= 0
    names = products["category"].cast(pl.String).to_list()
    kept = [name for name, keep in zip(names, eligible & known, strict=True) if keep]
    lookup = {v: i for i, v in enumerate(sorted({v for v in kept if v is not None}))}
    codes = np.array([-1 if v is None else lookup[v] for v in kept], dtype=np.int64)
    return feasible_cap(config, codes).max_per_category == config.max_per_category


def score_partition(
    con: duckdb.DuckDBPyConnection,
    day: date,
    inputs: ScoringInputs,
    model: ScoringModel,
    config: ScoreConfig,
    *,
    columns: dict[str, str],
    compute: Callable[[ScoringInputs, ScoringModel, ScoreConfig], pl.DataFrame],
    full_refresh: bool = False,
    demoted: list[str] | None = None,
) -> PartitionReport:
    """Score the customers whose lists can have changed and write ``day``'s partition.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Read-write warehouse connection.
    day : date
        The logical date.
    inputs : ScoringInputs
        Everything scoring reads, for every customer.
    model : ScoringModel
        The serving model.
    config : ScoreConfig
    columns : dict
        ``ml.recommendations``'s columns and types.
    compute : callable
        ``compute(inputs, model, config)``: the lists of the customers of ``inputs``
        (:func:`ml.serving.recommend.recommend_all`).
    full_refresh : bool
        Score every customer whatever the saved state says.
    demoted : list of str, optional
        Products moved below the others of every list
        (:func:`ml.serving.review_demotion.demote_products`).
    """
    timer = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal timer
        now = time.perf_counter()
        seconds[name] = round(now - timer, 2)
        timer = now

    candidates = exploration_candidates(con, inputs, config)
    current = current_state(
        day, inputs, model, config, candidates, cap_is_feasible(inputs, model, config), demoted
    )
    plan = plan_scoring(con, day, inputs, model, config, current, full_refresh=full_refresh)
    log.info(
        "scoring %d of %d customers (%s): %s",
        len(plan.rescore),
        plan.stats.get("customers", len(plan.rescore)),
        plan.reason,
        plan.stats,
    )
    lap("plan")
    scored = inputs if plan.full else subset_inputs(inputs, plan.rescore)
    computing = 0.0

    def batches() -> Iterator[ScoredBatch]:
        # One batch of customers at a time: only its rows are in memory while it is
        # written (at 10M rows, everyone at once peaked at 5.9 GB).
        nonlocal computing
        for part in customer_batches(scored, config.batch_customers):
            started = time.perf_counter()
            batch = score_batch(con, part, model, compute, config, candidates, demoted or [])
            computing += time.perf_counter() - started
            yield batch

    if plan.full:
        write_full(con, batches(), day, columns=columns, keep_dates=config.keep_dates)
    else:
        write_carried(
            con,
            batches(),
            day,
            plan,
            inputs,
            columns=columns,
            keep_dates=config.keep_dates,
            demoted=demoted,
        )
    seconds["compute"] = round(computing, 2)
    lap("write")
    seconds["write"] = round(seconds["write"] - computing, 2)
    save_state(con, current)
    figures = partition_figures(con, day, inputs)
    lap("state")
    return PartitionReport(plan=plan, seconds=seconds, **figures)


@dataclass
class ScoredBatch:
    """The lists of one batch of customers, ready to write."""

    rows: pl.DataFrame  # after the new-product slots and demotion, in (customer, rank) order
    positions: pl.DataFrame  # :func:`base_positions` before demotion, for tomorrow's re-rank


def score_batch(
    con: duckdb.DuckDBPyConnection,
    inputs: ScoringInputs,
    model: ScoringModel,
    compute: Callable[[ScoringInputs, ScoringModel, ScoreConfig], pl.DataFrame],
    config: ScoreConfig,
    candidates: pl.DataFrame | None,
    demoted: list[str],
) -> ScoredBatch:
    """The lists of the customers of ``inputs``: ``compute``, the new-product slots, demotion."""
    rows = compute(inputs, model, config)
    rows = explore_new_products(con, rows, inputs, config, candidates=candidates)
    return ScoredBatch(demote_products(rows, demoted), base_positions(rows, demoted))


def write_full(
    con: duckdb.DuckDBPyConnection,
    batches: Iterable[ScoredBatch],
    day: date,
    *,
    columns: dict[str, str],
    keep_dates: int | None,
) -> None:
    """Replace ``day``'s partition with the lists of ``batches`` (everyone's, in customer
    order: the batches come in customer order and each is sorted) and save their positions
    before demotion."""
    positions: list[pl.DataFrame] = []

    def rows() -> Iterator[pl.DataFrame]:
        for batch in batches:
            positions.append(batch.positions)
            yield batch.rows

    write_partition(
        con,
        TABLE,
        rows(),
        day,
        columns=columns,
        order_by="customer_id, rank",
        keep_dates=keep_dates,
        presorted=True,
    )
    save_base_positions(con, day, pl.concat(positions))


def write_carried(
    con: duckdb.DuckDBPyConnection,
    batches: Iterable[ScoredBatch],
    day: date,
    plan: ScorePlan,
    inputs: ScoringInputs,
    *,
    columns: dict[str, str],
    keep_dates: int | None,
    chunk_rows: int = 1_000_000,
    demoted: list[str] | None = None,
) -> None:
    """Write ``day`` in one transaction: the lists of ``batches`` (the re-scored
    customers), the ``plan.rerank`` customers' rows re-ranked for today's ``demoted``
    products and the others' rows copied from the partition of ``plan.carry_from``. The
    re-scored rows' positions before demotion are kept for the next re-rank."""
    names = partition_names(columns)
    listed = ", ".join(names)
    current = inputs.customers.select(pl.col("customer_id").cast(pl.String))
    con.register("_current_customers", current.to_arrow())
    con.register("_rescored", pl.DataFrame({"customer_id": plan.rescore}).to_arrow())
    reranked = pl.DataFrame({"customer_id": plan.rerank}, schema={"customer_id": pl.String})
    con.register("_reranked", reranked.to_arrow())
    positions: list[pl.DataFrame] = []

    def slices() -> Iterator[pl.DataFrame]:
        for batch in batches:
            positions.append(batch.positions)
            yield from row_slices(batch.rows.select(names), chunk_rows)

    with replacing_partition(
        con,
        TABLE,
        slices(),
        day,
        columns=columns,
        keep_dates=keep_dates,
        views=("_current_customers", "_rescored", "_reranked"),
    ):
        con.execute(
            f"INSERT INTO {ML_SCHEMA}.{TABLE} SELECT CAST(? AS DATE) AS logical_date, {listed} "
            f"FROM {ML_SCHEMA}.{TABLE} WHERE logical_date = ? "
            "AND customer_id IN (SELECT customer_id FROM _current_customers) "
            "AND customer_id NOT IN (SELECT customer_id FROM _rescored) "
            "AND customer_id NOT IN (SELECT customer_id FROM _reranked)",
            [day, plan.carry_from],
        )
        carry_demotion(
            con,
            day,
            plan.carry_from,
            names,
            plan.demoted_before,
            demoted or [],
            pl.concat(positions) if positions else base_positions(pl.DataFrame(), []),
        )


def partition_figures(
    con: duckdb.DuckDBPyConnection, day: date, inputs: ScoringInputs
) -> dict[str, Any]:
    """Rows, customers, cold-start customers and catalogue coverage of ``day``'s partition."""
    rows, customers, products, cold = con.execute(
        f"SELECT count(*), count(DISTINCT customer_id), count(DISTINCT product_id), "
        "count(*) FILTER (WHERE rank = 1 AND starts_with(reason_code, 'popular')) "
        f"FROM {ML_SCHEMA}.{TABLE} WHERE logical_date = ?",
        [day],
    ).fetchall()[0]
    eligible = max(1, int(inputs.products["eligible"].fill_null(False).sum()))
    return {
        "rows": int(rows),
        "customers": int(customers),
        "cold_start": int(cold),
        "catalog_coverage": (products / eligible) if rows else 0.0,
    }
