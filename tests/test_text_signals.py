"""Insights, negative trends and unhappy customers from review sentiment (ml.text.signals)."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from ml.text.aspects import ASPECT_STRUCT
from ml.text.signals import (
    customers_with_negative_reviews,
    product_insights,
    products_turning_negative,
)

AS_OF = "2026-03-31"


def sentiment(rows: list[tuple]) -> pl.DataFrame:
    """(review, product, customer, day of March or an earlier month, score, label, rating)."""
    return pl.DataFrame(
        [
            (r, p, c, datetime(2026, month, day), rating, score, label)
            for r, p, c, (month, day), score, label, rating in rows
        ],
        schema={
            "review_id": pl.String,
            "product_id": pl.String,
            "customer_id": pl.String,
            "created_at": pl.Datetime("us"),
            "rating": pl.Int32,
            "sentiment_score": pl.Float64,
            "sentiment_label": pl.String,
        },
        orient="row",
    )


ROWS = [
    # P1 was loved in January, its March reviews are negative.
    ("R1", "P1", "C1", (1, 10), 0.9, "positive", 5),
    ("R2", "P1", "C2", (1, 12), 0.8, "positive", 5),
    ("R3", "P1", "C3", (3, 20), -0.7, "negative", 1),
    ("R4", "P1", "C4", (3, 25), -0.8, "negative", 2),
    ("R5", "P1", "C5", (3, 30), -0.2, "neutral", 3),
    # P2 stays positive; one March review by C3 is after as_of and does not count.
    ("R6", "P2", "C1", (2, 1), 0.7, "positive", 4),
    ("R7", "P2", "C2", (3, 15), 0.6, "positive", 5),
    ("R8", "P2", "C6", (4, 2), -0.9, "negative", 1),
    # An old negative review (outside the window) by C7.
    ("R9", "P2", "C7", (1, 5), -0.9, "negative", 1),
]


def test_a_product_whose_recent_reviews_turn_negative_is_flagged():
    flagged = products_turning_negative(sentiment(ROWS), AS_OF)
    assert flagged["product_id"].to_list() == ["P1"]
    row = flagged.row(0, named=True)
    assert row["recent_reviews"] == 3
    assert row["recent_sentiment"] == pytest.approx((-0.7 - 0.8 - 0.2) / 3)
    assert "recent sentiment" in row["reason"]


def test_too_few_recent_reviews_are_no_trend():
    flagged = products_turning_negative(sentiment(ROWS[:4]), AS_OF)
    assert flagged.height == 0


def test_recent_negative_reviewers_only():
    unhappy = customers_with_negative_reviews(sentiment(ROWS), AS_OF)
    assert unhappy["customer_id"].to_list() == ["C3", "C4"]
    assert unhappy["products"].to_list() == [["P1"], ["P1"]]


def test_insights_aggregate_per_product_with_a_trend():
    aspects = pl.DataFrame(
        {
            "product_id": ["P1"],
            "review_count": [5],
            "praised_aspects": [[{"aspect": "soft", "mentions": 2, "example": "So soft."}]],
            "complaint_aspects": [
                [{"aspect": "too short", "mentions": 2, "example": "Too short."}]
            ],
        },
        schema_overrides={
            "praised_aspects": pl.List(ASPECT_STRUCT),
            "complaint_aspects": pl.List(ASPECT_STRUCT),
        },
    )
    insights = product_insights(sentiment(ROWS), aspects, AS_OF)
    by_product = {row["product_id"]: row for row in insights.iter_rows(named=True)}
    p1, p2 = by_product["P1"], by_product["P2"]
    assert p1["review_count"] == 5 and p2["review_count"] == 3  # R8 is after as_of
    assert p1["avg_rating"] == pytest.approx(16 / 5)
    assert p1["negative_share"] == pytest.approx(2 / 5)
    assert p1["trend_30d"] == pytest.approx((-0.7 - 0.8 - 0.2) / 3 - 0.85)
    assert p1["complaint_aspects"][0]["aspect"] == "too short"
    assert p2["praised_aspects"] == [] and p2["complaint_aspects"] == []
