"""Demote products whose recent reviews turn negative (``ScoreConfig.demote_turning_negative``).

The signal is dbt's, not computed here: ``marts.product_review_insights.is_turning_negative``
(at least 3 reviews in the last 30 days whose mean sentiment fell 0.3 or more below the
earlier reviews', or most of which are negative; ``macros/review_signals.sql``).

Demotion is a stable re-rank of each customer's list: the flagged products move below every
other product of the list, keeping their relative order, and the ranks are renumbered. The
list keeps its length and nothing is hidden: a product whose reviews recover comes back on
the next run without a model change, and the scores stay the model's (comparable within a
list, as before). Campaign messages feature a customer's top recommendations, so a demoted
product is featured only when the list has little else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import polars as pl

from ml.warehouse.tables import read_frame, table_exists

log = logging.getLogger(__name__)

SIGNAL_TABLE = ("marts", "product_review_insights")


def turning_negative_products(con) -> pl.DataFrame:
    """``product_id, turning_negative_reason`` of the products the mart flags (sorted).

    Empty when the mart does not exist (a warehouse built before review insight).
    """
    schema, table = SIGNAL_TABLE
    if not table_exists(con, schema, table):
        log.warning("%s.%s is missing: no product is demoted", schema, table)
        return pl.DataFrame(schema={"product_id": pl.String, "turning_negative_reason": pl.String})
    return read_frame(
        con,
        f"SELECT product_id, turning_negative_reason FROM {schema}.{table} "
        "WHERE is_turning_negative ORDER BY product_id",
    )


def demote_products(recommendations: pl.DataFrame, demoted: Iterable[str]) -> pl.DataFrame:
    """Move ``demoted`` products below the others of each customer's list.

    Parameters
    ----------
    recommendations : polars.DataFrame
        ``customer_id, rank, product_id, ...`` (any other columns are kept).
    demoted : iterable of str
        Product ids to demote.

    Returns
    -------
    polars.DataFrame
        The same rows and columns, sorted by customer and the new rank (1..n per
        customer): non-demoted products first in their old order, then the demoted ones in
        theirs.
    """
    demoted = sorted(set(demoted))
    if not demoted or recommendations.height == 0:
        return recommendations
    columns = recommendations.columns
    flagged = pl.col("product_id").is_in(pl.Series(demoted, dtype=pl.String).implode())
    return (
        recommendations.with_columns(flagged.alias("_demoted"))
        .sort(["customer_id", "_demoted", "rank"])
        .with_columns(
            pl.int_range(1, pl.len() + 1, dtype=recommendations.schema["rank"])
            .over("customer_id")
            .alias("rank")
        )
        .select(columns)
    )


def demoted_rows(con, day, demoted: list[str]) -> int:
    """Rows of ``day``'s ``ml.recommendations`` that hold a demoted product."""
    if not demoted:
        return 0
    con.register("_demoted_products", pl.DataFrame({"product_id": demoted}).to_arrow())
    try:
        return int(
            con.execute(
                "SELECT count(*) FROM ml.recommendations WHERE logical_date = ? "
                "AND product_id IN (SELECT product_id FROM _demoted_products)",
                [day],
            ).fetchall()[0][0]
        )
    finally:
        con.unregister("_demoted_products")
