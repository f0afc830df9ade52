"""Benchmark the ingest on both engines: the same generated shop (with defects) loaded by
DuckDB and by Spark SQL (local mode), with the per-file figures compared.

Usage::

    python bench/bench_ingest_spark.py --scale 1m [--defect-rate 0.01]

Needs the Spark extra (``make setup-spark``). Writes
``bench/results/ingest_spark_<scale>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._common import machine, now_utc, peak_rss_mb, write_results  # noqa: E402
from bench.bench_generate import SCALES  # noqa: E402

NOW = datetime(2026, 12, 31)


def _figures(report) -> list[tuple]:
    return [
        (f.source_file, f.received_rows, f.loaded_rows, f.quarantined_rows, f.rules)
        for f in report.files
    ]


def run(scale: str, defect_rate: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"affinity_bench_ingest_spark_{scale}_") as scratch:
        root = Path(scratch)
        os.environ["AFFINITY_HOME"] = str(root / "home")
        from ml.datagen import generate_shop
        from ml.ingest import ingest
        from ml.spark.ingest import ingest_on_spark
        from ml.spark.session import spark_session, stop_spark_session

        landing = root / "landing"
        generate_shop(landing, seed=42, defect_rate=defect_rate, **SCALES[scale])
        started = time.perf_counter()
        duck = ingest(landing, warehouse=root / "duck.duckdb", now=NOW)
        duck_seconds = time.perf_counter() - started
        started = time.perf_counter()
        spark_session()
        session_seconds = time.perf_counter() - started
        started = time.perf_counter()
        spark = ingest_on_spark(landing, now=NOW)
        spark_seconds = time.perf_counter() - started
        stop_spark_session()
    same = _figures(spark) == _figures(duck)
    return {
        "benchmark": "ingest_spark",
        "scale": scale,
        "defect_rate": defect_rate,
        "received_rows": duck.received_rows,
        "quarantined_rows": duck.quarantined_rows,
        "duckdb_seconds": round(duck_seconds, 2),
        "spark_session_start_seconds": round(session_seconds, 2),
        "spark_seconds": round(spark_seconds, 2),
        "spark_master": os.environ.get("AFFINITY_SPARK_MASTER", "local[*]"),
        "same_figures_per_file": same,
        "files": len(duck.files),
        "peak_rss_mb": peak_rss_mb(),
        "machine": machine(duckdb=duckdb.__version__),
        "measured_at": now_utc(),
    }


def markdown(r: dict) -> str:
    return f"""# ingest on DuckDB and on Spark, scale {r["scale"]} (defect rate {r["defect_rate"]})

| figure | value |
|---|---|
| received rows ({r["files"]} files) | {r["received_rows"]:,} |
| quarantined rows | {r["quarantined_rows"]:,} |
| DuckDB ingest | {r["duckdb_seconds"]} s |
| Spark session start (JVM) | {r["spark_session_start_seconds"]} s |
| Spark ingest ({r["spark_master"]}, session running) | {r["spark_seconds"]} s |
| same received / loaded / quarantined / rules per file | {r["same_figures_per_file"]} |

Spark validates each file in Spark SQL; the batch (transaction, manifest, re-count) and
the load into the warehouse stay DuckDB's, then `raw` is written to the lake.

Machine: {r["machine"]["nproc"]} CPUs (shared), {r["machine"]["ram_gb"]} GB RAM, duckdb {r["machine"]["duckdb"]}; measured {r["measured_at"]}.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), required=True)
    parser.add_argument("--defect-rate", type=float, default=0.01)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = run(args.scale, args.defect_rate)
    path = write_results(f"ingest_spark_{args.scale}", result, markdown(result))
    print(markdown(result))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
