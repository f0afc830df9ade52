"""Experiment statistics of a campaign: sample ratio, CUPED, always-valid intervals, MDE.

Pure functions over numbers and numpy arrays (no warehouse I/O), used by
:mod:`ml.campaigns.measurement` (``campaign_results``) and :mod:`ml.campaigns.insights`
(``campaign_insights``).

Sample-ratio mismatch (SRM)
    Pearson's chi-square goodness-of-fit test of the group sizes against the configured
    control share (1 degree of freedom). A broken assignment (a crashed sender that
    skipped part of treatment, a filter applied to one group only) shows up as a ratio
    the hash could not have produced; the comparison is then biased however large the
    sample, so the verdict is withheld. The threshold is strict (``srm_alpha`` = 0.001,
    as experiment platforms use) because the check runs on every campaign.

CUPED (Deng, Xu, Kohavi and Walker 2013, "Improving the sensitivity of online controlled
experiments by utilizing pre-experiment data", WSDM)
    ``Y_cv = Y - theta (X - mean(X))`` with ``theta = cov(X, Y) / var(X)`` estimated on
    both groups together, where ``Y`` is a customer's revenue in the attribution window
    and ``X`` the same metric over the pre-campaign period. ``X`` is fixed before the
    assignment, so ``E[X]`` is the same in both groups and the difference of the
    adjusted means is unbiased for the lift, with variance reduced by ``1 - rho^2``
    (``rho`` = corr(X, Y)).

Always-valid confidence interval (Waudby-Smith, Arnold, Wu, Howard, Ramdas, Sekhon and
Ramdas 2023, "Time-uniform central limit theory and asymptotic confidence sequences",
eq. 9; the two-sided normal-mixture boundary, as GrowthBook documents for its
sequential testing)
    ``estimate +- sigma * sqrt( 2 (n rho^2 + 1) / (n^2 rho^2) * ln( sqrt(n rho^2 + 1) / alpha ) )``

    with ``n`` the customers in both groups, ``sigma^2 = n * SE^2`` the per-customer
    variance of the estimator, and ``rho^2 = (-2 ln alpha + ln(-2 ln alpha + 1)) / N*``,
    which makes the sequence tightest at the planned sample size ``N*`` (the frozen
    audience size). Unlike the fixed-horizon interval, it keeps its coverage however
    often results are looked at while data accrue; it is wider at any single look.

Minimum detectable effect
    ``(z_{1-alpha/2} + z_{power}) * SE``: the smallest true lift the test detects with
    probability ``power`` at the current sample size (two-sided normal test; ``SE`` of
    the conversion difference at the control rate, of the CUPED revenue difference for
    revenue).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import chi2, norm

DEFAULT_SRM_ALPHA = 0.001
DEFAULT_POWER = 0.8


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- SRM


def srm_p_value(treatment_size: int, control_size: int, control_share: float) -> float | None:
    """P-value of the chi-square test that the groups split as ``control_share`` says.

    Parameters
    ----------
    treatment_size, control_size : int
        Customers in each group.
    control_share : float
        Configured share of the audience held out as control.

    Returns
    -------
    float or None
        ``None`` when the test is undefined: an empty audience, or a share of 0 or 1
        (every customer in one group by design).
    """
    n = int(treatment_size) + int(control_size)
    if n == 0 or not 0.0 < control_share < 1.0:
        return None
    expected_control = n * control_share
    expected_treatment = n - expected_control
    statistic = (control_size - expected_control) ** 2 / expected_control + (
        treatment_size - expected_treatment
    ) ** 2 / expected_treatment
    return float(chi2.sf(statistic, df=1))


def srm_detected(p_value: float | None, srm_alpha: float = DEFAULT_SRM_ALPHA) -> bool:
    """Whether the sample ratio is off enough to withhold the verdict."""
    return p_value is not None and p_value < srm_alpha


# --------------------------------------------------------------------------- intervals


def sequential_rho_squared(alpha: float, tuning: float) -> float:
    """``rho^2`` of the normal mixture that is tightest at ``tuning`` customers.

    Raises
    ------
    ValueError
        ``alpha`` outside (0, 1) or a non-positive ``tuning``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be within (0, 1), got {alpha}")
    if tuning <= 0:
        raise ValueError(f"the sequential tuning sample size must be > 0, got {tuning}")
    log_alpha = math.log(alpha)
    return (-2.0 * log_alpha + math.log(-2.0 * log_alpha + 1.0)) / tuning


def sequential_halfwidth(standard_error: float, n: int, alpha: float, tuning: float) -> float:
    """Half-width of the always-valid interval (formula in the module docstring).

    Parameters
    ----------
    standard_error : float
        Standard error of the estimate (e.g. ``sqrt(var_t / n_t + var_c / n_c)``).
    n : int
        Customers in both groups.
    alpha : float
        1 - confidence level.
    tuning : float
        Planned sample size ``N*`` at which the sequence is tightest.
    """
    if n < 1 or not standard_error >= 0:
        return float("nan")
    rho2 = sequential_rho_squared(alpha, tuning)
    sigma = standard_error * math.sqrt(n)
    scale = n * rho2 + 1.0
    return sigma * math.sqrt(2.0 * scale / (n * n * rho2) * math.log(math.sqrt(scale) / alpha))


def normal_interval(estimate: float, standard_error: float, alpha: float) -> tuple[float, float]:
    """Fixed-horizon two-sided normal interval."""
    z = norm.ppf(1 - alpha / 2)
    return estimate - z * standard_error, estimate + z * standard_error


