"""A search move must beat validation noise: paired per-customer standard errors."""

from __future__ import annotations

import numpy as np
import pytest

from ml.train.significance import CustomerScores, clear_gain, paired_standard_error


def scores(ids, values) -> CustomerScores:
    ids, values = np.asarray(ids, dtype=object), np.asarray(values, dtype=float)
    order = np.argsort(ids)
    return CustomerScores(ids[order], values[order])


def test_a_constant_gain_is_clear_however_much_customers_differ():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 300)  # large customer-to-customer spread
    ids = [f"C{i:04d}" for i in range(300)]
    incumbent, candidate = scores(ids, base), scores(ids, base + 0.01)

    assert paired_standard_error(candidate, incumbent) == pytest.approx(0.0, abs=1e-12)
    assert clear_gain(base.mean() + 0.01, base.mean(), candidate, incumbent, 1.0)


def test_a_noisy_gain_is_not_clear_but_counts_without_the_rule():
    rng = np.random.default_rng(1)
    ids = [f"C{i:04d}" for i in range(300)]
    base = rng.uniform(0, 1, 300)
    noisy = base + 0.01 + rng.normal(0, 0.3, 300)
    incumbent, candidate = scores(ids, base), scores(ids, noisy)
    se = paired_standard_error(candidate, incumbent)

    assert se == pytest.approx(0.3 / np.sqrt(300), rel=0.15)
    gain = 0.5 * se  # a gain of half a standard error: noise
    assert not clear_gain(0.4 + gain, 0.4, candidate, incumbent, 1.0)
    assert clear_gain(0.4 + gain, 0.4, candidate, incumbent, 0.0)
    assert clear_gain(0.4 + 3 * se, 0.4, candidate, incumbent, 1.0)
    assert not clear_gain(0.4, 0.4, candidate, incumbent, 0.0)  # a tie never moves


def test_customers_are_paired_by_id_not_by_position():
    # The same customers in another order, plus customers only one side scored.
    incumbent = scores(["A", "B", "C", "D"], [0.1, 0.5, 0.9, 0.3])
    candidate = scores(["D", "C", "B", "A", "E"], [0.4, 1.0, 0.6, 0.2, 0.0])

    assert paired_standard_error(candidate, incumbent) == pytest.approx(0.0, abs=1e-12)
    assert paired_standard_error(scores(["A"], [1.0]), incumbent) == float("inf")
    # Unknown per-customer scores: any strict gain counts.
    assert clear_gain(0.5, 0.4, None, incumbent, 1.0)
