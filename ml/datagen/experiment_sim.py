"""Campaign outcomes with pre-campaign history and an exactly known effect, for checking
the experiment statistics (coverage, power, CUPED, sample-ratio checks).

Each customer ``i`` has a purchase propensity ``p_i`` (Beta with first shape
``propensity_shape``, mean ``base_rate``: many rare buyers, a few frequent ones) and a
log order value ``mu_i ~ Normal(value_log_mean, value_log_sd)``. Before the campaign
they placed ``Poisson(pre_orders * p_i / base_rate)`` orders of value
``exp(mu_i + order_log_sd * Z)`` (the CUPED covariate). During the window, with one
uniform draw ``U_i`` shared by both potential outcomes, they buy without the campaign
when ``U_i < p_i`` and with it when ``U_i < p_i + uplift``, one order of value
``exp(mu_i + order_log_sd * Z)``. So, exactly:

* conversion lift = ``uplift``;
* revenue lift per customer = ``uplift * E[order value]``
  = ``uplift * exp(value_log_mean + (value_log_sd^2 + order_log_sd^2) / 2)``.

Groups come from the campaign step's hash; ``lost_treatment_share`` drops that share of
treatment customers at random after assignment (a broken sender), which the
sample-ratio check must catch.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from ml.campaigns.assignment import CONTROL, DEFAULT_SALT, TREATMENT, is_control


@dataclass(frozen=True)
class ExperimentTruth:
    """The exact effects of a simulated campaign."""

    conversion_lift: float
    revenue_lift: float


def true_effects(
    uplift: float, value_log_mean: float, value_log_sd: float, order_log_sd: float
) -> ExperimentTruth:
    """Exact conversion and revenue-per-customer lifts of :func:`simulate_experiment`."""
    mean_value = math.exp(value_log_mean + (value_log_sd**2 + order_log_sd**2) / 2)
    return ExperimentTruth(uplift, uplift * mean_value)


def simulate_experiment(
    seed: int,
    *,
    customers: int = 2_000,
    base_rate: float = 0.2,
    uplift: float = 0.05,
    control_share: float = 0.5,
    pre_orders: float = 3.0,
    propensity_shape: float = 0.5,
    value_log_mean: float = 3.5,
    value_log_sd: float = 0.6,
    order_log_sd: float = 0.4,
    lost_treatment_share: float = 0.0,
    salt: str = DEFAULT_SALT,
) -> tuple[pl.DataFrame, ExperimentTruth]:
    """Outcomes of one simulated campaign and its true effects.

    Returns
    -------
    outcomes : polars.DataFrame
        ``customer_id, assignment_group, converted, revenue, pre_revenue`` (what
        :func:`ml.campaigns.comparison.summarize_outcomes` takes).
    truth : ExperimentTruth

    Raises
    ------
    ValueError
        ``base_rate`` and ``uplift`` leave no room (need ``0 < base_rate < 1 - uplift``).
    """
    if not 0 < base_rate < 1 - uplift:
        raise ValueError("need 0 < base_rate < 1 - uplift")
    rng = np.random.default_rng([seed, zlib.crc32(b"experiment-simulation")])
    ids = [f"C{i:07d}" for i in range(1, customers + 1)]
    control = is_control(f"EXP{seed:04d}", ids, control_share, salt)
    mean = base_rate / (1 - uplift)
    shape = propensity_shape
    p = (1 - uplift) * rng.beta(shape, shape * (1 - mean) / mean, size=customers)
    mu = rng.normal(value_log_mean, value_log_sd, size=customers)
    history = rng.poisson(pre_orders * p / base_rate)
    pre_revenue = history * np.exp(mu + order_log_sd * rng.standard_normal(customers))
    draw = rng.random(customers)
    converted = draw < p + np.where(control, 0.0, uplift)
    value = np.exp(mu + order_log_sd * rng.standard_normal(customers))
    keep = np.ones(customers, dtype=bool)
    if lost_treatment_share > 0:
        keep = control | (rng.random(customers) >= lost_treatment_share)
    frame = pl.DataFrame(
        {
            "customer_id": ids,
            "assignment_group": np.where(control, CONTROL, TREATMENT).tolist(),
            "converted": converted,
            "revenue": np.round(np.where(converted, value, 0.0), 2),
            "pre_revenue": np.round(pre_revenue, 2),
        }
    ).filter(pl.Series(keep))
    return frame, true_effects(uplift, value_log_mean, value_log_sd, order_log_sd)
