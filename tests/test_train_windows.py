"""Test and validation windows sized to the data's density (ml.train.windows)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from ml.train.windows import adaptive_split, choose_length, first_purchases, held_out_customers

AS_OF = datetime(2024, 1, 1)


def events_of(rows: list[tuple[str, str, datetime, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "product_id": [r[1] for r in rows],
            "occurred_at": [r[2] for r in rows],
            "event_kind": [r[3] for r in rows],
            "quantity": [1.0] * len(rows),
        }
    )


def sparse_shop(n_customers: int = 60, gap_days: int = 200) -> pl.DataFrame:
    """Each customer buys product A long ago and one new product ``gap_days`` later,
    spread over the year before ``AS_OF``: a shop where 30 days hold a few customers."""
    rows = []
    for c in range(n_customers):
        first = AS_OF - timedelta(days=400 + c)
        second = first + timedelta(days=gap_days + 2 * c)
        rows.append((f"C{c:03d}", "A", first, "purchase"))
        rows.append((f"C{c:03d}", f"P{c % 5}", first - timedelta(days=30), "view"))
        if second < AS_OF:
            rows.append((f"C{c:03d}", f"P{c % 5}", second, "purchase"))
    return events_of(rows)


def test_held_out_customers_need_a_new_product_and_a_known_customer_and_product():
    start, end = AS_OF - timedelta(days=10), AS_OF
    events = events_of(
        [
            ("old", "X", start - timedelta(days=5), "purchase"),
            ("old", "Y", start - timedelta(days=5), "view"),
            ("old", "Y", start + timedelta(days=1), "purchase"),  # counts: new to them
            ("again", "X", start - timedelta(days=5), "purchase"),
            ("again", "X", start + timedelta(days=2), "purchase"),  # bought before: no
            ("newbie", "X", start + timedelta(days=3), "purchase"),  # unknown customer: no
            ("old2", "X", start - timedelta(days=1), "purchase"),
            ("old2", "Z", start + timedelta(days=1), "purchase"),  # unknown product: no
        ]
    )
    assert held_out_customers(first_purchases(events), start, end) == 1


def test_a_window_doubles_until_it_holds_enough_customers():
    firsts = first_purchases(sparse_shop())
    choice = choose_length(firsts, AS_OF, 30, min_customers=20, longest_days=400)

    assert list(choice.tried) == [30, 60, 120, 240][: len(choice.tried)]
    assert choice.customers >= 20
    assert all(count < 20 for days, count in choice.tried.items() if days < choice.days)
    assert "days" in choice.describe() and str(choice.customers) in choice.describe()


def test_when_no_length_is_enough_the_fullest_one_wins_within_the_cap():
    firsts = first_purchases(sparse_shop(n_customers=10))
    choice = choose_length(firsts, AS_OF, 30, min_customers=1_000, longest_days=100)

    assert max(choice.tried) == 100  # never past the cap
    best = max(choice.tried.values())
    assert choice.customers == best
    assert choice.days == min(d for d, n in choice.tried.items() if n == best)


def test_dense_data_keeps_the_configured_windows():
    # Every day, 30 known customers buy a product new to them.
    rows = []
    for day in range(200):
        at = AS_OF - timedelta(days=200 - day)
        for c in range(30):
            rows.append((f"C{c}", f"P{day}", at, "purchase"))
    split, test, validation = adaptive_split(events_of(rows), AS_OF, 30, 30, 25, 0.25)
    assert (test.days, validation.days) == (30, 30)
    assert split.test_start == AS_OF - timedelta(days=30)
    assert split.validation_start == AS_OF - timedelta(days=60)


def test_sparse_data_gets_longer_windows_and_fixed_windows_stay_fixed():
    events = sparse_shop()
    split, test, validation = adaptive_split(events, AS_OF, 30, 30, 20, 0.5)
    assert test.days > 30 and test.customers >= 20
    assert split.test_start == AS_OF - timedelta(days=test.days)
    assert split.validation_start == split.test_start - timedelta(days=validation.days)

    fixed, fixed_test, _ = adaptive_split(events, AS_OF, 30, 30, 0, 0.5)
    assert fixed.test_start == AS_OF - timedelta(days=30)
    assert fixed_test.tried == {}
