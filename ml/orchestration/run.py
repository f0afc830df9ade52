"""``affinity run``: prepare the input, run the daily DAG for one date, summarize the run."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from ml.config import paths
from ml.dates import utcnow
from ml.orchestration.dag_watch import DagWatch
from ml.orchestration.progress import NAME_WIDTH, ProgressPrinter, duration
from ml.orchestration.run_log import capture_run_output, run_log_path
from ml.pipeline import DAILY
from ml.warehouse import connect

log = logging.getLogger(__name__)


def run_pipeline(
    data: Path | str | None = None,
    as_of: str | None = None,
    *,
    customers: int = 2_000,
    products: int = 500,
    days: int = 90,
    seed: int = 42,
    retrain: bool = True,
    top_n: int = 20,
    campaign_uplift: float | None = None,
    replay_campaigns: bool | None = None,
    verbose: bool = False,
    replace: bool = False,
    command: str = "affinity run{extra}",
    out: TextIO | None = None,
) -> str:
    """Run the DAG end to end for one logical date and return a short human summary.

    A generated shop (``data`` None) includes campaigns that ended before the run date
    with a known effect (``campaign_uplift``, default
    :data:`~ml.orchestration.landing.GENERATED_CAMPAIGN_UPLIFT`; truth in
    ``_campaign_truth.parquet``), and ``replay_campaigns`` defaults to on for it (off for
    real data: see :mod:`ml.campaigns.replay`), so the first run already publishes
    ``campaign_results`` and ``campaign_insights``.

    Quiet unless ``verbose``: Airflow's, dbt's and Cosmos's output goes to a log file under
    ``$AFFINITY_HOME/logs/`` (named in the summary) and ``out`` (stdout) shows one line per
    stage, with a live status line on a terminal. ``verbose`` shows everything too.

    A home holds one data set (:mod:`ml.orchestration.datasets`): a run on another one is
    refused with the commands to use (``command``: how this run was started, ``{extra}``
    where ``--replace`` would go), unless ``replace``.

    Holds the home's run lock (:mod:`ml.locking`) for the whole run: a
    second run started meanwhile is refused with a message naming this one (or waits, with
    ``AFFINITY_RUN_LOCK_TIMEOUT``), so two runs never write the same warehouse.
    """
    from ml.engine import record_engine
    from ml.locking import lock_timeout_from_env, run_lock
    from ml.orchestration.datasets import check_dataset
    from ml.orchestration.landing import landing_folder

    out = out or sys.stdout
    home = paths().ensure()
    started = time.perf_counter()
    with run_lock(home.home, timeout=lock_timeout_from_env()) as lock:
        engine = record_engine(home=home.home)  # a home keeps the engine of its first run
        log.debug("engine: %s", engine)
        landing = landing_folder(data)
        replaced = check_dataset(home, landing, replace=replace, command=command, now=utcnow())
        log_path = run_log_path(home.home / "logs", utcnow())
        with log_path.open("a", encoding="utf-8") as log_file:
            printer = ProgressPrinter(
                out, DAILY, live=not verbose and _is_terminal(out), clock=utcnow
            )
            printer.line(f"Affinity run in {home.home}; full log: {log_path}")
            if replaced is not None:
                printer.line(f"  the previous data set's state was moved to {replaced}")
            with capture_run_output(log_file, verbose=verbose), _closing(printer):
                as_of, dag_seconds = _run(
                    data,
                    as_of,
                    landing,
                    printer,
                    log_file,
                    log_path,
                    verbose=verbose,
                    lock_fd=lock.fd,
                    shop={
                        "customers": customers,
                        "products": products,
                        "days": days,
                        "seed": seed,
                    },
                    params={
                        "retrain": retrain,
                        "top_n": top_n,
                        "replay_campaigns": replay_campaigns,
                        "campaign_uplift": campaign_uplift,
                    },
                )
        return summarize(
            as_of,
            landing,
            dag_seconds,
            time.perf_counter() - started,
            home.warehouse,
            log_path=log_path,
        )


def _run(
    data,
    as_of: str | None,
    landing: Path,
    printer: ProgressPrinter,
    log_file: TextIO,
    log_path: Path,
    *,
    verbose: bool,
    lock_fd: int,
    shop: dict,
    params: dict,
) -> tuple[str, float]:
    """Prepare the input, parse dbt, run the DAG while following it; return (as_of, seconds)."""
    from ml.engine import dbt_tasks_per_model
    from ml.orchestration.airflow import DAG_ID, run_dag
    from ml.orchestration.landing import (
        GENERATED_CAMPAIGN_UPLIFT,
        latest_data_date,
        prepare_landing,
    )
    from ml.warehouse.dbt import parse_dbt_project

    generated = data is None or str(data) == ""
    step = time.perf_counter()
    printer.status(f"  {'input':<{NAME_WIDTH}}preparing ...")
    prepare_landing(
        data,
        **shop,
        campaign_uplift=(params["campaign_uplift"] or GENERATED_CAMPAIGN_UPLIFT)
        if generated
        else None,
    )
    if generated:
        what = "generated shop"
    elif landing == Path(data).expanduser().resolve():
        what = "landing folder"
    else:
        what = f"imported {Path(data).name}"
    printer.line(
        f"  {'input':<{NAME_WIDTH}}{duration(time.perf_counter() - step):>7}  {what}: {landing}"
    )
    replay = params["replay_campaigns"]
    if replay is None:
        replay = generated
    as_of = as_of or latest_data_date(landing)
    if dbt_tasks_per_model():
        # Cosmos renders a task per model from the manifest; parse with the DAG's vars.
        step = time.perf_counter()
        printer.status(f"  {'dbt parse':<{NAME_WIDTH}}...")
        parse_dbt_project(as_of=as_of)
        printer.line(
            f"  {'dbt parse':<{NAME_WIDTH}}{duration(time.perf_counter() - step):>7}  "
            f"manifest for {as_of} (data up to and including that day)"
        )
    log.info("running affinity_daily for %s on %s", as_of, landing)
    launched = time.perf_counter()
    watch = DagWatch(paths().airflow_home, DAG_ID, utcnow(), printer)

    def on_poll() -> None:
        if watch.poll() is None:
            waited = duration(time.perf_counter() - launched)
            printer.status(f"  {'airflow':<{NAME_WIDTH}}starting the DAG run ...  {waited}")

    try:
        # The DAG process inherits the lock: killing this process alone leaves the home
        # locked until the run it started has stopped too.
        dag_seconds = run_dag(
            as_of,
            {
                "input_path": str(landing),
                "retrain": params["retrain"],
                "top_n": params["top_n"],
                "replay_campaigns": bool(replay),
            },
            pass_fds=(lock_fd,),
            output=log_file,
            echo=sys.stdout if verbose else None,
            on_poll=on_poll,
        )
    except RuntimeError as error:
        log_file.flush()
        watch.finish(log_path)
        detail = watch.failure_detail(log_path)
        parts = [str(error), detail, f"full log: {log_path}"]
        raise RuntimeError("\n".join(p for p in parts if p)) from None
    log_file.flush()
    watch.finish(log_path)
    return as_of, dag_seconds


@contextlib.contextmanager
def _closing(printer: ProgressPrinter) -> Iterator[None]:
    """Clear the live status line however the block ends (an error prints on a clean line)."""
    try:
        yield
    finally:
        printer.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def summarize(
    as_of: str,
    landing: Path,
    dag_seconds: float,
    total_seconds: float,
    warehouse: Path,
    *,
    log_path: Path | None = None,
) -> str:
    """A short report of a finished run: what was published, by which model, and where.

    The ingest counts are those of the run's input: the current files loaded from
    ``landing``.
    """
    from ml.publish import query

    home = paths()
    if not home.snapshot.exists() or not query(
        "select 1 from pipeline_runs where logical_date = ?::date", [as_of]
    ):
        raise RuntimeError(
            f"the DAG run for {as_of} finished but published nothing for that date: check that "
            "its tasks ran (Airflow skips tasks for logical dates before the DAG's start_date)."
        )
    received, loaded, quarantined = input_counts(landing)
    run_id, model_name, model_version = query(
        "select run_id, model_name, model_version from pipeline_runs "
        "order by finished_at desc limit 1"
    )[0]
    tables = [r[0] for r in query("select table_name from duckdb_tables() order by 1")]
    counts = ", ".join(f"{t} {query(f'select count(*) from {t}')[0][0]:,}" for t in tables)
    return "\n".join(
        [
            "",
            f"Affinity run for {as_of} finished in {total_seconds:.0f}s (DAG {dag_seconds:.0f}s).",
            f"  input:      {landing}",
            f"  ingest:     {received:,} rows received = {loaded:,} loaded + {quarantined:,} "
            "quarantined (raw.quarantine, raw.load_manifest)",
            f"  model:      {model_name} version {model_version} "
            + (
                "(no model has passed the gate yet: popularity serves)"
                if model_version == "baseline"
                else "(MLflow alias champion)"
            ),
            f"  published:  {counts}",
            f"  snapshot:   {home.snapshot}",
            '              query it: .venv/bin/affinity query "select * from recommendations limit 10"',
            f"  mlflow:     make mlflow, then http://localhost:5000 ({home.mlflow_tracking_uri})",
            f"  warehouse:  {warehouse}   airflow run id: {run_id}",
        ]
        + ([f"  full log:   {log_path}"] if log_path is not None else [])
    )


def input_counts(landing: Path) -> tuple[int, int, int]:
    """Received, loaded and quarantined rows of the current files loaded from ``landing``.

    The run's own input only: another landing folder's files still current in ``raw.*``
    (a home used before the one-data-set rule) are not counted.
    """
    row = query_warehouse(
        "select sum(received_rows), sum(loaded_rows), sum(quarantined_rows) "
        "from raw.load_manifest where is_current and starts_with(path, ?)",
        [str(landing).rstrip("/") + "/"],
    )[0]
    received, loaded, quarantined = (int(n or 0) for n in row)
    return received, loaded, quarantined


def query_warehouse(sql: str, params: list | None = None) -> list[tuple]:
    """Run one read-only query on the warehouse (for reports; never inside a DAG task)."""
    with connect(paths().warehouse, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()
