"""What scoring reads from the warehouse marts, as of the end of the logical date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from ml.dates import as_of_end
from ml.warehouse.tables import read_frame


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
        ``customer_id, product_id, bought, last_bought_at, viewed`` per pair with any
        interaction (``viewed``: at least one view event).
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
        return as_of_end(self.logical_date)


def latest_logical_date(con) -> date:
    """Return the last day with an interaction (the default logical date)."""
    # fetchall, not fetchone: DuckDB 2.0 refuses `con.sql` (read_frame) on a connection
    # whose last `execute` result was not read to the end.
    value = con.execute("SELECT max(occurred_at) FROM marts.interaction_events").fetchall()[0][0]
    if value is None:
        raise RuntimeError(
            "marts.interaction_events is empty: load data and build the marts first."
        )
    return value.date()


def load_inputs(con, logical_date: date) -> ScoringInputs:
    """Read customers, products, histories and popularity from the warehouse marts.

    The marts hold what was known at the end of the logical date they were built for
    (``dim_products.is_recommendable``, ``interactions``, ``product_popularity``).
    """
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
        SELECT product_id, category, is_recommendable AS eligible
        FROM marts.dim_products ORDER BY product_id
        """,
    )
    history = read_frame(
        con,
        """
        SELECT customer_id, product_id, purchases > 0 AS bought, last_bought_at,
               views > 0 AS viewed
        FROM marts.interactions
        ORDER BY customer_id, product_id
        """,
    )
    popular = read_frame(
        con,
        """
        SELECT group_kind, group_value, product_id, recent_buyers AS buyers
        FROM marts.product_popularity
        WHERE group_kind IN ('segment', 'country', 'overall') AND recent_buyers > 0
        ORDER BY group_kind, group_value, recent_buyers_rank
        """,
    )
    return ScoringInputs(logical_date, customers, products, history, popular)
