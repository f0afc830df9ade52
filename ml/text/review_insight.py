"""The ``review_insight`` stage: sentiment of every review, aspects of every reviewed product.

Runs right after ``product_text``, before the dbt features: ``product_features``,
``customer_features`` and the review marts read its outputs. Like the product text stage
it reads the typed input itself (``raw.reviews``, cleaned as ``stg_raw__reviews`` cleans
it: ids and text trimmed, empty text as NULL, erased customers left out, nothing after the
logical date) and writes, in schema ``ml``, one partition per logical date:

* ``review_sentiment``: one row per review -- ``review_id, product_id, customer_id,
  created_at, rating, sentiment_score, sentiment_label, predicted_rating,
  sentiment_source, model_version``. No reviewer name and no text; ``customer_id`` stays
  in ``ml`` (erasure removes it with the customer) for the campaign exclusion, and is never
  published;
* ``product_review_aspects``: one row per reviewed product -- ``product_id,
  review_count, praised_aspects, complaint_aspects`` (lists of ``{aspect, mentions,
  example}``).

The model: :func:`ml.text.stage.run_review_stage` trains (MLflow experiment and registered
model ``affinity-review-sentiment``, with its gate) only when the reviews changed since the
champion was trained, or when there is no champion yet; otherwise the champion scores.
dbt owns every aggregation over these rows (``models/marts/product_review_insights.sql``,
``customer_features``); :mod:`ml.text.signals` is the reference they are tested against.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date

import duckdb
import polars as pl

from ml.dates import as_of_end, to_date
from ml.text.aspects import ASPECT_STRUCT
from ml.text.scoring import OUTPUT_SCHEMA
from ml.text.stage import REVIEW_COLUMNS, run_review_stage
from ml.warehouse import connect
from ml.warehouse.frames import write_frame_partition
from ml.warehouse.tables import read_frame, table_exists

log = logging.getLogger(__name__)

SENTIMENT_TABLE = "review_sentiment"
ASPECTS_TABLE = "product_review_aspects"
ASPECTS_SCHEMA = {
    "product_id": pl.String,
    "review_count": pl.Int64,
    "praised_aspects": pl.List(ASPECT_STRUCT),
    "complaint_aspects": pl.List(ASPECT_STRUCT),
}
# Logical dates kept in the two tables (a backfill within a week reads its own date).
KEEP_DATES = 7


@dataclass
class ReviewInsightReport:
    """What one ``review_insight`` run did.

    ``run_id`` / ``experiment_id`` are the MLflow run that trained the serving version
    (this run's training, or the champion's when it was reused); None without reviews.
    """

    logical_date: date
    reviews: int
    products: int
    model_version: str | None
    model_kind: str | None
    trained: bool
    decision: str | None = None
    run_id: str | None = None
    experiment_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        """Plain data for the stage log and the Airflow XCom."""
        return {
            "logical_date": self.logical_date.isoformat(),
            "reviews": self.reviews,
            "products": self.products,
            "model_version": self.model_version,
            "model_kind": self.model_kind,
            "trained": self.trained,
            "decision": self.decision,
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "rows": self.reviews + self.products,
        }


def load_reviews(con: duckdb.DuckDBPyConnection, logical_date: date) -> pl.DataFrame:
    """The shop's reviews written by the end of ``logical_date``, cleaned like staging.

    Returns
    -------
    polars.DataFrame
        :data:`ml.text.stage.REVIEW_COLUMNS`, sorted by ``review_id``. Empty when the shop
        has no reviews (no ``raw.reviews``).
    """
    if not table_exists(con, "raw", "reviews"):
        return empty_reviews()
    # The erasure filter repeats stg_raw__reviews' not_erased(): the ingest already deleted
    # those rows from raw, and a request loaded later must still win.
    erased = (
        "AND (customer_id IS NULL OR trim(customer_id) NOT IN ("
        "SELECT trim(customer_id) FROM raw.erasure_requests WHERE customer_id IS NOT NULL))"
        if table_exists(con, "raw", "erasure_requests")
        else ""
    )
    return read_frame(
        con,
        f"""
        SELECT trim(review_id) AS review_id,
               trim(product_id) AS product_id,
               trim(customer_id) AS customer_id,
               CAST(rating AS INTEGER) AS rating,
               nullif(trim(title), '') AS title,
               nullif(trim(body), '') AS body,
               created_at
        FROM raw.reviews
        WHERE created_at < ? {erased}
        ORDER BY review_id
        """,
        [as_of_end(logical_date)],
    ).cast({"rating": pl.Int32, "created_at": pl.Datetime("us")})


def empty_reviews() -> pl.DataFrame:
    types = {"rating": pl.Int32, "created_at": pl.Datetime("us")}
    return pl.DataFrame(schema={c: types.get(c, pl.String) for c in REVIEW_COLUMNS})


def empty_sentiment() -> pl.DataFrame:
    return pl.DataFrame(schema=OUTPUT_SCHEMA)


def empty_aspects() -> pl.DataFrame:
    return pl.DataFrame(schema=ASPECTS_SCHEMA)


def understand_reviews(
    logical_date: date | str, *, retrain: bool | None = None
) -> ReviewInsightReport:
    """Score every review and describe every reviewed product as of ``logical_date``.

    Parameters
    ----------
    logical_date : date or str
        Reviews created up to the end of this day count.
    retrain : bool, optional
        None (the pipeline's default): train only when the reviews changed since the
        champion's training; False: never train unless there is no champion; True: always.

    Returns
    -------
    ReviewInsightReport
    """
    started = time.perf_counter()
    day = to_date(logical_date)
    with connect() as con:
        reviews = load_reviews(con, day)
    if reviews.height == 0:
        # Nothing to learn from (e.g. Online Retail has no reviews): no MLflow run, and
        # empty partitions, so the marts of this date hold no stale review of another.
        sentiment, aspects = empty_sentiment(), empty_aspects()
        report = ReviewInsightReport(day, 0, 0, None, None, False)
    else:
        result = run_review_stage(reviews, as_of=day.isoformat(), retrain=retrain)
        sentiment = result.review_sentiment
        aspects = result.product_aspects.select(list(ASPECTS_SCHEMA)).cast(ASPECTS_SCHEMA)
        report = ReviewInsightReport(
            day,
            sentiment.height,
            aspects.height,
            result.model_version,
            result.model_kind,
            result.trained,
            result.decision,
            result.run_id,
            result.experiment_id,
            result.metrics,
            dict(result.seconds),
        )
    with connect() as con:
        write_frame_partition(con, SENTIMENT_TABLE, sentiment, day, keep_dates=KEEP_DATES)
        write_frame_partition(con, ASPECTS_TABLE, aspects, day, keep_dates=KEEP_DATES)
    report.seconds["total"] = time.perf_counter() - started
    log.info(
        "review insight for %s: %d reviews scored by %s v%s (%s), %d products described in %.1fs",
        day,
        report.reviews,
        report.model_kind or "no model",
        report.model_version or "-",
        "trained" if report.trained else "champion reused",
        report.products,
        report.seconds["total"],
    )
    return report
