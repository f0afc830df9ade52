"""Probe incremental scoring: how many customers the next night re-scores, and why.

Usage::

    python bench/probe_incremental.py [--customers 20000] [--products 2000] [--work DIR]
        [--label after]

1. **Prepare** (cached in ``--work``): generate a shop of ``--days`` days (default 91),
   split off its last day, run the pipeline's stages ``ingest`` .. ``train`` for the day
   before it, and keep that home (``home_prepared``) and landing folder.
2. **Measure** (every call): start from copies of the prepared home and landing (same
   paths, so the warehouse, the ingest manifest and MLflow see the same files), run the
   ``score`` stage for day one (a full scoring that saves the state), land the last day's
   files and run ``ingest`` .. ``score`` for day two (incremental scoring).
3. Read the ``recommendations`` rows of ``ml.stage_runs`` of both days: customers
   re-scored by cause, the planning/compute/write seconds, and the whole ``score`` stage
   wall time (recommendations, similar products, segments), with the load average; and
   how many cold-start lists changed between the days.
4. Score day two again with ``full_refresh`` and check that the incremental partition
   equals it (row count and an order-free hash of every column).

Writes ``bench/results/incremental_probe_<customers/1000>k.json`` and ``.md``; with
``--label`` the run is stored under that label beside earlier ones (``before``/``after``).
Stages run in child processes with one BLAS thread, like the tests' runner.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._common import RESULTS_DIR, machine, now_utc, write_results  # noqa: E402

# Child process: run stages first..last of the declared pipeline for one logical date.
DRIVER = r"""
import functools, json, sys
spec = json.loads(sys.argv[1])
import ml.train
from ml.train.config import TrainConfig
ml.train.train = functools.partial(ml.train.train, config=TrainConfig(bpr_enabled=False, log_plots=False))
from ml.orchestration.runner import run_stages
from ml.pipeline import RunContext
ctx = RunContext(spec["as_of"], run_id=spec["run_id"], input_path=spec["landing"], top_n=20,
                 full_refresh=spec["full_refresh"])
run_stages(ctx, spec["first"], spec["last"])
"""


def run_stages(
    home: Path, landing: Path, as_of: str, first: str, last: str, full_refresh: bool = False
) -> float:
    """Run stages ``first``..``last`` for ``as_of`` in a child; return its wall seconds."""
    spec = {"as_of": as_of, "run_id": f"probe-{as_of}-{first}", "landing": str(landing)}
    spec |= {"first": first, "last": last, "full_refresh": full_refresh}
    env = {
        **os.environ,
        "AFFINITY_HOME": str(home),
        "OPENBLAS_NUM_THREADS": "1",
        "AFFINITY_TASK_RETRIES": "0",
        "AFFINITY_FULL_REFRESH_WEEKDAY": "never",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(spec)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"stages {first}..{last} for {as_of} failed:\n{done.stderr[-4000:]}")
    return time.perf_counter() - started


def prepare(work: Path, customers: int, products: int, days: int, seed: int) -> dict:
    """Generate, split and run day one up to ``train`` once; cache it in ``work``."""
    meta_path = work / "prepared.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    from ml.datagen import generate_shop
    from ml.datagen.nightly import split_last_day

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    generate_shop(work / "shop", customers=customers, products=products, days=days, seed=seed)
    last_day = split_last_day(work / "shop", work / "landing", work / "last_day")
    day_one = (last_day - timedelta(days=1)).isoformat()
    seconds = run_stages(work / "home", work / "landing", day_one, "ingest", "train")
    shutil.copytree(work / "home", work / "home_prepared")
    shutil.copytree(work / "landing", work / "landing_prepared")
    meta = {
        "customers": customers,
        "products": products,
        "days": days,
        "seed": seed,
        "day_one": day_one,
        "day_two": last_day.isoformat(),
        "prepare_seconds": round(seconds, 1),
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


def scoring_detail(home: Path, day: str) -> dict:
    """``ml.stage_runs``'s ``recommendations`` row of ``day``: seconds and plan counts."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT stage, seconds, detail FROM ml.stage_runs WHERE logical_date = ?::date",
            [day],
        ).fetchall()
    finally:
        con.close()
    by_stage = {stage: (seconds, detail) for stage, seconds, detail in rows}
    seconds, detail = by_stage["recommendations"]
    detail = json.loads(detail) if isinstance(detail, str) else dict(detail)
    from dataclasses import fields

    from ml.serving.config import ScoreConfig

    # The detail holds the scoring config beside the plan's counts: keep the counts.
    skip = {"plan", "customers", "scored_customers", "seconds"} | {
        f.name for f in fields(ScoreConfig)
    }
    counts = {
        k: v
        for k, v in detail.items()
        if isinstance(v, int) and not isinstance(v, bool) and k not in skip
    }
    return {
        "recommendations_seconds": round(float(seconds), 2),
        "plan": detail.get("plan"),
        "customers": detail.get("customers"),
        "scored_customers": detail.get("scored_customers"),
        "phase_seconds": detail.get("seconds"),
        "causes": counts,
        "other_stage_seconds": {
            s: round(float(v[0]), 2) for s, v in sorted(by_stage.items()) if s != "recommendations"
        },
    }


