"""Test and validation windows whose length adapts to the data's density.

A fixed 30-day window suits a shop where a month holds thousands of purchases; on review
data spanning ten years the last 30 days may hold two customers, and every figure measured
on them is noise. So each window starts at the configured length and doubles until enough
customers have *held-out* purchases in it: a purchase of a product new to them, by a
customer and of a product both known before the window (what the evaluation can score).
A window never grows past a share of the data's span; when no length reaches the target,
the length holding the most such customers wins (the shortest among equals).

Everything here is columnar polars over the interaction events; no model is fit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from ml.train.split import TimeSplit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowChoice:
    """One chosen window and the evidence for it.

    Attributes
    ----------
    days : int
        Window length.
    customers : int
        Customers with held-out purchases in it.
    tried : dict of int to int
        Customers per length tried, in the order tried.
    """

    days: int
    customers: int
    tried: dict[int, int]

    def describe(self) -> str:
        """One line for the MLflow tags (``"60 days: 412 customers (tried 30: 180, ...)"``)."""
        tried = ", ".join(f"{days}: {count}" for days, count in self.tried.items())
        return f"{self.days} days: {self.customers} customers (tried {tried})"


def first_purchases(events: pl.DataFrame) -> pl.DataFrame:
    """Each customer's first purchase of each product, with when customer and product appeared.

    Returns
    -------
    polars.DataFrame
        ``customer_id, product_id, first_bought, customer_since, product_since``.
    """
    customer_since = events.group_by("customer_id").agg(
        pl.col("occurred_at").min().alias("customer_since")
    )
    product_since = events.group_by("product_id").agg(
        pl.col("occurred_at").min().alias("product_since")
    )
    return (
        events.filter(pl.col("event_kind") == "purchase")
        .group_by("customer_id", "product_id")
        .agg(pl.col("occurred_at").min().alias("first_bought"))
        .join(customer_since, on="customer_id")
        .join(product_since, on="product_id")
    )


def held_out_customers(firsts: pl.DataFrame, start: datetime, end: datetime) -> int:
    """Customers who, in ``[start, end)``, first bought a product, both known before ``start``."""
    return firsts.filter(
        (pl.col("first_bought") >= start)
        & (pl.col("first_bought") < end)
        & (pl.col("customer_since") < start)
        & (pl.col("product_since") < start)
    )["customer_id"].n_unique()


def choose_length(
    firsts: pl.DataFrame,
    end: datetime,
    shortest_days: int,
    min_customers: int,
    longest_days: int,
) -> WindowChoice:
    """The window ``[end - days, end)``: doubled from ``shortest_days`` until it holds
    ``min_customers`` customers, at most ``longest_days`` long.

    Parameters
    ----------
    firsts : polars.DataFrame
        Output of :func:`first_purchases`.
    end : datetime
        Exclusive end of the window.
    shortest_days, longest_days : int
        Bounds of the length (``longest_days`` below ``shortest_days`` keeps the shortest).
    min_customers : int
        Target; 0 keeps the shortest length.
    """
    tried: dict[int, int] = {}
    days = shortest_days
    while True:
        tried[days] = held_out_customers(firsts, end - timedelta(days=days), end)
        if min_customers <= 0 or tried[days] >= min_customers or days >= longest_days:
            break
        days = min(days * 2, longest_days)
    if min_customers > 0 and tried[days] < min_customers:
        # Nobody reaches the target: the length with the most customers, shortest first.
        days = max(tried, key=lambda length: (tried[length], -length))
    return WindowChoice(days, tried[days], tried)


def adaptive_split(
    events: pl.DataFrame,
    as_of: datetime,
    eval_days: int,
    validation_days: int,
    min_customers: int,
    max_share: float,
) -> tuple[TimeSplit, WindowChoice, WindowChoice]:
    """The run's time split with windows sized to the data.

    Parameters
    ----------
    events : polars.DataFrame
        Interaction events (``occurred_at``, ``event_kind``, ids); events at or after
        ``as_of`` are ignored.
    as_of : datetime
        Midnight ending the test window.
    eval_days, validation_days : int
        Shortest test and validation windows.
    min_customers : int
        Customers with held-out purchases each window should hold (0: fixed windows).
    max_share : float
        Longest window as a share of the span from the first event to ``as_of``.

    Returns
    -------
    split : TimeSplit
    test, validation : WindowChoice
    """
    history = events.filter(pl.col("occurred_at") < as_of)
    firsts = first_purchases(history) if min_customers > 0 else None
    span_days = 0
    if history.height:
        span_days = int((as_of - history["occurred_at"].min()).total_seconds() // 86_400)
    longest = max(int(span_days * max_share), 1)
    if firsts is None:
        test = WindowChoice(eval_days, -1, {})
    else:
        test = choose_length(firsts, as_of, eval_days, min_customers, max(longest, eval_days))
    test_start = as_of - timedelta(days=test.days)
    if firsts is None:
        validation = WindowChoice(validation_days, -1, {})
    else:
        validation = choose_length(
            firsts, test_start, validation_days, min_customers, max(longest, validation_days)
        )
    split = TimeSplit(as_of, test_start, test_start - timedelta(days=validation.days))
    if firsts is not None:
        log.info("test window %s; validation window %s", test.describe(), validation.describe())
    return split, test, validation
