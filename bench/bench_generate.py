"""Benchmark the synthetic shop generator at a fixed scale.

Usage::

    python bench/bench_generate.py --scale 1m|10m [--out-dir DIR] [--seed S]

Generates a shop into a temporary folder (or ``--out-dir``), measures wall time and peak
RSS, and writes ``bench/results/generate_<scale>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

from ml.datagen import generate_shop  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# ~0.23 events per customer-day: these sizes give about 1M and 10M events.
SCALES = {
    "1m": {"customers": 50_000, "products": 5_000, "days": 90},
    "10m": {"customers": 500_000, "products": 50_000, "days": 90},
    "100m": {"customers": 5_000_000, "products": 200_000, "days": 90},
}


def peak_rss_mb() -> dict[str, float]:
    """Peak resident set size of this process and of its (waited-for) children, in MB."""
    to_mb = 1 / 1024 if sys.platform != "darwin" else 1 / 1024**2  # Linux reports KiB
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * to_mb
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * to_mb
    return {"self": round(own, 1), "children": round(children, 1)}


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "nproc": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gb": round(pages / 1024**3, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "numpy": np.__version__,
        "polars_threads": pl.thread_pool_size(),
    }


def run(scale: str, out_dir: Path | None, seed: int) -> dict[str, object]:
    """Generate one shop and return the measured figures."""
    args = {**SCALES[scale], "seed": seed}
    with tempfile.TemporaryDirectory(prefix=f"affinity_bench_{scale}_") as scratch:
        target = out_dir or Path(scratch)
        started = time.perf_counter()
        counts = generate_shop(target, **args)
        wall = time.perf_counter() - started
        size = sum(p.stat().st_size for p in target.glob("*.parquet"))
    return {
        "benchmark": "generate",
        "scale": scale,
        "args": args,
        "wall_seconds": round(wall, 2),
        "events_per_second": round(counts["events"] / wall),
        "rows_per_second": round(sum(counts.values()) / wall),
        "events_per_customer_day": round(counts["events"] / (args["customers"] * args["days"]), 3),
        "peak_rss_mb": peak_rss_mb(),
        "output_mb": round(size / 1024**2, 1),
        "rows": counts,
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def markdown(result: dict[str, object]) -> str:
    """A short human-readable summary of one result."""
    rows = "\n".join(f"| {name} | {n:,} |" for name, n in result["rows"].items())
    m = result["machine"]
    return f"""# generate_shop at scale {result["scale"]}

Arguments: `{result["args"]}`

| figure | value |
|---|---|
| wall time | {result["wall_seconds"]} s |
| events/s | {result["events_per_second"]:,} |
| all rows/s | {result["rows_per_second"]:,} |
| events per customer-day | {result["events_per_customer_day"]} |
| peak RSS (self / children) | {result["peak_rss_mb"]["self"]} / {result["peak_rss_mb"]["children"]} MB |
| Parquet written | {result["output_mb"]} MB |

| entity | rows |
|---|---|
{rows}

Machine: {m["nproc"]} CPUs, {m["ram_gb"]} GB RAM, Python {m["python"]}, polars {m["polars"]},
numpy {m["numpy"]} ({m["platform"]}); measured {result["measured_at"]}.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), required=True)
    parser.add_argument("--out-dir", type=Path, help="keep the shop here (default: temp dir)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    result = run(args.scale, args.out_dir, args.seed)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = RESULTS_DIR / f"generate_{args.scale}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
