"""The same generated shop through ``affinity run`` on DuckDB and on Spark.

For each engine: a fresh home under ``--work``, ``affinity run --engine <engine> --data
<landing>`` (the Airflow DAG, as a user runs it), its wall time and stage times; then the
two published snapshots are compared (:func:`ml.spark.parity.compare_snapshots`: table
set, row counts, customer features and segments) and implicit ALS vs ``spark_als``
NDCG@10 on the Spark run's test split is read from its MLflow runs.

Usage::

    .venv/bin/python -m bench.bench_engines --name generated_5k --customers 5000 \
        --work /tmp/engines [--engines duckdb spark]

An engine whose ``<work>/<engine>/result.json`` exists is not run again (so the two runs
can be made one at a time). Writes ``bench/results/engines_<name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def run_engine(engine: str, landing: Path, home: Path) -> dict:
    env = {**os.environ, "AFFINITY_HOME": str(home), "AFFINITY_TASK_RETRIES": "0"}
    env.pop("AFFINITY_ENGINE", None)
    started = time.perf_counter()
    subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "affinity"),
            "run",
            "--engine",
            engine,
            "--data",
            str(landing),
        ],
        env=env,
        cwd=REPO,
        check=True,
        stdout=(home.parent / f"{engine}.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    seconds = time.perf_counter() - started
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        stages = dict(
            con.execute(
                "SELECT stage, seconds FROM ml.stage_runs QUALIFY row_number() OVER "
                "(PARTITION BY stage ORDER BY finished_at DESC) = 1"
            ).fetchall()
        )
    return {"engine": engine, "wall_seconds": round(seconds, 1), "stage_seconds": stages}


def mlflow_ndcg(home: Path) -> dict[str, float]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    figures: dict[str, float] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        family = run.data.tags.get("model_family")
        if family and "ndcg_at_10" in run.data.metrics:
            figures[family] = run.data.metrics["ndcg_at_10"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"])
    args = parser.parse_args()

    from ml.datagen.shop import generate_shop
    from ml.spark.parity import compare_snapshots

    landing = args.work / "landing"
    if not landing.exists():
        generate_shop(
            landing,
            customers=args.customers,
            products=args.products,
            days=args.days,
            seed=args.seed,
            campaign_uplift=0.1,
        )
    results = {}
    for engine in ("duckdb", "spark"):
        home = args.work / engine / "home"
        saved = args.work / engine / "result.json"
        if saved.exists():
            results[engine] = json.loads(saved.read_text())
        elif engine in args.engines:
            home.mkdir(parents=True, exist_ok=True)
            results[engine] = run_engine(engine, landing, home)
            saved.write_text(json.dumps(results[engine], indent=2))
    report: dict = {"name": args.name, "runs": results}
    if len(results) == 2:
        parity = compare_snapshots(
            args.work / "duckdb" / "home" / "published" / "affinity.duckdb",
            args.work / "spark" / "home" / "published" / "affinity.duckdb",
        )
        report["parity"] = {
            "equal": parity.equal,
            "tables_only_duckdb": parity.tables_only_in_first,
            "tables_only_spark": parity.tables_only_in_second,
            "row_counts": parity.row_counts,
            "value_mismatches": parity.value_mismatches,
        }
        ndcg = mlflow_ndcg(args.work / "spark" / "home")
        report["spark_home_ndcg_at_10"] = ndcg
        if ndcg.get("als") and ndcg.get("spark_als"):
            report["spark_als_over_als"] = round(ndcg["spark_als"] / ndcg["als"], 4)
    report["shop"] = {"customers": args.customers, "products": args.products, "days": args.days}
    report["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["python"] = sys.version.split()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"engines_{args.name}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"engines_{args.name}.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    runs = report["runs"]
    lines = [
        f"# DuckDB vs Spark engine: `affinity run` on the same shop ({report['name']})",
        "",
        f"Generated shop: {report['shop']['customers']:,} customers, "
        f"{report['shop']['products']:,} products, {report['shop']['days']} days. One "
        "`affinity run --engine <engine> --data <landing>` each, fresh homes, 2 cores "
        "shared with other work (local[*] Spark).",
        "",
        "| stage | " + " | ".join(runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    stages = []
    for run in runs.values():
        stages += [s for s in run["stage_seconds"] if s not in stages]
    for stage in stages:
        cells = [f"{run['stage_seconds'].get(stage, float('nan')):.1f}" for run in runs.values()]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines.append(
        "| **wall (whole `affinity run`)** | "
        + " | ".join(f"**{run['wall_seconds']:.0f}**" for run in runs.values())
        + " |"
    )
    if "parity" in report:
        parity = report["parity"]
        lines += [
            "",
            "## Published snapshots",
            "",
            f"Same table set: {not parity['tables_only_duckdb'] and not parity['tables_only_spark']}; "
            f"customer_features and customer_segments equal (rel. 1e-9): "
            f"{not any(parity['value_mismatches'].values())}; all equal: {parity['equal']}.",
            "",
            "| table | duckdb rows | spark rows |",
            "|---|---|---|",
        ]
        for table, (a, b) in parity["row_counts"].items():
            lines.append(f"| {table} | {a:,} | {b:,} |")
    if report.get("spark_home_ndcg_at_10"):
        lines += [
            "",
            "## ALS on the same split (the Spark run's training, test window)",
            "",
            "| family | NDCG@10 |",
            "|---|---|",
        ]
        for family, value in report["spark_home_ndcg_at_10"].items():
            lines.append(f"| {family} | {value:.4f} |")
        if "spark_als_over_als" in report:
            lines += ["", f"spark_als / als NDCG@10 = {report['spark_als_over_als']}."]
    lines += ["", f"Measured {report['measured_at']}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
