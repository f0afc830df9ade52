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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
import numpy as np
import polars as pl

from ml.serving.config import ScoreConfig
from ml.serving.demotion_rerank import base_positions, carry_demotion, save_base_positions
from ml.serving.incremental import ScorePlan, plan_scoring, subset_inputs
from ml.serving.inputs import ScoringInputs
from ml.serving.model import ScoringModel
from ml.serving.new_products import exploration_candidates, explore_new_products
from ml.serving.review_demotion import demote_products
from ml.serving.score_state import current_state, save_state
from ml.serving.topk import feasible_cap
from ml.warehouse.tables import (
    ML_SCHEMA,
    ensure_table,
    insert_slices,
    partition_names,
    prune_dates,
    transaction,
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
    rows = compute(scored, model, config)
    rows = explore_new_products(con, rows, scored, config, candidates=candidates)
    positions = base_positions(rows, demoted or [])  # what a re-rank needs tomorrow
    rows = demote_products(rows, demoted or [])
    lap("compute")
    if plan.full:
        write_partition(
            con,
            TABLE,
            rows,
            day,
            columns=columns,
            order_by="customer_id, rank",
            keep_dates=config.keep_dates,
            presorted=True,  # recommend_all, the exploration and demotion keep (customer, rank)
        )
        save_base_positions(con, day, positions)
    else:
        write_carried(
            con,
            rows,
            day,
            plan,
            inputs,
            columns=columns,
            keep_dates=config.keep_dates,
            demoted=demoted,
            positions=positions,
        )
    lap("write")
    save_state(con, current)
    figures = partition_figures(con, day, inputs)
    lap("state")
    return PartitionReport(plan=plan, seconds=seconds, **figures)


def write_carried(
    con: duckdb.DuckDBPyConnection,
    rows: pl.DataFrame,
    day: date,
    plan: ScorePlan,
    inputs: ScoringInputs,
    *,
    columns: dict[str, str],
    keep_dates: int | None,
    chunk_rows: int = 1_000_000,
    demoted: list[str] | None = None,
    positions: pl.DataFrame | None = None,
) -> None:
    """Write ``day``: ``rows`` for the re-scored customers, the ``plan.rerank``
    customers' rows re-ranked for today's ``demoted`` products and the others' rows copied
    from the partition of ``plan.carry_from`` (one transaction). ``positions``: the
    re-scored rows' positions before demotion (:func:`base_positions`), kept for the next
    re-rank."""
    ensure_table(con, ML_SCHEMA, TABLE, columns)
    names = partition_names(columns)
    listed = ", ".join(names)
    current = inputs.customers.select(pl.col("customer_id").cast(pl.String))
    con.register("_current_customers", current.to_arrow())
    con.register("_rescored", pl.DataFrame({"customer_id": plan.rescore}).to_arrow())
    reranked = pl.DataFrame({"customer_id": plan.rerank}, schema={"customer_id": pl.String})
    con.register("_reranked", reranked.to_arrow())
    with transaction(con, "_current_customers", "_rescored", "_reranked", "_partition_rows"):
        con.execute(f"DELETE FROM {ML_SCHEMA}.{TABLE} WHERE logical_date = ?", [day])
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
            positions if positions is not None else base_positions(rows, []),
        )
        selected = rows.select(names)
        slices = (
            selected.slice(start, chunk_rows) for start in range(0, selected.height, chunk_rows)
        )
        insert_slices(con, TABLE, slices, day, columns=columns)
        prune_dates(con, TABLE, keep_dates)


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
