"""Benchmark the train stage alone, on a generated shop of any scale (1m, 10m, 100m).

Usage::

    python bench/bench_train.py --scale 1m|10m|100m [--landing DIR] [--keep DIR] [--label NAME]

Issue 20's 100m shop did not get past training in the whole DAG, and the DAG's ingest
needs ~23 GB of DuckDB spill there, more than this machine's free disk holds next to a
second attempt. This benchmark sizes training by itself:

1. Generates the shop (``affinity generate``, seed 42), or reads ``--landing``.
2. Builds the tables training reads, in a fresh warehouse, straight from the landing
   Parquet with the rules of the dbt models (:data:`BUILD_SQL`): ``marts.dim_products``
   (merchandise and categories) and ``marts.interaction_events`` (purchases from order
   lines with a positive quantity, views and add-to-carts from events, rows with a customer and
   merchandise only). Quarantine, the netting of cancelled and returned lines, and erasure
   are skipped, so the table is close to the DAG's but not equal (100m: 90.16M events here,
   89.7M through the ingest and dbt). No segments table: training tags the run "segments
   unavailable", as it does on a warehouse without them.
3. Runs ``affinity train`` in a child process: wall time and peak RSS by the kernel's
   accounting (``wait4``), the process tree's RSS sampled 4 times a second, and the
   timeline of the training log (load, windows, search, evaluated fit, serving re-fit,
   registration) with the sampled peak of each phase.

Writes ``bench/results/train_<scale>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._common import machine, now_utc, write_results  # noqa: E402
from bench.bench_generate import SCALES  # noqa: E402
from bench.bench_pipeline import AFFINITY, generate, run_measured  # noqa: E402

# The dbt models' rules (dim_products.sql, interaction_events.sql) over the landing files.
BUILD_SQL = """
CREATE SCHEMA marts;
CREATE TABLE marts.dim_products AS
SELECT product_id, category, coalesce(is_product, true) AS is_product
FROM read_parquet('{landing}/products.parquet');
CREATE TABLE marts.interaction_events AS
WITH products AS (SELECT product_id FROM marts.dim_products WHERE is_product),
purchases AS (
    SELECT o.customer_id, l.product_id, o.ordered_at AS occurred_at,
           'purchase' AS event_kind, l.quantity
    FROM read_parquet('{landing}/order_lines.parquet') AS l
    JOIN read_parquet('{landing}/orders.parquet') AS o USING (order_id)
    JOIN products USING (product_id)
    WHERE o.customer_id IS NOT NULL AND l.quantity > 0
),
browsing AS (
    SELECT e.customer_id, e.product_id, e.occurred_at, e.event_type AS event_kind,
           1 AS quantity
    FROM read_parquet('{landing}/events.parquet') AS e
    JOIN products USING (product_id)
    WHERE e.customer_id IS NOT NULL AND e.event_type IN ('view', 'add_to_cart')
)
SELECT customer_id, product_id, occurred_at, event_kind, CAST(quantity AS INTEGER) AS quantity
FROM (SELECT * FROM purchases UNION ALL SELECT * FROM browsing);
"""

# Log lines that end each phase of training, in order (the first match after the last).
PHASE_ENDS = (
    ("start-up and load events", r"ml\.train\.trainer: loaded \d+ events"),
    ("choose windows", r"ml\.train\.windows: test window"),
    ("recipe search", r"ml\.train\.tuning: search done"),
    ("evaluated fits and gate", r"ml\.train\.gate: gate: "),
    ("serving re-fit", r"ml\.train\.models: \w+ fitted"),
    ("log and register", r"ml\.train\.trainer: training on data up to .* done in"),
)
LOG_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d) ")  # `affinity` logs the time of day


def build_warehouse(landing: Path, warehouse: Path) -> dict:
    """Create the tables training reads; return their row counts and the seconds taken."""
    started = time.perf_counter()
    with duckdb.connect(str(warehouse)) as con:
        con.execute(BUILD_SQL.format(landing=landing.as_posix()))
        events = con.sql("SELECT count(*) FROM marts.interaction_events").fetchall()[0][0]
        products = con.sql("SELECT count(*) FROM marts.dim_products").fetchall()[0][0]
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "interaction_events": events,
        "products": products,
        "warehouse_mb": round(warehouse.stat().st_size / 1024**2, 1),
    }


def log_lines(log_path: Path, started: float) -> list[tuple[float, str]]:
    """(unix time, line) of every line of the training log that starts with a time of day
    (``started``: when the run began; a time earlier than the last one is the next day)."""
    lines, day, last = (
        [],
        datetime.fromtimestamp(started).replace(hour=0, minute=0, second=0, microsecond=0),
        -1.0,
    )
    for line in log_path.read_text(errors="replace").splitlines():
        match = LOG_TIME.match(line)
        if not match:
            continue
        hours, minutes, seconds = (int(part) for part in match.groups())
        stamp = (day + timedelta(hours=hours, minutes=minutes, seconds=seconds)).timestamp()
        if stamp < last - 3600:  # past midnight
            day += timedelta(days=1)
            stamp += 86_400
        last = stamp
        lines.append((stamp, line))
    return lines


def phase_figures(lines: list[tuple[float, str]], sampler, start: float) -> list[dict]:
    """Each phase's seconds and sampled peak tree RSS, cut at :data:`PHASE_ENDS`."""
    phases, index = [], 0
    for name, pattern in PHASE_ENDS:
        found = next((i for i in range(index, len(lines)) if re.search(pattern, lines[i][1])), None)
        if found is None:
            break  # the run stopped before this phase ended
        end = lines[found][0]
        phases.append(
            {
                "phase": name,
                "seconds": round(end - start, 1),
                "sampled_peak_tree_rss_mb": sampler.peak_between(start, end),
            }
        )
        start, index = end, found + 1
    return phases


