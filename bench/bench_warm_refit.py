"""Does a warm-started ALS re-fit reach the quality of a cold fit in fewer iterations?

Usage::

    python bench/bench_warm_refit.py --home DIR [--as-of YYYY-MM-DD] [--name LABEL]

The training step re-fits the served model on the whole history, starting from the
evaluated model's factors (``TrainConfig.refit_iterations``). This benchmark checks that
choice where it can be measured: a model fit on the history before the validation window
plays the evaluated model, and the re-fit on the history before the test window (30 more
days) is done cold with the recipe's iterations and warm with fewer; each is scored on
the test window. Writes ``bench/results/warm_refit_<label>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._common import machine, now_utc, write_results  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--as-of", help="run date (default: the day after the last event)")
    parser.add_argument("--name", default="run")
    parser.add_argument("--warm-iterations", default="2,3,5,8")
    args = parser.parse_args()
    os.environ["AFFINITY_HOME"] = str(args.home.resolve())

    import implicit
    from threadpoolctl import threadpool_limits

    from ml.config import paths
    from ml.train.config import TrainConfig
    from ml.train.evaluate import evaluate_model, fit_recipe
    from ml.train.history import build_training_data
    from ml.train.interactions import load_events
    from ml.train.split import TimeSplit, build_evaluation_window
    from ml.train.trainer import _resolve_as_of

    config = TrainConfig()
    recipe = dataclasses.replace(config.recipe, family="als")
    home = paths()
    split = TimeSplit.from_as_of(
        _resolve_as_of(args.as_of, home.warehouse), config.eval_days, config.validation_days
    )
    events = load_events(split.history_end, home.warehouse)
    earlier = build_training_data(events, split.validation_start, recipe.weighting)
    training = build_training_data(events, split.test_start, recipe.weighting)
    window = build_evaluation_window(events, training, split.as_of)
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        started = time.perf_counter()
        evaluated = fit_recipe(recipe, earlier, config.seed)
        base_seconds = time.perf_counter() - started

        def measure(label: str, **fit_args) -> None:
            started = time.perf_counter()
            model = fit_recipe(recipe, training, config.seed, **fit_args)
            seconds = time.perf_counter() - started
            figures = evaluate_model(model, training, window).metrics
            rows.append(
                {
                    "fit": label,
                    "iterations": fit_args.get("iterations") or recipe.als.iterations,
                    "seconds": round(seconds, 2),
                    "ndcg_at_10": round(figures["ndcg_at_10"], 5),
                    "recall_at_10": round(figures["recall_at_10"], 5),
                }
            )
            print(rows[-1], flush=True)

        measure("cold")
        for iterations in [int(i) for i in args.warm_iterations.split(",")]:
            measure("warm", warm_start=(evaluated, earlier.maps), iterations=iterations)
    cold = rows[0]
    for row in rows:
        row["ndcg_vs_cold"] = round(row["ndcg_at_10"] / cold["ndcg_at_10"], 4)
        row["time_vs_cold"] = round(row["seconds"] / cold["seconds"], 3)
    result = {
        "benchmark": "warm_refit",
        "home": str(args.home),
        "as_of": split.as_of.date().isoformat(),
        "matrix": {"customers": training.maps.shape[0], "products": training.maps.shape[1]},
        "pairs": training.strength.nnz,
        "evaluated_customers": len(window.customer_rows),
        "recipe": recipe.to_dict(),
        "starting_model_fit_seconds": round(base_seconds, 2),
        "rows": rows,
        "load_average": round(os.getloadavg()[0], 2),
        "machine": machine(implicit=implicit.__version__),
        "measured_at": now_utc(),
    }
    lines = [
        f"# Warm-started ALS re-fit ({args.name})",
        "",
        f"Re-fit on {training.maps.shape[0]:,} customers x {training.maps.shape[1]:,} products "
        f"({training.strength.nnz:,} pairs), scored on the test window ending "
        f"{result['as_of']} ({len(window.customer_rows):,} customers); warm fits start from a "
        f"model fit 30 days earlier. Recipe: {recipe.als.factors} factors, regularization "
        f"{recipe.als.regularization}. Load average {result['load_average']}.",
        "",
        "| fit | iterations | seconds | NDCG@10 | recall@10 | NDCG vs cold | time vs cold |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['fit']} | {r['iterations']} | {r['seconds']} | {r['ndcg_at_10']} | "
            f"{r['recall_at_10']} | {r['ndcg_vs_cold']} | {r['time_vs_cold']} |"
            for r in rows
        ),
    ]
    write_results(f"warm_refit_{args.name}", result, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
