"""Benchmark the ingest: a generated shop (1m / 10m events) or the real Online Retail II file.

Usage::

    python bench/bench_ingest.py --scale 1m|10m|100m|online_retail [--landing DIR]

Generates (or imports) the input into a temporary folder, ingests it into a fresh
warehouse, then ingests it again (the no-op re-run), and writes (``--landing``: ingests that
folder, already generated for ``--scale``, instead). Records the peak size of DuckDB's
spill folder (``warehouse.duckdb.tmp``), sampled 4 times a second, and
``bench/results/ingest_<scale>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._common import machine, now_utc, peak_rss_mb, write_results  # noqa: E402
from bench.bench_generate import SCALES  # noqa: E402

ONLINE_RETAIL = (
    REPO_ROOT.parent / "shared" / "data" / "online_retail_ii" / "online_retail_II_2009-2010.csv.gz"
)


def prepare(scale: str, landing: Path) -> dict:
    if scale == "online_retail":
        from ml.ingest.importers.online_retail import import_online_retail

        return import_online_retail(ONLINE_RETAIL, landing)
    from ml.datagen import generate_shop

    return generate_shop(landing, seed=42, **SCALES[scale])


class SpillSampler(threading.Thread):
    """The largest size of a folder (DuckDB's spill files), sampled 4 times a second."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True)
        self.folder, self.peak_bytes, self._halt = folder, 0, threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.25):
            with contextlib.suppress(FileNotFoundError):
                size = sum(f.stat().st_size for f in self.folder.iterdir())
                self.peak_bytes = max(self.peak_bytes, size)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return round(self.peak_bytes / 1024**2, 1)


def run(scale: str, landing: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"affinity_bench_ingest_{scale}_") as scratch:
        home = Path(scratch) / "home"
        os.environ["AFFINITY_HOME"] = str(home)
        from ml.ingest import ingest

        if landing is None:
            landing = Path(scratch) / "landing"
            prepare(scale, landing)
        spill = SpillSampler(home / "warehouse.duckdb.tmp")
        spill.start()
        started = time.perf_counter()
        report = ingest(landing)
        first = time.perf_counter() - started
        spill_mb = spill.stop()
        started = time.perf_counter()
        again = ingest(landing)
        noop = time.perf_counter() - started
        assert all(f.skipped for f in again.files)
        size_mb = (Path(scratch) / "home" / "warehouse.duckdb").stat().st_size / 1024**2
    return {
        "benchmark": "ingest",
        "scale": scale,
        "wall_seconds": round(first, 2),
        "noop_rerun_seconds": round(noop, 2),
        "received_rows": report.received_rows,
        "loaded_rows": report.loaded_rows,
        "quarantined_rows": report.quarantined_rows,
        "rows_per_second": round(report.received_rows / first),
        "per_file": {
            f.source_file: {"rows": f.received_rows, "quarantined": f.quarantined_rows}
            for f in report.files
        },
        "warehouse_mb": round(size_mb, 1),
        "peak_spill_mb": spill_mb,
        "peak_rss_mb": peak_rss_mb(),
        "machine": machine(duckdb=duckdb.__version__),
        "measured_at": now_utc(),
    }


def markdown(r: dict) -> str:
    files = "\n".join(
        f"| {name} | {v['rows']:,} | {v['quarantined']:,} |" for name, v in r["per_file"].items()
    )
    return f"""# ingest at scale {r["scale"]}

| figure | value |
|---|---|
| wall time (first load) | {r["wall_seconds"]} s |
| rows/s | {r["rows_per_second"]:,} |
| re-run of the same files (no-op) | {r["noop_rerun_seconds"]} s |
| received = loaded + quarantined | {r["received_rows"]:,} = {r["loaded_rows"]:,} + {r["quarantined_rows"]:,} |
| warehouse size | {r["warehouse_mb"]} MB |
| peak RSS | {r["peak_rss_mb"]["self"]} MB |
| peak DuckDB spill (temp folder) | {r.get("peak_spill_mb", "not measured")} MB |

| file | rows | quarantined |
|---|---|---|
{files}

Machine: {r["machine"]["nproc"]} CPUs, {r["machine"]["ram_gb"]} GB RAM, duckdb {r["machine"]["duckdb"]}; measured {r["measured_at"]}.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=[*sorted(SCALES), "online_retail"], required=True)
    parser.add_argument("--landing", type=Path, help="an already generated landing folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = run(args.scale, args.landing)
    path = write_results(f"ingest_{args.scale}", result, markdown(result))
    print(markdown(result))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
