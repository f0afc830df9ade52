"""Check every recommendation's reason against what the customer really did.

A reason is a claim about the customer: "because you bought X on D" claims a purchase of
X whose last day was D; "because you viewed X" a view of X; "popular with <segment>
customers" their segment. :func:`reason_contradictions` lists every row whose claim the
warehouse history contradicts; the tests and the recommender benchmark run it over the
published ``recommendations`` table (or ``ml.recommendations``) and expect none.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl

from ml.warehouse.tables import read_frame

BOUGHT_CODES = ("bought_similar", "bought_before")
# A published reason may end with what reviewers praise about the recommended product
# ("...; reviewers say "soft"", pub_recommendations.sql): a claim about the product, not
# the customer. The claim about the customer is the text before it.
PRAISE_SEPARATOR = "; "
# The date a published "bought" reason's claim ends with (see pub_recommendations.sql).
_DATE_IN_TEXT = r"(\d{4}-\d{2}-\d{2})\)?$"


def load_history(con, logical_date: date) -> pl.DataFrame:
    """Each customer x product with what they did up to the end of ``logical_date``.

    Returns
    -------
    polars.DataFrame
        ``customer_id, product_id, bought, viewed, last_bought_day``.
    """
    end = datetime.combine(logical_date + timedelta(days=1), datetime.min.time())
    return read_frame(
        con,
        """
        SELECT CAST(customer_id AS VARCHAR) AS customer_id,
               CAST(product_id AS VARCHAR) AS product_id,
               bool_or(event_kind = 'purchase') AS bought,
               bool_or(event_kind = 'view') AS viewed,
               strftime(max(occurred_at) FILTER (WHERE event_kind = 'purchase'), '%Y-%m-%d')
                   AS last_bought_day
        FROM marts.interaction_events
        WHERE occurred_at < ?
        GROUP BY ALL
        """,
        [end],
    )


def load_customers(con) -> pl.DataFrame:
    """``customer_id, segment, country`` of every customer."""
    return read_frame(
        con,
        """
        SELECT CAST(c.customer_id AS VARCHAR) AS customer_id,
               CAST(s.segment AS VARCHAR) AS segment, CAST(c.country AS VARCHAR) AS country
        FROM marts.dim_customers AS c
        LEFT JOIN marts.customer_rfm_segments AS s USING (customer_id)
        """,
    )


def reason_contradictions(
    recommendations: pl.DataFrame, history: pl.DataFrame, customers: pl.DataFrame
) -> pl.DataFrame:
    """The recommendations whose reason the customer's history contradicts.

    Parameters
    ----------
    recommendations : polars.DataFrame
        ``customer_id, product_id, reason_code, reason_product_id`` and either
        ``reason_context`` (``ml.recommendations``) or ``reason`` (the published text).
    history : polars.DataFrame
        :func:`load_history`.
    customers : polars.DataFrame
        :func:`load_customers`.

    Returns
    -------
    polars.DataFrame
        The contradicted rows with a ``problem`` column (empty when every reason holds).
    """
    if "reason" in recommendations.columns:
        recommendations = recommendations.with_columns(
            pl.col("reason").str.split(PRAISE_SEPARATOR).list.first().alias("reason")
        )
    if "reason_context" in recommendations.columns:
        claimed = pl.col("reason_context")
    else:
        claimed = pl.col("reason").str.extract(_DATE_IN_TEXT, 1)
    rows = recommendations.with_columns(
        claimed.alias("claimed_context"),
        pl.col("reason_product_id").cast(pl.String),
    )
    named = history.rename({"product_id": "reason_product_id"})
    checked = rows.join(named, on=["customer_id", "reason_product_id"], how="left").join(
        customers, on="customer_id", how="left"
    )
    code = pl.col("reason_code")
    text = pl.col("reason") if "reason" in rows.columns else pl.lit(None, pl.String)
    problem = (
        pl.when(code.is_in(BOUGHT_CODES) & pl.col("reason_product_id").is_null())
        .then(pl.lit("a 'bought' reason names no product"))
        .when(code.is_in(BOUGHT_CODES) & ~pl.col("bought").fill_null(False))
        .then(pl.lit("names a product the customer never bought"))
        .when((code == "bought_before") & (pl.col("reason_product_id") != pl.col("product_id")))
        .then(pl.lit("'bought before' names another product"))
        .when(
            code.is_in(BOUGHT_CODES)
            & pl.col("claimed_context").is_not_null()
            & (pl.col("claimed_context") != pl.col("last_bought_day"))
        )
        .then(pl.lit("the purchase date is not the customer's last purchase of it"))
        .when((code == "viewed_similar") & ~pl.col("viewed").fill_null(False))
        .then(pl.lit("names a product the customer never viewed"))
        .when(
            code.is_in(
                (
                    "recommended_for_you",
                    "popular_overall",
                    "popular_in_segment",
                    "popular_in_country",
                )
            )
            & pl.col("reason_product_id").is_not_null()
        )
        .then(pl.lit("a popularity reason names a product of the customer"))
        .when(
            (code == "popular_in_segment")
            & text.is_not_null()
            & (text != pl.lit("popular with ") + pl.col("segment") + pl.lit(" customers"))
        )
        .then(pl.lit("not the customer's segment"))
        .when(
            (code == "popular_in_country")
            & text.is_not_null()
            & (text != pl.lit("popular in ") + pl.col("country"))
        )
        .then(pl.lit("not the customer's country"))
    )
    return checked.with_columns(problem.alias("problem")).filter(pl.col("problem").is_not_null())
