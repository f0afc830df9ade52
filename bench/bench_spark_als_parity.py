"""implicit ALS and ``spark_als`` (Spark MLlib) on the same split of a warehouse.

The engine acceptance says both engines' ALS score within 10 % NDCG@10 of each other on
the same split. This fits the same recipe (the trainer's default) with both families on
the trainer's adaptive time split of a home's ``marts.interaction_events`` and evaluates
them with the trainer's own code (:func:`ml.train.evaluate.evaluate_model`).

Usage (the home must hold built marts, e.g. after ``affinity run``; needs the Spark extra)::

    AFFINITY_HOME=/path/to/home .venv/bin/python -m bench.bench_spark_als_parity \
        --name generated_5k [--as-of 2026-10-31]

Writes ``bench/results/spark_als_parity_<name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def measure(as_of: str | None) -> dict:
    from ml.config import paths
    from ml.dates import as_of_end
    from ml.spark.als import SparkALSRecommender, mllib_reg_param
    from ml.train.config import TrainConfig
    from ml.train.evaluate import evaluate_model, fit_recipe
    from ml.train.history import build_training_data
    from ml.train.interactions import load_events
    from ml.train.split import build_evaluation_window
    from ml.train.windows import adaptive_split
    from ml.warehouse import connect

    home = paths()
    if as_of is None:
        with connect(home.warehouse, read_only=True) as con:
            as_of = (
                con.execute("SELECT max(occurred_at)::date FROM marts.interaction_events")
                .fetchone()[0]
                .isoformat()
            )
    config = TrainConfig()
    start = as_of_end(as_of) - timedelta(days=1)
    events = load_events(start + timedelta(days=1), home.warehouse)
    split, _, _ = adaptive_split(
        events,
        start,
        config.eval_days,
        config.validation_days,
        config.window_min_customers,
        config.window_max_share,
    )
    recipe = config.recipe
    training = build_training_data(events, split.test_start, recipe.weighting, None)
    window = build_evaluation_window(events, training, split.as_of).sample(
        config.max_eval_customers, config.seed
    )
    rows = []
    for family in ("als", "spark_als"):
        started = time.perf_counter()
        model = fit_recipe(
            __import__("dataclasses").replace(recipe, family=family), training, config.seed
        )
        fit_seconds = time.perf_counter() - started
        evaluation = evaluate_model(model, training, window, config.ks)
        rows.append(
            {
                "family": family,
                "fit_seconds": round(fit_seconds, 2),
                "ndcg_at_10": round(evaluation.ndcg_at_10, 5),
                "recall_at_10": round(evaluation.metrics.get("recall_at_10", float("nan")), 5),
                "catalog_coverage": round(evaluation.metrics.get("catalog_coverage", 0.0), 4),
            }
        )
    als, spark = rows
    ratio = spark["ndcg_at_10"] / als["ndcg_at_10"] if als["ndcg_at_10"] else float("nan")
    from ml.train.interactions import confidence_matrix

    confidences = confidence_matrix(training.strength, recipe.confidence)
    return {
        "as_of": as_of,
        "split": {
            "test_start": split.test_start.isoformat(),
            "as_of": split.as_of.isoformat(),
        },
        "matrix": {
            "customers": training.maps.shape[0],
            "products": training.maps.shape[1],
            "pairs": int(training.strength.nnz),
        },
        "eval_customers": len(window.customer_rows),
        "recipe_als": vars(recipe.als),
        "spark_reg_param": mllib_reg_param(recipe.als.regularization, confidences),
        "families": rows,
        "spark_over_implicit_ndcg": round(ratio, 4),
        "within_10_percent": bool(abs(ratio - 1.0) <= 0.10),
        "spark_family": SparkALSRecommender.family,
        "machine": f"{platform.machine()}, python {platform.python_version()}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def markdown(name: str, result: dict) -> str:
    m = result["matrix"]
    lines = [
        f"# implicit ALS vs spark_als on the same split ({name})",
        "",
        f"Matrix {m['customers']:,} customers x {m['products']:,} products, {m['pairs']:,} "
        f"pairs (history before {result['split']['test_start'][:10]}); "
        f"{result['eval_customers']:,} test customers up to {result['split']['as_of'][:10]}. "
        f"Recipe ALS settings {result['recipe_als']}; Spark regParam "
        f"{result['spark_reg_param']:.4f} (ml/spark/als.py mapping).",
        "",
        "| family | fit s | NDCG@10 | recall@10 | catalog coverage |",
        "|---|---|---|---|---|",
    ]
    for row in result["families"]:
        lines.append(
            f"| {row['family']} | {row['fit_seconds']} | {row['ndcg_at_10']} | "
            f"{row['recall_at_10']} | {row['catalog_coverage']} |"
        )
    lines += [
        "",
        f"spark_als / implicit NDCG@10 = {result['spark_over_implicit_ndcg']} "
        f"(within 10 %: {'yes' if result['within_10_percent'] else 'no'}).",
        "",
        f"Measured {result['measured_at']} on {result['machine']}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="results file suffix")
    parser.add_argument("--as-of", help="logical date (default: the last day of events)")
    args = parser.parse_args()
    result = measure(args.as_of)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"spark_als_parity_{args.name}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"spark_als_parity_{args.name}.md").write_text(markdown(args.name, result))
    print(markdown(args.name, result))


if __name__ == "__main__":
    main()