def run(scale: str, landing: Path | None, keep: Path | None) -> dict:
    scratch = keep or Path(tempfile.mkdtemp(prefix=f"affinity_bench_train_{scale}_"))
    scratch.mkdir(parents=True, exist_ok=True)
    logs = scratch / "logs"
    logs.mkdir(exist_ok=True)
    home = scratch / "home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    env = {**os.environ, "AFFINITY_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    generated = None
    try:
        if landing is None:
            landing = scratch / "landing"
            generated = generate(scale, landing, env, logs, extra_day=False)
        built = build_warehouse(landing, home / "warehouse.duckdb")
        print(f"warehouse built: {built}", flush=True)
        log_path = logs / "train.log"
        started = time.time()
        # check=False: an out-of-memory kill is a result at this scale.
        figures = run_measured([AFFINITY, "train"], env, log_path, check=False)
        sampler = figures.pop("sampler")
        lines = log_lines(log_path, started)
        phases = phase_figures(lines, sampler, started)
        outcome = [line for _, line in lines if re.search(PHASE_ENDS[-1][1], line)]
    finally:
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return {
        "benchmark": "train",
        "scale": scale,
        "spec": SCALES[scale],
        "generate": generated,
        "warehouse": built,
        "train": figures,
        "phases": phases,
        "outcome": outcome[-1].split(": ", 1)[-1] if outcome else None,
        "machine": machine(duckdb=duckdb.__version__),
        "measured_at": now_utc(),
    }


def markdown(r: dict) -> str:
    rows = "\n".join(
        f"| {p['phase']} | {p['seconds']} | {p['sampled_peak_tree_rss_mb']} |" for p in r["phases"]
    )
    w, t = r["warehouse"], r["train"]
    return (
        f"# Train benchmark: {r['scale']}\n\n"
        f"Measured {r['measured_at']} on {r['machine']['nproc']} CPUs, "
        f"{r['machine']['ram_gb']} GB RAM.\n\n"
        f"Shop: {r['spec']}. `marts.interaction_events` built from the landing Parquet by "
        f"`BUILD_SQL` (no ingest, no dbt): {w['interaction_events']:,} events, "
        f"{w['products']:,} products, {w['seconds']} s, {w['warehouse_mb']} MB.\n\n"
        f"`affinity train` (exit code {t['exit_code']}): **{t['wall_seconds']} s**, kernel peak RSS "
        f"**{t['peak_rss_mb']} MB**, sampled tree peak {t['sampled_peak_tree_rss_mb']} MB, "
        f"{t['cpu_seconds']} CPU s.\n\n"
        f"Outcome: {r['outcome']}\n\n"
        "| phase (from the log) | seconds | sampled peak tree RSS MB |\n|---|---|---|\n"
        f"{rows}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), required=True)
    parser.add_argument("--landing", type=Path, help="an already generated landing folder")
    parser.add_argument("--keep", type=Path, help="keep the home, landing and logs here")
    parser.add_argument("--label", help="result files train_<scale>_<label> (default: none)")
    args = parser.parse_args(argv)
    result = run(args.scale, args.landing, args.keep)
    name = f"train_{args.scale}" + (f"_{args.label}" if args.label else "")
    path = write_results(name, result, markdown(result))
    print(markdown(result))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
