"""Benchmark the whole DAG run, stage by stage, and the incremental next-day run.

Usage::

    python bench/bench_pipeline.py --scale 1m|10m|100m|online_retail [--incremental] [--keep DIR] \
        [--label NAME]

1. Prepares the input (``affinity generate`` for ``1m`` / ``10m``, the importer for the real
   Online Retail II file) in a subprocess, timed with its peak RSS.
2. Runs ``affinity run --data <landing>`` (the real ``affinity_daily`` DAG through
   ``airflow dags test``) in a fresh ``AFFINITY_HOME``: wall time and peak RSS of the
   whole run by the kernel's accounting (``wait4``), plus a 4 Hz sampler of the resident
   memory of the process tree, so every Airflow task gets its own sampled peak.
3. Reads each task's start and end from Airflow's metadata database and the stage
   figures (rows, seconds) from ``ml.stage_runs``, and sums them into the issue's stages:
   ingest, dbt features, train, score, similar, segments, campaigns, dbt outputs, publish.
4. ``--incremental`` (generated shops only): the shop is generated with one more day;
   the first run sees every day but the last, then the last day's rows are landed as new
   files and the next day's run is timed on the same home (the nightly incremental run),
   and compared with a full rebuild of the same data in a fresh home.

Writes ``bench/results/pipeline_<scale>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, timedelta
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._common import machine, now_utc, write_results  # noqa: E402
from bench.bench_generate import SCALES  # noqa: E402
from ml.datagen.nightly import split_last_day  # noqa: E402
from ml.pipeline import stage_names  # noqa: E402

STAGES = tuple(stage_names())

AFFINITY = str(Path(sys.executable).with_name("affinity"))
ONLINE_RETAIL = (
    REPO_ROOT.parent / "shared" / "data" / "online_retail_ii" / "online_retail_II_2009-2010.csv.gz"
)
# ------------------------------------------------------------------------------ measuring


class TreeSampler(threading.Thread):
    """Sample the resident memory of a process and all its descendants, 4 times a second."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (unix time, tree RSS in MB)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                rss = 0
                for proc in procs:
                    with contextlib.suppress(psutil.Error):
                        rss += proc.memory_info().rss
                self.samples.append((time.time(), rss / 1024**2))
            except psutil.Error:
                return
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def peak_between(self, start: float, end: float) -> float | None:
        inside = [mb for t, mb in self.samples if start <= t <= end]
        return round(max(inside), 1) if inside else None


def run_measured(args: list[str], env: dict[str, str], log_path: Path, check: bool = True) -> dict:
    """Run a command; return its wall time, kernel peak RSS, exit code and the RSS sampler
    (``check``: raise, with the log's tail, when it fails)."""
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
    wall = time.perf_counter() - started
    if check and proc.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}); log {log_path}:\n{tail}")
    return {
        "exit_code": proc.returncode,
        "wall_seconds": round(wall, 2),
        # ru_maxrss of the waited-for child covers its own waited-for children (KiB).
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "sampled_peak_tree_rss_mb": round(max((mb for _, mb in sampler.samples), default=0), 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "sampler": sampler,
    }


# ------------------------------------------------------------------------------ inputs


def generate(scale: str, landing: Path, env: dict[str, str], logs: Path, extra_day: bool) -> dict:
    spec = dict(SCALES[scale])
    days = spec["days"] + (1 if extra_day else 0)
    args = [AFFINITY, "generate", "--out", str(landing), "--seed", "42"]
    args += ["--customers", str(spec["customers"]), "--products", str(spec["products"])]
    args += ["--days", str(days)]
    figures = run_measured(args, env, logs / "generate.log")
    figures.pop("sampler")
    return figures


def import_online_retail(landing: Path, env: dict[str, str], logs: Path) -> dict:
    args = [AFFINITY, "import-online-retail", str(ONLINE_RETAIL), "--out", str(landing)]
    figures = run_measured(args, env, logs / "import.log")
    figures.pop("sampler")
    return figures


# ------------------------------------------------------------------------------ one DAG run


def task_times(home: Path, logical_date: str) -> list[dict]:
    """Every task instance of the ``affinity_daily`` run for ``logical_date``, in start order."""
    db = sqlite3.connect(home / "airflow" / "airflow.db")
    rows = db.execute(
        "select ti.task_id, ti.start_date, ti.end_date, ti.state from task_instance ti "
        "join dag_run dr on dr.dag_id = ti.dag_id and dr.run_id = ti.run_id "
        "where ti.dag_id = 'affinity_daily' and date(dr.logical_date) = ? "
        "order by ti.start_date",
        [logical_date],
    ).fetchall()
    db.close()

    def unix(text: str) -> float:
        from datetime import datetime

        # Airflow stores naive UTC in SQLite.
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()

    return [
        {"task": t, "start": unix(s), "end": unix(e), "state": state}
        for t, s, e, state in rows
        if s and e
    ]


def stage_runs(home: Path, logical_date: str) -> dict[str, dict]:
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select stage, rows, seconds, detail from ml.stage_runs where logical_date = ?::date",
            [logical_date],
        ).fetchall()
    return {
        stage: {"rows": r, "seconds": round(s, 2), "detail": json.loads(d or "{}")}
        for stage, r, s, d in rows
    }


