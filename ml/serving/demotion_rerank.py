"""Re-rank instead of re-score when only a product's review demotion flipped.

Demotion (:func:`ml.serving.review_demotion.demote_products`) is the last step of
scoring: a stable re-rank that moves the demoted products of a list below the others. It
never changes which products a list holds, their scores or reasons. So a customer whose
list changed only because a product was demoted or restored since the last run keeps the
same list before demotion; applying the new demoted set to it is enough, with no model.

What that needs is each list's order *before* demotion. A stored list is the
non-demoted rows in that order, then the demoted rows in theirs; the positions of the
demoted rows among all rows are lost, so they are kept in
``ml.score_state_demoted_ranks`` (``logical_date, customer_id, product_id,
base_position``: the 1-based position of the row before demotion, one row per listed
demoted product). The other rows fill the remaining positions in their stored order. A
list holding a previously demoted product with no saved position (a state saved before
this table existed, or of another date) cannot be re-ranked exactly: the planner
re-scores it instead (:func:`rerankable`).

Everything here runs inside DuckDB on the previous partition of ``ml.recommendations``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
import polars as pl

from ml.warehouse.tables import ML_SCHEMA, ensure_table, read_frame, table_exists

BASE_POSITIONS = "score_state_demoted_ranks"
BASE_POSITION_COLUMNS = {
    "logical_date": "DATE",
    "customer_id": "VARCHAR",
    "product_id": "VARCHAR",
    "base_position": "INTEGER",
}
_EMPTY_IDS = pl.DataFrame(schema={"customer_id": pl.String})


def base_positions(rows: pl.DataFrame, demoted: Sequence[str]) -> pl.DataFrame:
    """Position before demotion of each listed ``demoted`` product.

    Parameters
    ----------
    rows : polars.DataFrame
        ``customer_id, rank, product_id, ...`` as scoring computed them, before demotion.
    demoted : sequence of str
        The products demotion will move down.

    Returns
    -------
    polars.DataFrame
        ``customer_id, product_id, base_position`` (1-based, in rank order per customer).
    """
    schema = {"customer_id": pl.String, "product_id": pl.String, "base_position": pl.Int32}
    if not demoted or rows.height == 0:
        return pl.DataFrame(schema=schema)
    position = pl.col("rank").rank("ordinal").over("customer_id").cast(pl.Int32)
    return rows.select(
        pl.col("customer_id").cast(pl.String),
        pl.col("product_id").cast(pl.String),
        position.alias("base_position"),
    ).filter(pl.col("product_id").is_in(pl.Series(list(demoted), dtype=pl.String).implode()))


def save_base_positions(con: duckdb.DuckDBPyConnection, day: date, positions: pl.DataFrame) -> None:
    """Replace the saved positions with ``day``'s (inside the caller's transaction or alone)."""
    ensure_table(con, ML_SCHEMA, BASE_POSITIONS, BASE_POSITION_COLUMNS)
    con.execute(f"DELETE FROM {ML_SCHEMA}.{BASE_POSITIONS}")
    if positions.height:
        con.register("_base_positions", positions.to_arrow())
        try:
            con.execute(
                f"INSERT INTO {ML_SCHEMA}.{BASE_POSITIONS} SELECT CAST(? AS DATE), "
                "customer_id, product_id, base_position FROM _base_positions",
                [day],
            )
        finally:
            con.unregister("_base_positions")


def _register_products(con: duckdb.DuckDBPyConnection, name: str, products: Sequence[str]) -> None:
    con.register(
        name,
        pl.DataFrame({"product_id": list(products)}, schema={"product_id": pl.String}).to_arrow(),
    )


def rerankable(
    con: duckdb.DuckDBPyConnection,
    day: date,
    customers: pl.DataFrame,
    demoted_before: Sequence[str],
) -> pl.DataFrame:
    """Of ``customers``, those whose list of ``day`` can be re-ranked exactly: every row of
    a product demoted on ``day`` has its saved position."""
    if customers.height == 0:
        return _EMPTY_IDS
    if not demoted_before:
        return customers.select(pl.col("customer_id").cast(pl.String))
    saved = table_exists(con, ML_SCHEMA, BASE_POSITIONS)
    missing = (
        f"NOT EXISTS (SELECT 1 FROM {ML_SCHEMA}.{BASE_POSITIONS} AS b "
        "WHERE b.logical_date = r.logical_date AND b.customer_id = r.customer_id "
        "AND b.product_id = r.product_id)"
        if saved
        else "TRUE"
    )
    con.register(
        "_rerank_candidates", customers.select(pl.col("customer_id").cast(pl.String)).to_arrow()
    )
    _register_products(con, "_demoted_before", demoted_before)
    try:
        return read_frame(
            con,
            "SELECT customer_id FROM _rerank_candidates EXCEPT "
            f"SELECT DISTINCT r.customer_id FROM {ML_SCHEMA}.recommendations AS r "
            "WHERE r.logical_date = ? "
            "AND r.customer_id IN (SELECT customer_id FROM _rerank_candidates) "
            f"AND r.product_id IN (SELECT product_id FROM _demoted_before) AND {missing} "
            "ORDER BY customer_id",
            [day],
        )
    finally:
        con.unregister("_rerank_candidates")
        con.unregister("_demoted_before")


def carry_demotion(
    con: duckdb.DuckDBPyConnection,
    day: date,
    carry_from: date,
    names: Sequence[str],
    demoted_before: Sequence[str],
    demoted_now: Sequence[str],
    rescored_positions: pl.DataFrame,
) -> int:
    """Insert the re-ranked lists of ``day`` and save its positions before demotion.

    Runs inside :func:`ml.serving.score_partition.write_carried`'s transaction, with
    ``_current_customers`` (this run's customers), ``_rescored`` (computed again) and
    ``_reranked`` (to re-rank) registered. The rows of the ``_reranked`` customers are
    read from ``carry_from``'s partition, put back in their order before demotion and
    demoted with ``demoted_now``. The positions saved for ``day`` are those of
    ``rescored_positions`` (the re-scored customers) and, for the carried and re-ranked
    customers, those reconstructed from ``carry_from``.

    Returns
    -------
    int
        Rows inserted for the re-ranked customers.
    """
    ensure_table(con, ML_SCHEMA, BASE_POSITIONS, BASE_POSITION_COLUMNS)
    _register_products(con, "_demoted_before", demoted_before)
    _register_products(con, "_demoted_now", demoted_now)
    try:
        # Lists carried or re-ranked that hold a product demoted then or now, each row with
        # its position before demotion: saved for the rows demoted then; the others fill
        # the free positions in their stored order.
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _based AS
            WITH listed AS (
                SELECT r.*, r.product_id IN (SELECT product_id FROM _demoted_before) AS was
                FROM {ML_SCHEMA}.recommendations AS r
                WHERE r.logical_date = $carry
                  AND r.customer_id IN (SELECT customer_id FROM _current_customers)
                  AND r.customer_id NOT IN (SELECT customer_id FROM _rescored)
                  AND r.customer_id IN (
                      SELECT customer_id FROM {ML_SCHEMA}.recommendations
                      WHERE logical_date = $carry AND (
                          product_id IN (SELECT product_id FROM _demoted_before)
                          OR product_id IN (SELECT product_id FROM _demoted_now)))
            ),
            kept AS (
                SELECT l.*, b.base_position AS saved,
                       row_number() OVER (PARTITION BY l.customer_id, l.was ORDER BY l.rank)
                           AS stored_order,
                       bool_and(NOT l.was OR b.base_position IS NOT NULL)
                           OVER (PARTITION BY l.customer_id) AS complete
                FROM listed AS l
                LEFT JOIN {ML_SCHEMA}.{BASE_POSITIONS} AS b
                  ON l.was AND b.logical_date = $carry
                 AND b.customer_id = l.customer_id AND b.product_id = l.product_id
            ),
            positions AS (
                SELECT customer_id, unnest(range(1, listed + 1)) AS position
                FROM (SELECT customer_id, count(*) AS listed FROM kept GROUP BY customer_id)
            ),
            free AS (
                SELECT p.customer_id, p.position,
                       row_number() OVER (PARTITION BY p.customer_id ORDER BY p.position) AS k
                FROM positions AS p
                ANTI JOIN (SELECT customer_id, saved FROM kept WHERE saved IS NOT NULL) AS s
                  ON s.customer_id = p.customer_id AND s.saved = p.position
            )
            SELECT kept.* EXCLUDE (saved, stored_order, was),
                   coalesce(kept.saved, free.position)::INTEGER AS base_position
            FROM kept
            LEFT JOIN free
              ON NOT kept.was AND free.customer_id = kept.customer_id
             AND free.k = kept.stored_order
            WHERE kept.complete
            """,
            {"carry": carry_from},
        )
        wanted, found = con.execute(
            "SELECT (SELECT count(*) FROM _reranked), "
            "(SELECT count(DISTINCT customer_id) FROM _based "
            " WHERE customer_id IN (SELECT customer_id FROM _reranked))"
        ).fetchall()[0]
        if wanted != found:
            raise RuntimeError(
                f"{wanted - found} of {wanted} lists to re-rank cannot be put back in their "
                "order before demotion; this is a bug of the planner (ml.serving.incremental): "
                "re-run the scoring with full_refresh=True"
            )
        selected = ", ".join(
            "row_number() OVER (PARTITION BY customer_id ORDER BY "
            "product_id IN (SELECT product_id FROM _demoted_now), base_position)::INTEGER "
            "AS rank"
            if name == "rank"
            else name
            for name in names
        )
        inserted = con.execute(
            f"INSERT INTO {ML_SCHEMA}.recommendations SELECT CAST(? AS DATE), {selected} "
            "FROM _based WHERE customer_id IN (SELECT customer_id FROM _reranked)",
            [day],
        ).fetchall()[0][0]
        con.execute(f"DELETE FROM {ML_SCHEMA}.{BASE_POSITIONS}")
        con.execute(
            f"INSERT INTO {ML_SCHEMA}.{BASE_POSITIONS} SELECT CAST(? AS DATE), customer_id, "
            "product_id, base_position FROM _based "
            "WHERE product_id IN (SELECT product_id FROM _demoted_now)",
            [day],
        )
        if rescored_positions.height:
            con.register("_base_positions", rescored_positions.to_arrow())
            con.execute(
                f"INSERT INTO {ML_SCHEMA}.{BASE_POSITIONS} SELECT CAST(? AS DATE), "
                "customer_id, product_id, base_position FROM _base_positions",
                [day],
            )
        con.execute("DROP TABLE _based")
        return int(inserted)
    finally:
        for name in ("_demoted_before", "_demoted_now", "_base_positions"):
            con.unregister(name)