def cold_list_churn(home: Path, day_one: str, day_two: str) -> dict:
    """How many cold-start lists (popularity, no model) changed from day one to day two.

    Compares each customer's popularity rows (exploration rows left out) in rank order;
    a list that changed cannot be skipped, only recomputed.
    """
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        total, changed, median_first = con.execute(
            """
            WITH lists AS (
                SELECT logical_date, customer_id, list(product_id ORDER BY rank) AS products
                FROM ml.recommendations
                WHERE logical_date IN (?::date, ?::date)
                  AND starts_with(reason_code, 'popular')
                GROUP BY ALL
            ),
            pairs AS (
                SELECT a.products AS one, b.products AS two
                FROM lists AS a JOIN lists AS b USING (customer_id)
                WHERE a.logical_date = ?::date AND b.logical_date = ?::date
            )
            SELECT count(*), count(*) FILTER (WHERE one <> two),
                   median(list_position(list_transform(
                       range(1, least(len(one), len(two)) + 1), lambda i: one[i] = two[i]), false))
                       FILTER (WHERE one <> two)
            FROM pairs
            """,
            [day_one, day_two, day_one, day_two],
        ).fetchall()[0]
    finally:
        con.close()
    return {
        "cold_start_on_both_days": int(total),
        "cold_start_lists_changed": int(changed),
        "median_first_changed_rank": median_first,
    }


