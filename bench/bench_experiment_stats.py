"""Do the campaign statistics keep their promises? Coverage, error rates, power, SRM.

Usage::

    .venv/bin/python bench/bench_experiment_stats.py [--simulations 1000] [--customers 2000]

Every figure comes from seeded simulations with an exactly known effect
(:mod:`ml.datagen.experiment_sim`: a conversion uplift and the revenue lift it implies,
pre-campaign revenue as the CUPED covariate), measured by the same code as
``campaign_results`` (:func:`ml.campaigns.comparison.summarize_outcomes`):

* **coverage** of the 95 % intervals (conversion: Newcombe; revenue: Welch; revenue:
  CUPED) with a real effect and with a placebo; target 93-97 %;
* **false positives** of placebos, **power** at the reported minimum detectable effect
  (target 80 %), CUPED's variance reduction and interval widths;
* **peeking**: A/A streams looked at every 100 customers; how often the fixed-horizon
  interval and the always-valid one exclude the truth at some look (target <= 5 % for
  the always-valid one);
* **sample-ratio mismatch**: false alarms on fair splits, detection of a sender that lost
  10 / 20 / 30 % of treatment.

Writes ``bench/results/experiment_stats.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._common import machine, now_utc, write_results  # noqa: E402

TARGET = (0.93, 0.97)


def share(values) -> float:
    return float(np.mean(values))


def binomial_se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def measure(simulations: int, customers: int, uplift: float, seed0: int, **sim) -> list:
    from ml.campaigns.comparison import summarize_outcomes
    from ml.datagen.experiment_sim import simulate_experiment

    rows = []
    for seed in range(seed0, seed0 + simulations):
        outcomes, truth = simulate_experiment(seed, customers=customers, uplift=uplift, **sim)
        rows.append((summarize_outcomes(outcomes, control_share=0.5), truth))
    return rows


def coverage(rows, low: str, high: str, truth: str) -> float:
    return share([r[low] <= getattr(t, truth) <= r[high] for r, t in rows])


def interval_report(rows) -> dict:
    return {
        "conversion_newcombe": coverage(rows, "lift_ci_low", "lift_ci_high", "conversion_lift"),
        "conversion_always_valid": coverage(
            rows, "lift_sequential_ci_low", "lift_sequential_ci_high", "conversion_lift"
        ),
        "revenue_welch": coverage(
            rows, "revenue_lift_ci_low", "revenue_lift_ci_high", "revenue_lift"
        ),
        "revenue_cuped": coverage(
            rows, "revenue_lift_cuped_ci_low", "revenue_lift_cuped_ci_high", "revenue_lift"
        ),
        "revenue_cuped_always_valid": coverage(
            rows,
            "revenue_lift_cuped_sequential_ci_low",
            "revenue_lift_cuped_sequential_ci_high",
            "revenue_lift",
        ),
    }


def peeking(streams: int, n: int, every: int, seed: int) -> dict:
    """A/A streams of skewed values; share with the truth outside at some look."""
    from scipy.stats import norm

    from ml.campaigns.stats import sequential_halfwidth

    rng = np.random.default_rng(seed)
    z = norm.ppf(0.975)
    looks = np.arange(every, n + 1, every)
    fixed = sequential = final_fixed = 0
    for _ in range(streams):
        treated = rng.random(n) < 0.5
        values = rng.lognormal(1.0, 1.0, n)
        miss_fixed = miss_sequential = False
        for m in looks:
            t, v = treated[:m], values[:m]
            se = math.sqrt(v[t].var(ddof=1) / t.sum() + v[~t].var(ddof=1) / (~t).sum())
            estimate = v[t].mean() - v[~t].mean()
            miss_fixed |= abs(estimate) > z * se
            miss_sequential |= abs(estimate) > sequential_halfwidth(se, m, 0.05, n)
        fixed += miss_fixed
        sequential += miss_sequential
        final_fixed += abs(estimate) > z * se
    return {
        "streams": streams,
        "customers": n,
        "looks": len(looks),
        "fixed_miss_at_final_look": final_fixed / streams,
        "fixed_miss_at_any_look": fixed / streams,
        "always_valid_miss_at_any_look": sequential / streams,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=2000)
    args = parser.parse_args()
    if args.simulations < 200:
        parser.error("--simulations must be >= 200 (the coverage target needs them)")
    import scipy
    import statsmodels

    from ml.campaigns.comparison import summarize_outcomes
    from ml.datagen.experiment_sim import simulate_experiment

    started = time.perf_counter()
    n, c = args.simulations, args.customers
    effect = measure(n, c, 0.05, seed0=0)
    placebo = measure(n, c, 0.0, seed0=100_000)
    mde = float(np.median([r["mde_absolute_lift"] for r, _ in placebo]))
    at_mde = measure(min(n, 500), c, round(mde, 4), seed0=200_000)
    srm = {
        f"lost_{int(lost * 100)}pct_of_treatment": share(
            [
                summarize_outcomes(
                    simulate_experiment(seed, customers=c, lost_treatment_share=lost)[0],
                    control_share=0.5,
                )["srm_detected"]
                for seed in range(300_000, 300_000 + min(n, 300))
            ]
        )
        for lost in (0.1, 0.2, 0.3)
    }
    srm["fair_split_false_alarms"] = share([r["srm_detected"] for r, _ in effect + placebo])
    result = {
        "benchmark": "experiment_stats",
        "when": now_utc(),
        "simulations": n,
        "customers_per_campaign": c,
        "coverage_target": TARGET,
        "coverage_with_effect": interval_report(effect),
        "coverage_placebo": interval_report(placebo),
        "coverage_standard_error": binomial_se(0.95, n),
        "placebo_false_positive_rate": {
            "conversion_z_test": share([r["p_value"] < 0.05 for r, _ in placebo]),
            "revenue_cuped": share([r["revenue_lift_cuped_p_value"] < 0.05 for r, _ in placebo]),
        },
        "power": {
            "conversion_at_uplift_0.05": share([r["p_value"] < 0.05 for r, _ in effect]),
            "revenue_cuped_at_uplift_0.05": share(
                [r["revenue_lift_cuped_p_value"] < 0.05 for r, _ in effect]
            ),
            "median_reported_mde_absolute_lift": mde,
            "conversion_at_the_mde": share([r["p_value"] < 0.05 for r, _ in at_mde]),
            "simulations_at_the_mde": len(at_mde),
        },
        "cuped": {
            "mean_variance_reduction": share([r["cuped_variance_reduction"] for r, _ in effect]),
            "mean_ci_width_welch": share(
                [r["revenue_lift_ci_high"] - r["revenue_lift_ci_low"] for r, _ in effect]
            ),
            "mean_ci_width_cuped": share(
                [
                    r["revenue_lift_cuped_ci_high"] - r["revenue_lift_cuped_ci_low"]
                    for r, _ in effect
                ]
            ),
            "mean_estimate": share([r["revenue_lift_cuped"] for r, _ in effect]),
            "true_revenue_lift": effect[0][1].revenue_lift,
        },
        "peeking": peeking(500, 3000, 100, seed=7),
        "srm_detection_rate": srm,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(scipy=scipy.__version__, statsmodels=statsmodels.__version__),
    }
    path = write_results("experiment_stats", result, markdown(result))
    print(markdown(result))
    print(f"wrote {path}")
    return 0


def markdown(r: dict) -> str:
    low, high = r["coverage_target"]

    def verdict(value: float) -> str:
        return "ok" if low <= value <= high else "OUT OF TARGET"

    lines = [
        "# Experiment statistics: coverage, error rates, power, SRM",
        "",
        f"{r['when']}; {r['simulations']} seeded simulations per scenario of "
        f"{r['customers_per_campaign']} customers (control share 0.5; base conversion 20 %; "
        "`ml.datagen.experiment_sim`), measured by `summarize_outcomes`; "
        f"{r['seconds']} s. Coverage standard error at 95 %: "
        f"{r['coverage_standard_error']:.4f}.",
        "",
        "## Coverage of the 95 % intervals (target 93-97 % for fixed-horizon intervals)",
        "",
        "| interval | with effect (uplift 0.05) | placebo | verdict |",
        "|---|---|---|---|",
    ]
    for key, value in r["coverage_with_effect"].items():
        placebo = r["coverage_placebo"][key]
        always_valid = "always_valid" in key
        check = (
            "conservative at one look (expected)"
            if always_valid
            else f"{verdict(value)} / {verdict(placebo)}"
        )
        lines.append(f"| {key} | {value:.3f} | {placebo:.3f} | {check} |")
    p, w, c, s = r["power"], r["cuped"], r["peeking"], r["srm_detection_rate"]
    fp = r["placebo_false_positive_rate"]
    lines += [
        "",
        "## Error rates and power",
        "",
        f"- Placebo false positives (alpha 0.05): conversion z-test {fp['conversion_z_test']:.3f}, "
        f"CUPED revenue {fp['revenue_cuped']:.3f}.",
        f"- Power at uplift 0.05: conversion {p['conversion_at_uplift_0.05']:.3f}, CUPED revenue "
        f"{p['revenue_cuped_at_uplift_0.05']:.3f}.",
        f"- Reported minimum detectable effect (median): {p['median_reported_mde_absolute_lift']:.4f}; "
        f"power of simulations at that uplift: {p['conversion_at_the_mde']:.3f} "
        f"({p['simulations_at_the_mde']} simulations; target 0.80).",
        f"- CUPED: variance reduction {w['mean_variance_reduction']:.3f}; mean 95 % interval width "
        f"{w['mean_ci_width_welch']:.3f} (Welch) -> {w['mean_ci_width_cuped']:.3f} (CUPED); mean "
        f"estimate {w['mean_estimate']:.3f} vs true {w['true_revenue_lift']:.3f}.",
        "",
        "## Peeking (A/A streams, looks every 100 customers)",
        "",
        f"{c['streams']} streams of {c['customers']} customers, {c['looks']} looks each: the "
        f"fixed-horizon interval excludes the truth at the final look in "
        f"{c['fixed_miss_at_final_look']:.3f} of streams, at some look in "
        f"{c['fixed_miss_at_any_look']:.3f}; the always-valid interval at some look in "
        f"{c['always_valid_miss_at_any_look']:.3f} (target <= 0.05).",
        "",
        "## Sample-ratio mismatch (srm_alpha 0.001)",
        "",
        f"- False alarms on fair splits: {s['fair_split_false_alarms']:.4f}.",
    ]
    lines += [
        f"- Detected when the sender lost {k.split('_')[1].replace('pct', ' %')} of treatment: "
        f"{v:.3f}."
        for k, v in s.items()
        if k.startswith("lost_")
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