def night_decisions(recorded: dict[str, dict]) -> dict:
    """What the night decided: trained or kept the champion, whom it scored, and why."""
    train = recorded.get("train", {}).get("detail", {})
    scoring = recorded.get("recommendations", {}).get("detail", {})
    return {
        "train_decision": train.get("decision"),
        "train_reason": train.get("reason"),
        "scoring_plan": scoring.get("plan"),
        "scored_customers": scoring.get("scored_customers"),
        "customers": scoring.get("customers"),
        "scoring_seconds": scoring.get("seconds"),
    }


def stage_of(task_id: str) -> str:
    """The declared stage (ml.pipeline.DAILY) a task belongs to: a dbt group's tasks too."""
    return task_id.split(".", 1)[0]


def dag_run(landing: Path, home: Path, logs: Path, name: str, as_of: str | None) -> dict:
    env = {**os.environ, "AFFINITY_HOME": str(home)}
    args = [AFFINITY, "run", "--data", str(landing)] + (["--as-of", as_of] if as_of else [])
    measured = run_measured(args, env, logs / f"{name}.log")
    sampler = measured.pop("sampler")
    logical_date = as_of or _logged_date(logs / f"{name}.log")
    tasks = task_times(home, logical_date)
    stages: dict[str, dict] = {}
    for task in tasks:
        stage = stages.setdefault(
            stage_of(task["task"]),
            {"start": task["start"], "end": task["end"], "task_seconds": 0.0, "tasks": 0},
        )
        stage["start"] = min(stage["start"], task["start"])
        stage["end"] = max(stage["end"], task["end"])
        stage["task_seconds"] += task["end"] - task["start"]
        stage["tasks"] += 1
    recorded = stage_runs(home, logical_date)
    per_stage = {}
    for stage, figures in stages.items():
        per_stage[stage] = {
            "wall_seconds": round(figures["end"] - figures["start"], 2),
            "task_seconds": round(figures["task_seconds"], 2),
            "tasks": figures["tasks"],
            "sampled_peak_rss_mb": sampler.peak_between(figures["start"], figures["end"]),
        }
    # Every declared stage records its own work; the score stage's parts too.
    for stage in (*STAGES, *SCORE_PARTS):
        if stage in recorded and (stage in per_stage or stage in SCORE_PARTS):
            per_stage.setdefault(stage, {}).update(
                {"work_seconds": recorded[stage]["seconds"], "rows": recorded[stage]["rows"]}
            )
    dag_seconds = (max(t["end"] for t in tasks) - min(t["start"] for t in tasks)) if tasks else 0
    slowest = sorted(tasks, key=lambda t: t["start"] - t["end"])[:8]
    return {
        **measured,
        "decisions": night_decisions(recorded),
        "logical_date": logical_date,
        "dag_seconds": round(dag_seconds, 2),
        "task_count": len(tasks),
        "stages": per_stage,
        "slowest_tasks": {t["task"]: round(t["end"] - t["start"], 2) for t in slowest},
    }


def _logged_date(log_path: Path) -> str:
    for line in log_path.read_text().splitlines():
        if line.startswith("Affinity run for "):
            return line.split()[3]
    raise RuntimeError(f"no 'Affinity run for <date>' line in {log_path}")


# ------------------------------------------------------------------------------ report

# The score stage's parts, recorded by their own steps in ml.stage_runs.
SCORE_PARTS = ("recommendations", "similar", "segments")
STAGE_ORDER = ["generate", *STAGES[:4], *SCORE_PARTS, *STAGES[4:]]


