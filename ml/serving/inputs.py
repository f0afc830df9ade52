"""What scoring reads from the warehouse marts, as of the end of the logical date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from ml.serving.config import ScoreConfig
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
               max(occurred_at) FILTER (WHERE event_kind = 'purchase') AS last_bought_at,
               bool_or(event_kind = 'view') AS viewed
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