def normal_p_value(estimate: float, standard_error: float) -> float | None:
    """Two-sided p-value of ``estimate = 0`` under the normal approximation."""
    if not standard_error > 0:
        return None
    return float(2 * norm.sf(abs(estimate) / standard_error))


def minimum_detectable_effect(
    standard_error: float, alpha: float = 0.05, power: float = DEFAULT_POWER
) -> float | None:
    """Smallest true effect detected with probability ``power`` (two-sided test)."""
    if not standard_error > 0:
        return None
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * standard_error)


def conversion_standard_error(
    x_t: int, n_t: int, x_c: int, n_c: int
) -> tuple[float | None, float | None]:
    """Standard errors of the conversion difference: observed (unpooled) and at the control rate.

    Returns
    -------
    observed : float or None
        ``sqrt(p_t (1 - p_t) / n_t + p_c (1 - p_c) / n_c)``, for intervals.
    at_control_rate : float or None
        ``sqrt(p_c (1 - p_c) (1 / n_t + 1 / n_c))``, for the minimum detectable effect
        (the variance the test would have if there were no effect).
    """
    if n_t <= 0 or n_c <= 0:
        return None, None
    p_t, p_c = x_t / n_t, x_c / n_c
    observed = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    at_control = math.sqrt(p_c * (1 - p_c) * (1 / n_t + 1 / n_c))
    return observed, at_control


# --------------------------------------------------------------------------- means, CUPED


@dataclass(frozen=True)
class MeanLift:
    """Difference of group means with its fixed-horizon and always-valid intervals.

    ``theta`` and ``variance_reduction`` describe the CUPED adjustment (0 and 0 when the
    difference is unadjusted).
    """

    estimate: float | None
    standard_error: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    sequential_ci_low: float | None
    sequential_ci_high: float | None
    mde: float | None
    theta: float = 0.0
    variance_reduction: float = 0.0


EMPTY_LIFT = MeanLift(None, None, None, None, None, None, None, None)


def mean_lift(
    values: np.ndarray,
    treated: np.ndarray,
    *,
    covariate: np.ndarray | None = None,
    alpha: float = 0.05,
    power: float = DEFAULT_POWER,
    tuning: float | None = None,
) -> MeanLift:
    """Treatment minus control mean of ``values`` (Welch standard error, normal intervals).

    With a ``covariate`` (a pre-period value per customer) the difference is CUPED-adjusted
    (Deng et al. 2013): ``values - theta (covariate - mean)`` is compared instead, and
    ``theta`` and ``variance_reduction`` (``1 - var(Y_cv) / var(Y)`` over all customers,
    about ``corr(X, Y)^2``) are filled in.

    Parameters
    ----------
    values : numpy.ndarray
        One value per customer.
    treated : numpy.ndarray of bool
        Whether each customer is in treatment.
    covariate : numpy.ndarray, optional
        One pre-period value per customer, for the CUPED adjustment.
    alpha, power : float
        Interval level ``1 - alpha``; power of the minimum detectable effect.
    tuning : float, optional
        ``N*`` of the always-valid interval (default: the number of customers).

    Returns
    -------
    MeanLift
        :data:`EMPTY_LIFT` when a group has fewer than 2 customers.
    """
    values = np.asarray(values, dtype=np.float64)
    treated = np.asarray(treated, dtype=bool)
    if covariate is None:
        return _welch_lift(values, treated, alpha, power, tuning)
    adjusted, theta = cuped_adjust(values, covariate)
    lift = _welch_lift(adjusted, treated, alpha, power, tuning)
    if lift is EMPTY_LIFT:
        return lift
    var_y = values.var(ddof=1) if len(values) > 1 else 0.0
    reduction = 1.0 - adjusted.var(ddof=1) / var_y if var_y > 0 else 0.0
    return replace(lift, theta=theta, variance_reduction=float(reduction))


def _welch_lift(values, treated, alpha, power, tuning) -> MeanLift:
    y_t, y_c = values[treated], values[~treated]
    if len(y_t) < 2 or len(y_c) < 2:
        return EMPTY_LIFT
    estimate = float(y_t.mean() - y_c.mean())
    se = math.sqrt(y_t.var(ddof=1) / len(y_t) + y_c.var(ddof=1) / len(y_c))
    n = len(values)
    if se == 0:  # every customer has the same value in each group: no uncertainty to state
        return MeanLift(estimate, 0.0, estimate, estimate, None, estimate, estimate, None)
    low, high = normal_interval(estimate, se, alpha)
    half = sequential_halfwidth(se, n, alpha, tuning or n)
    return MeanLift(
        estimate,
        se,
        _finite(low),
        _finite(high),
        normal_p_value(estimate, se),
        _finite(estimate - half),
        _finite(estimate + half),
        minimum_detectable_effect(se, alpha, power),
    )


def cuped_theta(outcome: np.ndarray, covariate: np.ndarray) -> float:
    """``cov(X, Y) / var(X)`` over all customers (0 when the covariate does not vary)."""
    x = np.asarray(covariate, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    if len(x) < 2:
        return 0.0
    var_x = x.var(ddof=1)
    if not var_x > 0:
        return 0.0
    return float(np.cov(x, y, ddof=1)[0, 1] / var_x)


def cuped_adjust(outcome: np.ndarray, covariate: np.ndarray) -> tuple[np.ndarray, float]:
    """CUPED-adjusted outcomes ``Y - theta (X - mean(X))`` and ``theta``."""
    x = np.asarray(covariate, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    theta = cuped_theta(y, x)
    if theta == 0.0:
        return y.copy(), 0.0
    return y - theta * (x - x.mean()), theta