def stage_table(run: dict, prepare: dict | None) -> list[str]:
    lines = [
        "| stage | wall s | work s | tasks | sampled peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    if prepare:
        lines.append(
            f"| generate / import | {prepare['wall_seconds']} | | 1 | "
            f"{prepare['peak_rss_mb']} (kernel) |"
        )
    for stage in STAGE_ORDER[1:]:
        f = run["stages"].get(stage)
        if not f:
            continue
        lines.append(
            f"| {stage} | {f.get('wall_seconds', '')} | {f.get('work_seconds', '')} | "
            f"{f.get('tasks', '')} | {f.get('sampled_peak_rss_mb', '')} |"
        )
    lines.append(
        f"| **whole `affinity run`** | **{run['wall_seconds']}** (DAG {run['dag_seconds']}) | | "
        f"{run['task_count']} | **{run['peak_rss_mb']}** (kernel) |"
    )
    decided = run.get("decisions") or {}
    if decided.get("train_decision"):
        lines += [
            "",
            f"Train: **{decided['train_decision']}** ({decided.get('train_reason') or ''}). "
            f"Scored {decided.get('scored_customers')} of {decided.get('customers')} customers "
            f"({decided.get('scoring_plan')}).",
        ]
    return lines


def markdown(r: dict) -> str:
    lines = [
        f"# Pipeline benchmark: {r['scale']}",
        "",
        f"Measured {r['measured_at']} on {r['machine']['nproc']} CPUs, "
        f"{r['machine']['ram_gb']} GB RAM; load average before the run "
        f"{r['load_average_before']}.",
        "",
        f"Input: {r['input_rows']:,} landing rows ({r['events']:,} events).",
        "",
        "## Full run (fresh home)",
        "",
        *stage_table(r["full_run"], r["prepare"]),
        "",
        "`wall s`: first task start to last task end of the stage (dbt stages run many "
        "tasks); `work s`: the stage's own timer (without Airflow's task start-up); "
        "`sampled peak RSS`: highest resident memory of the process tree while the stage ran.",
    ]
    if "incremental" in r:
        inc = r["incremental"]
        lines += [
            "",
            f"## Next day (incremental): +{inc['new_rows']:,} landing rows "
            f"({inc['new_share']:.2%} of the data)",
            "",
            *stage_table(inc["next_day_run"], None),
            "",
            "## Full rebuild of the same data (fresh home)",
            "",
            *stage_table(inc["full_rebuild"], None),
            "",
            f"**Incremental / full rebuild: {inc['ratio']:.1%}** of the wall time "
            "(target: at most 10%).",
        ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ main


def count_rows(landing: Path) -> tuple[int, int]:
    import polars as pl

    total, events = 0, 0
    for path in landing.rglob("*.parquet"):
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
        total += rows
        if path.stem == "events" or path.parent.name == "events":
            events += rows
    return total, events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=[*SCALES, "online_retail"], required=True)
    parser.add_argument("--incremental", action="store_true", help="also time the next day")
    parser.add_argument("--keep", type=Path, help="keep the homes and landings here")
    parser.add_argument("--label", help="result files pipeline_<scale>_<label> (default: none)")
    args = parser.parse_args()
    if args.incremental and args.scale == "online_retail":
        parser.error("--incremental needs a generated shop (--scale 1m or 10m)")

    scratch = args.keep or Path(tempfile.mkdtemp(prefix=f"affinity_bench_pipeline_{args.scale}_"))
    scratch.mkdir(parents=True, exist_ok=True)
    logs = scratch / "logs"
    logs.mkdir(exist_ok=True)
    env = dict(os.environ)
    load_before = os.getloadavg()[0]
    try:
        full_landing = scratch / "landing_full"
        if args.scale == "online_retail":
            prepare = import_online_retail(full_landing, env, logs)
            first_landing, as_of = full_landing, None
        else:
            prepare = generate(args.scale, full_landing, env, logs, args.incremental)
            first_landing, as_of = full_landing, None
            if args.incremental:
                first_landing = scratch / "landing_daily"
                last_day_dir = scratch / "landing_last_day"
                last_day = split_last_day(full_landing, first_landing, last_day_dir).isoformat()
                as_of = (date.fromisoformat(last_day) - timedelta(days=1)).isoformat()
        input_rows, events = count_rows(first_landing)
        print(f"input ready: {input_rows:,} rows; running the DAG", flush=True)
        full_run = dag_run(first_landing, scratch / "home", logs, "full_run", as_of)
        print(json.dumps(full_run, indent=1), flush=True)
        result = {
            "benchmark": "pipeline",
            "scale": args.scale,
            "inputs": {"scale": args.scale, **SCALES.get(args.scale, {"file": str(ONLINE_RETAIL)})},
            "input_rows": input_rows,
            "events": events,
            "prepare": prepare,
            "full_run": full_run,
        }
        if args.incremental:
            new_rows, _ = count_rows(last_day_dir)
            for part in last_day_dir.rglob("*.parquet"):
                target = first_landing / part.relative_to(last_day_dir)
                shutil.copyfile(part, target)
            next_day = dag_run(first_landing, scratch / "home", logs, "next_day", last_day)
            print(json.dumps(next_day, indent=1), flush=True)
            rebuild = dag_run(
                first_landing, scratch / "home_rebuild", logs, "full_rebuild", last_day
            )
            print(json.dumps(rebuild, indent=1), flush=True)
            result["incremental"] = {
                "new_rows": new_rows,
                "new_share": new_rows / (input_rows + new_rows),
                "next_day_run": next_day,
                "full_rebuild": rebuild,
                "ratio": next_day["wall_seconds"] / rebuild["wall_seconds"],
            }
        import duckdb
        import implicit
        import polars

        result |= {
            "load_average_before": round(load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2),
            "machine": machine(
                duckdb=duckdb.__version__, polars=polars.__version__, implicit=implicit.__version__
            ),
            "measured_at": now_utc(),
        }
        name = f"pipeline_{args.scale}" + (f"_{args.label}" if args.label else "")
        path = write_results(name, result, markdown(result))
        print(markdown(result))
        print(f"wrote {path}")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
