"""What the rest of the pipeline reads from review sentiment: insights, trends, unhappy customers.

Reference implementations, in polars, of the aggregations the published tables and the
downstream rules need (dbt owns the published aggregation -- ``marts.product_review_insights``
and ``customer_features.negative_reviews_30d``, settings in ``macros/review_signals.sql`` --
and ``tests/test_review_marts.py`` checks it against these):

* :func:`product_insights` -- one row per reviewed product, the columns of the issue's
  ``product_review_insights``;
* :func:`products_turning_negative` -- products whose recent reviews turned negative (what
  scoring may demote);
* :func:`customers_with_negative_reviews` -- customers who wrote a negative review recently
  (excluded from promotional campaigns; the audience for service outreach).

"Recent" is the ``days`` days up to and including ``as_of``; a review is negative when its
``sentiment_label`` is ``negative`` (text) or, for rating-only reviews, its rating is 1-2
(that is how :mod:`ml.text.scoring` labels them).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl

from ml.text.aspects import ASPECT_STRUCT

RECENT_DAYS = 30
# A product "turns negative" when at least this many recent reviews are, on average, this
# much less positive than its earlier ones, or when most of them are negative.
MIN_RECENT_REVIEWS = 3
TREND_DROP = -0.3
NEGATIVE_MAJORITY = 0.5


def _window(as_of: date | str, days: int) -> tuple[datetime, datetime]:
    day = date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    end = datetime.combine(day + timedelta(days=1), datetime.min.time())
    return end - timedelta(days=days), end


def product_insights(
    review_sentiment: pl.DataFrame,
    product_aspects: pl.DataFrame,
    as_of: date | str,
    *,
    days: int = RECENT_DAYS,
) -> pl.DataFrame:
    """One row per reviewed product: counts, averages, negative share, aspects, trend.

    Parameters
    ----------
    review_sentiment : polars.DataFrame
        :func:`ml.text.scoring.score_reviews` output.
    product_aspects : polars.DataFrame
        :func:`ml.text.aspects.product_aspects` output.
    as_of : date or str
        Reviews created after this day are ignored.
    days : int
        Window of ``trend_30d``.

    Returns
    -------
    polars.DataFrame
        ``product_id, review_count, avg_rating, avg_sentiment, negative_share,
        praised_aspects, complaint_aspects, trend_30d`` -- ``trend_30d`` is the mean
        sentiment of the last ``days`` days minus that of the reviews before (NULL when
        either side has no review); products without aspects get empty lists.
    """
    start, end = _window(as_of, days)
    reviews = review_sentiment.filter(pl.col("created_at") < end)
    recent = pl.col("created_at") >= start
    stats = reviews.group_by("product_id").agg(
        pl.len().cast(pl.Int64).alias("review_count"),
        pl.col("rating").cast(pl.Float64).mean().alias("avg_rating"),
        pl.col("sentiment_score").mean().alias("avg_sentiment"),
        (pl.col("sentiment_label") == "negative").mean().alias("negative_share"),
        (
            pl.col("sentiment_score").filter(recent).mean()
            - pl.col("sentiment_score").filter(~recent).mean()
        ).alias("trend_30d"),
    )
    aspects = product_aspects.select("product_id", "praised_aspects", "complaint_aspects")
    empty = pl.lit([], dtype=pl.List(ASPECT_STRUCT))
    return (
        stats.join(aspects, on="product_id", how="left")
        .with_columns(
            pl.col("praised_aspects").fill_null(empty), pl.col("complaint_aspects").fill_null(empty)
        )
        .select(
            "product_id",
            "review_count",
            "avg_rating",
            "avg_sentiment",
            "negative_share",
            "praised_aspects",
            "complaint_aspects",
            "trend_30d",
        )
        .sort("product_id")
    )


def products_turning_negative(
    review_sentiment: pl.DataFrame,
    as_of: date | str,
    *,
    days: int = RECENT_DAYS,
    min_recent_reviews: int = MIN_RECENT_REVIEWS,
    trend_drop: float = TREND_DROP,
    negative_majority: float = NEGATIVE_MAJORITY,
) -> pl.DataFrame:
    """Products whose recent reviews turned negative.

    Returns
    -------
    polars.DataFrame
        ``product_id, recent_reviews, recent_sentiment, earlier_sentiment,
        recent_negative_share, reason`` for products with at least ``min_recent_reviews``
        reviews in the window whose mean sentiment fell by ``trend_drop`` or more against
        their earlier reviews, or most of whose recent reviews are negative.
    """
    start, end = _window(as_of, days)
    reviews = review_sentiment.filter(pl.col("created_at") < end)
    recent = pl.col("created_at") >= start
    stats = reviews.group_by("product_id").agg(
        recent.sum().alias("recent_reviews"),
        pl.col("sentiment_score").filter(recent).mean().alias("recent_sentiment"),
        pl.col("sentiment_score").filter(~recent).mean().alias("earlier_sentiment"),
        (pl.col("sentiment_label") == "negative")
        .filter(recent)
        .mean()
        .alias("recent_negative_share"),
    )
    dropped = (pl.col("recent_sentiment") - pl.col("earlier_sentiment")) <= trend_drop
    mostly_negative = pl.col("recent_negative_share") >= negative_majority
    flagged = stats.filter(
        (pl.col("recent_reviews") >= min_recent_reviews)
        & (dropped.fill_null(False) | mostly_negative)
    )
    reason = (
        pl.when(dropped.fill_null(False))
        .then(
            pl.format(
                "recent sentiment {} vs {} before",
                pl.col("recent_sentiment").round(2),
                pl.col("earlier_sentiment").round(2),
            )
        )
        .otherwise(
            pl.format(
                "{}% of its {} recent reviews are negative",
                (pl.col("recent_negative_share") * 100).round(0).cast(pl.Int64),
                pl.col("recent_reviews"),
            )
        )
    )
    return flagged.with_columns(reason.alias("reason")).sort("product_id")


def customers_with_negative_reviews(
    review_sentiment: pl.DataFrame, as_of: date | str, *, days: int = RECENT_DAYS
) -> pl.DataFrame:
    """Customers who wrote a negative review in the ``days`` days up to ``as_of``.

    Returns
    -------
    polars.DataFrame
        ``customer_id, negative_reviews, last_negative_at, products`` (ids of the products
        they were unhappy with), one row per customer.
    """
    start, end = _window(as_of, days)
    negative = review_sentiment.filter(
        pl.col("created_at").is_between(start, end, closed="left")
        & (pl.col("sentiment_label") == "negative")
        & pl.col("customer_id").is_not_null()
    )
    return (
        negative.group_by("customer_id")
        .agg(
            pl.len().cast(pl.Int64).alias("negative_reviews"),
            pl.col("created_at").max().alias("last_negative_at"),
            pl.col("product_id").unique().sort().alias("products"),
        )
        .sort("customer_id")
    )
