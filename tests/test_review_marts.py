"""The review aggregation dbt owns, checked against its reference (``ml/text/signals.py``).

A generated shop is ingested; ``ml.review_sentiment`` and ``ml.product_review_aspects``
are written by hand (so every case is known: products turning negative by a drop and by a
negative majority, too few recent reviews, no earlier reviews, a review after the as-of
date, a partition of a later date, an erased customer), then the feature marts are built
as the pipeline builds them. ``marts.product_review_insights``, ``product_features`` and
``customer_features`` must equal what the polars reference computes from the same rows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from dbt_helpers import SHOP_AS_OF, generate_and_ingest, query, warehouse

from ml.text.aspects import ASPECT_STRUCT
from ml.text.review_insight import ASPECTS_SCHEMA
from ml.text.scoring import OUTPUT_SCHEMA
from ml.text.signals import (
    customers_with_negative_reviews,
    product_insights,
    products_turning_negative,
)
from ml.warehouse import connect
from ml.warehouse.dbt import build_features
from ml.warehouse.frames import write_frame_partition
from ml.warehouse.tables import read_frame

AS_OF = date.fromisoformat(SHOP_AS_OF)
END = datetime.combine(AS_OF + timedelta(days=1), datetime.min.time())
TOLERANCE = 1e-9


def _reviews(customers: list[str], products: list[str]) -> pl.DataFrame:
    """Hand-made sentiment rows: (product, days before the as-of end, score, label, rating)."""
    p = products
    cases = [
        # p0 drops: good earlier reviews, three poor recent ones (not a negative majority).
        *[(p[0], 50 + i, 0.8, "positive", 5) for i in range(4)],
        (p[0], 5, 0.1, "neutral", 3),
        (p[0], 3, 0.0, "neutral", 3),
        (p[0], 1, 0.2, "positive", 4),
        # p1: mostly negative recently, no earlier review (trend NULL), flagged by majority.
        (p[1], 10, -0.9, "negative", 1),
        (p[1], 8, -0.7, "negative", 2),
        (p[1], 2, 0.6, "positive", 4),
        # p2: a steep drop but only two recent reviews: not enough to flag.
        (p[2], 40, 0.9, "positive", 5),
        (p[2], 4, -0.9, "negative", 1),
        (p[2], 3, -0.8, "negative", 1),
        # p3: steady and happy; one review after the as-of date, which does not count yet.
        (p[3], 45, 0.7, "positive", 5),
        (p[3], 20, 0.6, "positive", 4),
        (p[3], -1, -1.0, "negative", 1),
        # p4: one old negative review (outside the recent window).
        (p[4], 31, -0.6, "negative", 2),
    ]
    rows = []
    for i, (product, days_ago, score, label, rating) in enumerate(cases):
        rows.append(
            {
                "review_id": f"T{i:03d}",
                "product_id": product,
                "customer_id": customers[i % len(customers)],
                "created_at": END - timedelta(days=days_ago, hours=1),
                "rating": rating,
                "sentiment_score": score,
                "sentiment_label": label,
                "predicted_rating": rating,
                "sentiment_source": "model",
                "model_version": "7",
            }
        )
    return pl.DataFrame(rows, schema=OUTPUT_SCHEMA)


def _aspects(products: list[str]) -> pl.DataFrame:
    soft = {"aspect": "soft", "mentions": 3, "example": "It is so soft and comfortable."}
    large = {"aspect": "runs large", "mentions": 2, "example": "Lovely, but it runs large."}
    fits = {"aspect": "true to size", "mentions": 2, "example": "It fits true to size for me."}
    return pl.DataFrame(
        {
            "product_id": [products[0], products[3]],
            "review_count": [7, 3],
            "praised_aspects": [[soft], [fits]],
            "complaint_aspects": [[large], [large]],
        },
        schema=ASPECTS_SCHEMA,
    )


@pytest.fixture(scope="module")
def marts_home(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("review_marts") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AFFINITY_PII_SALT", raising=False)
        generate_and_ingest(home)
        with connect(warehouse(home)) as con:
            customers = [
                r[0]
                for r in con.execute(
                    "SELECT customer_id FROM raw.customers ORDER BY customer_id LIMIT 6"
                ).fetchall()
            ]
            products = [
                r[0]
                for r in con.execute(
                    "SELECT product_id FROM raw.products ORDER BY product_id LIMIT 5"
                ).fetchall()
            ]
            sentiment, aspects = _reviews(customers, products), _aspects(products)
            write_frame_partition(con, "review_sentiment", sentiment, AS_OF)
            write_frame_partition(con, "product_review_aspects", aspects, AS_OF)
            # A later run's partition: a build as of AS_OF must not read it.
            later = sentiment.with_columns(pl.lit(-1.0).alias("sentiment_score"))
            write_frame_partition(con, "review_sentiment", later, AS_OF + timedelta(days=1))
        build_features(SHOP_AS_OF, home=home)
    return home, sentiment, aspects, customers, products


def _mart(home: Path, sql: str) -> pl.DataFrame:
    with connect(warehouse(home), read_only=True) as con:
        return read_frame(con, sql)


def _assert_close(actual: pl.DataFrame, expected: pl.DataFrame, key: str) -> None:
    assert actual[key].to_list() == expected[key].to_list()
    for column in expected.columns:
        a, e = actual[column].to_list(), expected[column].to_list()
        if expected[column].dtype == pl.Float64:
            for x, y in zip(a, e, strict=True):
                assert (x is None) == (y is None), (column, a, e)
                assert x is None or abs(x - y) < TOLERANCE, (column, a, e)
        else:
            assert a == e, (column, a, e)


def test_product_review_insights_equal_the_reference(marts_home) -> None:
    home, sentiment, aspects, _, products = marts_home
    expected = product_insights(sentiment, aspects, AS_OF)
    actual = _mart(
        home,
        "SELECT product_id, review_count, avg_rating, avg_sentiment, negative_share, "
        "praised_aspects, complaint_aspects, trend_30d FROM marts.product_review_insights "
        "ORDER BY product_id",
    ).cast({"praised_aspects": pl.List(ASPECT_STRUCT), "complaint_aspects": pl.List(ASPECT_STRUCT)})
    _assert_close(actual, expected, "product_id")
    # The review written after the as-of date is not counted; p1 has no earlier review.
    assert actual.filter(pl.col("product_id") == products[3])["review_count"].item() == 2
    assert actual.filter(pl.col("product_id") == products[1])["trend_30d"].item() is None


def test_turning_negative_flags_equal_the_reference(marts_home) -> None:
    home, sentiment, _, _, products = marts_home
    expected = products_turning_negative(sentiment, AS_OF)
    flagged = _mart(
        home,
        "SELECT product_id, recent_reviews, recent_sentiment, earlier_sentiment, "
        "recent_negative_share FROM marts.product_review_insights WHERE is_turning_negative "
        "ORDER BY product_id",
    )
    _assert_close(
        flagged, expected.select(flagged.columns).cast({"recent_reviews": pl.Int64}), "product_id"
    )
    assert flagged["product_id"].to_list() == [products[0], products[1]]
    reasons = _mart(
        home,
        "SELECT turning_negative_reason FROM marts.product_review_insights "
        "WHERE is_turning_negative ORDER BY product_id",
    )["turning_negative_reason"].to_list()
    assert reasons == [
        "recent sentiment 0.1 vs 0.8 before",
        "67% of its 3 recent reviews are negative",
    ]
    # product_features carries the flag and the averages for every product.
    features = _mart(
        home,
        "SELECT product_id, avg_sentiment, negative_share, sentiment_trend_30d, "
        "is_turning_negative FROM marts.product_features ORDER BY product_id",
    )
    assert features.filter(pl.col("is_turning_negative"))["product_id"].to_list() == [
        products[0],
        products[1],
    ]
    unreviewed = features.filter(~pl.col("product_id").is_in(products))
    assert unreviewed["avg_sentiment"].is_null().all() and unreviewed.height > 100
    # ... and the top aspects the published products show (pub_products reads this mart).
    aspects = _mart(
        home,
        "SELECT f.top_praised_aspect IS NOT DISTINCT FROM i.top_praised_aspect "
        "AND f.top_complaint_aspect IS NOT DISTINCT FROM i.top_complaint_aspect AS same, "
        "f.top_praised_aspect FROM marts.product_features f "
        "JOIN marts.product_review_insights i USING (product_id)",
    )
    assert aspects["same"].all() and aspects["top_praised_aspect"].drop_nulls().len() > 0


def test_customer_negative_reviews_equal_the_reference(marts_home) -> None:
    home, sentiment, _, customers, _ = marts_home
    expected = customers_with_negative_reviews(sentiment, AS_OF)
    actual = _mart(
        home,
        "SELECT customer_id, negative_reviews_30d AS negative_reviews, "
        "last_negative_review_at AS last_negative_at FROM marts.customer_features "
        "WHERE negative_reviews_30d > 0 ORDER BY customer_id",
    )
    assert actual.to_dicts() == expected.select(actual.columns).to_dicts()
    assert actual.height >= 2
    everyone = _mart(home, "SELECT negative_reviews_30d FROM marts.customer_features")
    assert everyone["negative_reviews_30d"].null_count() == 0


def test_the_products_mart_and_staging_hold_no_reviewer_or_text(marts_home) -> None:
    home = marts_home[0]
    columns = {
        (t, c)
        for t, c in query(
            home,
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_name IN ('product_review_insights', 'stg_text__review_sentiment')",
        )
    }
    names = {c for _, c in columns}
    assert not names & {"title", "body", "review_title", "review_body", "first_name", "email"}
    assert ("product_review_insights", "customer_id") not in columns


def test_reasons_cite_praise_unless_reviews_turn_negative_in_sql_and_python(marts_home) -> None:
    from ml.campaigns.audience_inputs import load_products, load_recommendations
    from ml.serving.recommend import RECOMMENDATION_COLUMNS
    from ml.warehouse.dbt import run_dbt
    from ml.warehouse.tables import write_partition

    home, _, _, customers, p = marts_home
    recs = pl.DataFrame(
        {
            "customer_id": [customers[0]] * 3,
            "rank": [1, 2, 3],
            "product_id": [p[0], p[3], p[2]],  # praised but turning negative; praised; neither
            "score": [0.9, 0.8, 0.7],
            "reason_code": ["bought_similar", "popular_overall", "popular_overall"],
            "reason_product_id": [p[4], None, None],
            "reason_context": ["2026-06-01", None, None],
            "model_name": ["m"] * 3,
            "model_version": ["1"] * 3,
        },
        schema_overrides={"rank": pl.Int32},
    )
    with connect(warehouse(home)) as con:
        write_partition(
            con, "recommendations", recs, AS_OF, columns=RECOMMENDATION_COLUMNS, order_by="rank"
        )
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AFFINITY_PII_SALT", raising=False)
        run_dbt(
            ["build", "--select", "stg_ml__recommendations", "pub_recommendations"],
            as_of=SHOP_AS_OF,
            home=home,
        )
    published = _mart(home, "SELECT reason FROM outputs.recommendations ORDER BY rank")["reason"]
    assert published[0].startswith("because you bought ") and "reviewers" not in published[0]
    assert published.to_list()[1:] == [
        'popular right now; reviewers say "true to size"',
        "popular right now",
    ]
    with connect(warehouse(home), read_only=True) as con:
        python = load_recommendations(con, AS_OF, load_products(con), [customers[0]])
    assert python.sort("rank")["reason"].to_list() == published.to_list()
