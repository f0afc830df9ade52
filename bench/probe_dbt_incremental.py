"""Where the dbt feature build's time goes on a next day, model by model (issue 20).

Usage::

    .venv/bin/python bench/probe_dbt_incremental.py [--scale 1m|10m]

Generates the shop with one more day, loads all but the last day and builds the features
(``affinity build-features``, the DAG's ``product_text``, ``review_insight`` and
``dbt_features``), then lands the last day, loads it and builds again: the incremental
night. Last, the same home is rebuilt with ``--full-refresh``. Each build's per-node times
come from dbt's ``run_results.json``. Writes ``bench/results/dbt_incremental_<scale>.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._common import machine, now_utc, write_results  # noqa: E402
from bench.bench_generate import SCALES  # noqa: E402
from ml.datagen.nightly import split_last_day  # noqa: E402

AFFINITY = str(Path(sys.executable).with_name("affinity"))


def _run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([AFFINITY, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _node_times(home: Path) -> dict[str, float]:
    results = json.loads((home / "dbt" / "target" / "run_results.json").read_text())
    return {r["unique_id"]: round(r["execution_time"], 3) for r in results["results"]}


def _build(home: Path, as_of: str, env: dict[str, str], full_refresh: bool = False) -> dict:
    args = ["build-features", "--as-of", as_of] + (["--full-refresh"] if full_refresh else [])
    load = os.getloadavg()[0]
    seconds = _run(args, env)
    nodes = _node_times(home)
    return {"seconds": round(seconds, 2), "load_before": round(load, 2), "nodes": nodes}


def _summary(build: dict) -> dict:
    nodes = build["nodes"]
    models = {k: v for k, v in nodes.items() if k.startswith("model.")}
    tests = {k: v for k, v in nodes.items() if k.startswith(("test.", "unit_test."))}
    return {
        "models_s": round(sum(models.values()), 2),
        "tests_s": round(sum(tests.values()), 2),
        "nodes": len(nodes),
    }


def markdown(r: dict) -> str:
    builds = ("first_day", "next_day", "full_refresh")
    lines = [
        f"# dbt feature build, next day vs full refresh ({r['scale']})",
        "",
        f"Measured {r['measured_at']} on {r['machine'].get('nproc', '?')} cores; "
        "load average before each build in the table (the machine was shared).",
        "",
        "| build | build-features s | dbt models s | dbt tests s | nodes | load |",
        "|---|---|---|---|---|---|",
    ]
    for name in builds:
        b, s = r[name], _summary(r[name])
        lines.append(
            f"| {name} | {b['seconds']} | {s['models_s']} | {s['tests_s']} | {s['nodes']} "
            f"| {b['load_before']} |"
        )
    lines += ["", "Slowest nodes (seconds): next day vs full refresh", ""]
    lines += ["| node | next day | full refresh |", "|---|---|---|"]
    nxt, full = r["next_day"]["nodes"], r["full_refresh"]["nodes"]
    for node in sorted(nxt, key=lambda k: -nxt[k])[:20]:
        lines.append(f"| {node} | {nxt[node]} | {full.get(node, '')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1m", choices=["1m", "10m"])
    args = parser.parse_args()
    spec = SCALES[args.scale]
    with tempfile.TemporaryDirectory(prefix="affinity-dbt-probe-") as tmp:
        scratch = Path(tmp)
        home = scratch / "home"
        env = {**os.environ, "AFFINITY_HOME": str(home)}
        full, daily, last = scratch / "full", scratch / "daily", scratch / "last"
        generate = ["generate", "--out", str(full), "--seed", "42"]
        generate += ["--customers", str(spec["customers"]), "--products", str(spec["products"])]
        _run([*generate, "--days", str(spec["days"] + 1)], env)
        last_day = split_last_day(full, daily, last)
        first_day = (last_day - timedelta(days=1)).isoformat()
        print(f"shop ready; first day {first_day}", flush=True)
        ingest = {"first_day": _run(["ingest", str(daily)], env)}
        result = {"first_day": _build(home, first_day, env)}
        print(json.dumps(_summary(result["first_day"])), flush=True)
        for part in last.rglob("*.parquet"):
            shutil.copyfile(part, daily / part.relative_to(last))
        ingest["next_day"] = _run(["ingest", str(daily)], env)
        result["next_day"] = _build(home, last_day.isoformat(), env)
        print(json.dumps(_summary(result["next_day"])), flush=True)
        result["full_refresh"] = _build(home, last_day.isoformat(), env, full_refresh=True)
        print(json.dumps(_summary(result["full_refresh"])), flush=True)
    result = {
        "benchmark": "dbt_incremental",
        "scale": args.scale,
        "inputs": spec,
        "ingest_seconds": {k: round(v, 2) for k, v in ingest.items()},
        **result,
        "machine": machine(),
        "measured_at": now_utc(),
    }
    write_results(f"dbt_incremental_{args.scale}", result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
