"""Treatment/control assignment: a seeded hash, stable, with the configured control share."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from ml.campaigns.assignment import (
    CONTROL,
    TREATMENT,
    assign_groups,
    assignment_draw,
    is_control,
)

CUSTOMERS = [f"C{i:07d}" for i in range(1, 20_001)]


@pytest.mark.parametrize("share", [0.1, 0.25, 0.5])
def test_control_share_is_within_the_binomial_tolerance(share: float) -> None:
    # Each customer is control with probability `share`, independently: the count is
    # Binomial(n, share); 99.9% of such counts fall inside this interval.
    low, high = binom.interval(0.999, len(CUSTOMERS), share)
    controls = int(is_control("CMP001", CUSTOMERS, share).sum())
    assert low <= controls <= high


def test_assignment_is_stable_and_independent_of_order_and_audience() -> None:
    first = dict(zip(CUSTOMERS, assign_groups("CMP001", CUSTOMERS, 0.3), strict=True))
    again = dict(zip(CUSTOMERS, assign_groups("CMP001", CUSTOMERS, 0.3), strict=True))
    assert first == again
    # A backfill that sees another, reordered audience gives each customer the same group.
    subset = CUSTOMERS[::-7]
    assert list(assign_groups("CMP001", subset, 0.3)) == [first[c] for c in subset]
    assert set(first.values()) == {TREATMENT, CONTROL}


def test_campaigns_draw_independently() -> None:
    a = is_control("CMP001", CUSTOMERS, 0.5)
    b = is_control("CMP002", CUSTOMERS, 0.5)
    # Independent halves overlap on about a quarter of the customers.
    low, high = binom.interval(0.999, len(CUSTOMERS), 0.25)
    assert low <= int((a & b).sum()) <= high


def test_draw_is_a_fixed_function_of_its_inputs() -> None:
    # Pinned values: the groups of live campaigns must never change with a refactor.
    assert assignment_draw("CMP001", "C0000001") == 0.2239203705626881
    assert assignment_draw("CMP007", "C0001529") == 0.5298295984264797
    draws = np.array([assignment_draw("CMP001", c) for c in CUSTOMERS[:1000]])
    assert ((draws >= 0) & (draws < 1)).all()
    assert assignment_draw("CMP001", "C0000001", salt="other") != assignment_draw(
        "CMP001", "C0000001"
    )


def test_control_share_out_of_range_names_the_campaign() -> None:
    with pytest.raises(ValueError, match="CMP009"):
        is_control("CMP009", CUSTOMERS[:3], 1.5)