def partition_checksum(home: Path, day: str) -> list:
    """Rows and an order-free hash of ``day``'s ``ml.recommendations`` partition."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return list(
            con.execute(
                "SELECT count(*), sum(hash(customer_id, rank, product_id, score, reason_code, "
                "reason_product_id, reason_context, model_name, model_version))::VARCHAR "
                "FROM ml.recommendations WHERE logical_date = ?::date",
                [day],
            ).fetchall()[0]
        )
    finally:
        con.close()


def measure(work: Path, meta: dict) -> dict:
    """Score day one in full, land day two, run day two through scoring (from copies)."""
    home, landing = work / "home", work / "landing"
    for target, source in ((home, work / "home_prepared"), (landing, work / "landing_prepared")):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
    from ml.datagen.nightly import land_last_day

    days = {}
    load = os.getloadavg()[0]
    score_one = run_stages(home, landing, meta["day_one"], "score", "score")
    days["day_one"] = {
        "logical_date": meta["day_one"],
        "score_stage_wall_seconds": round(score_one, 1),
        "load_average_1m_before": round(load, 2),
        **scoring_detail(home, meta["day_one"]),
    }
    landed = land_last_day(work / "last_day", landing)
    before_two = run_stages(home, landing, meta["day_two"], "ingest", "train")
    load = os.getloadavg()[0]
    score_two = run_stages(home, landing, meta["day_two"], "score", "score")
    days["day_two"] = {
        "logical_date": meta["day_two"],
        "rows_landed": landed,
        "ingest_to_train_wall_seconds": round(before_two, 1),
        "score_stage_wall_seconds": round(score_two, 1),
        "load_average_1m_before": round(load, 2),
        **scoring_detail(home, meta["day_two"]),
    }
    days["day_two"]["cold_start_churn"] = cold_list_churn(home, meta["day_one"], meta["day_two"])
    days["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    # The incremental partition must be what scoring everyone gives (same model, data).
    incremental = partition_checksum(home, meta["day_two"])
    run_stages(home, landing, meta["day_two"], "score", "score", full_refresh=True)
    days["day_two"]["equals_full_scoring"] = incremental == partition_checksum(
        home, meta["day_two"]
    )
    return days


def git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def markdown(result: dict) -> str:
    meta = result["inputs"]
    lines = [
        f"# Incremental scoring probe: {meta['customers']:,} customers, "
        f"{meta['products']:,} products",
        "",
        f"Generated shop (seed {meta['seed']}, {meta['days']} days): day one "
        f"{meta['day_one']} scored in full, day two {meta['day_two']} incrementally "
        "(`python bench/probe_incremental.py`). Counts from `ml.stage_runs`; 2 shared "
        "cores, load average (1 min) noted per run.",
        "",
    ]
    for label, run in result["runs"].items():
        one, two = run["day_one"], run["day_two"]
        lines += [
            f"## {label} (commit {run['commit']}, {run['measured_at']})",
            "",
            "| | day one | day two |",
            "|---|---:|---:|",
            f"| customers | {one['customers']:,} | {two['customers']:,} |",
            f"| scored by the model or popularity | {one['scored_customers']:,} | "
            f"{two['scored_customers']:,} |",
            f"| recommendations seconds (`ml.stage_runs`) | {one['recommendations_seconds']} | "
            f"{two['recommendations_seconds']} |",
            f"| of which scored by the model | {_count(one['causes'].get('scored_by_model'))} | "
            f"{_count(two['causes'].get('scored_by_model'))} |",
            f"| re-ranked for a demotion flip (no model) | | "
            f"{two['causes'].get('reranked_for_demotion', 0):,} |",
            f"| score stage wall seconds | {one['score_stage_wall_seconds']} | "
            f"{two['score_stage_wall_seconds']} |",
            f"| segments seconds (same stage; noisy under load) | "
            f"{one['other_stage_seconds'].get('segments')} | "
            f"{two['other_stage_seconds'].get('segments')} |",
            f"| load average before | {one['load_average_1m_before']} | "
            f"{two['load_average_1m_before']} |",
            "",
            f"Day two plan: {two['plan']}; phases {two['phase_seconds']}. Day two's "
            "partition equals a full scoring of day two (`full_refresh`, same model): "
            f"{two.get('equals_full_scoring', 'not checked')}.",
            "",
            *(
                [
                    "Cold-start lists (popularity rows, exploration left out) on both days: "
                    f"{churn['cold_start_lists_changed']:,} of "
                    f"{churn['cold_start_on_both_days']:,} changed, first at rank "
                    f"{churn['median_first_changed_rank']} in the median: they cannot be "
                    "skipped, only recomputed (no model).",
                    "",
                ]
                if (churn := two.get("cold_start_churn"))
                else []
            ),
            "| day two cause (overlapping) | count |",
            "|---|---:|",
            *(f"| {k} | {v:,} |" for k, v in two["causes"].items()),
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=91)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/affinity-probe-incremental"))
    parser.add_argument("--label", default="after")
    args = parser.parse_args()
    meta = prepare(args.work, args.customers, args.products, args.days, args.seed)
    days = measure(args.work, meta)
    name = f"incremental_probe_{args.customers // 1000}k"
    previous = RESULTS_DIR / f"{name}.json"
    runs = json.loads(previous.read_text())["runs"] if previous.exists() else {}
    runs[args.label] = {"commit": git_commit(), "measured_at": now_utc(), **days}
    result = {"inputs": meta, "machine": machine(), "runs": runs}
    write_results(name, result, markdown(result))
    two = days["day_two"]
    print(f"day two: {two['scored_customers']} of {two['customers']} scored; {two['causes']}")


if __name__ == "__main__":
    main()
