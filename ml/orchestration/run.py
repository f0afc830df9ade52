"""``affinity run``: prepare the input, run the daily DAG for one date, summarize the run."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ml.config import paths
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
) -> str:
    """Run the DAG end to end for one logical date and return a short human summary.

    A generated shop (``data`` None) includes campaigns that ended before the run date
    with a known effect (``campaign_uplift``, default
    :data:`~ml.orchestration.landing.GENERATED_CAMPAIGN_UPLIFT`; truth in
    ``_campaign_truth.parquet``), and ``replay_campaigns`` defaults to on for it (off for
    real data: see :mod:`ml.campaigns.replay`), so the first run already publishes
    ``campaign_results`` and ``campaign_insights``.

    Holds the home's run lock (:mod:`ml.locking`) for the whole run: a
    second run started meanwhile is refused with a message naming this one (or waits, with
    ``AFFINITY_RUN_LOCK_TIMEOUT``), so two runs never write the same warehouse.
    """
    from ml.engine import record_engine
    from ml.locking import lock_timeout_from_env, run_lock
    from ml.orchestration.airflow import run_dag
    from ml.orchestration.landing import (
        GENERATED_CAMPAIGN_UPLIFT,
        latest_data_date,
        prepare_landing,
    )
    from ml.warehouse.dbt import parse_dbt_project

    home = paths().ensure()
    started = time.perf_counter()
    with run_lock(home.home, timeout=lock_timeout_from_env()) as lock:
        engine = record_engine(home=home.home)  # a home keeps the engine of its first run
        log.info("engine: %s", engine)
        generated = data is None or str(data) == ""
        landing = prepare_landing(
            data,
            customers=customers,
            products=products,
            days=days,
            seed=seed,
            campaign_uplift=(campaign_uplift or GENERATED_CAMPAIGN_UPLIFT) if generated else None,
        )
        if replay_campaigns is None:
            replay_campaigns = generated
        as_of = as_of or latest_data_date(landing)
        parse_dbt_project(as_of=as_of)
        log.info("running affinity_daily for %s on %s", as_of, landing)
        # The DAG process inherits the lock: killing this process alone leaves the home locked
        # until the run it started has stopped too.
        dag_seconds = run_dag(
            as_of,
            {
                "input_path": str(landing),
                "retrain": retrain,
                "top_n": top_n,
                "replay_campaigns": bool(replay_campaigns),
            },
            pass_fds=(lock.fd,),
        )
        return summarize(as_of, landing, dag_seconds, time.perf_counter() - started, home.warehouse)


def summarize(
    as_of: str, landing: Path, dag_seconds: float, total_seconds: float, warehouse: Path
) -> str:
    """A short report of a finished run: what was published, by which model, and where."""
    from ml.publish import query

    home = paths()
    if not home.snapshot.exists() or not query(
        "select 1 from pipeline_runs where logical_date = ?::date", [as_of]
    ):
        raise RuntimeError(
            f"the DAG run for {as_of} finished but published nothing for that date: check that "
            "its tasks ran (Airflow skips tasks for logical dates before the DAG's start_date)."
        )
    received, loaded, quarantined = query_warehouse(
        "select sum(received_rows), sum(loaded_rows), sum(quarantined_rows) "
        "from raw.load_manifest where is_current"
    )[0]
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
    )


def query_warehouse(sql: str) -> list[tuple]:
    """Run one read-only query on the warehouse (for reports; never inside a DAG task)."""
    with connect(paths().warehouse, read_only=True) as con:
        return con.execute(sql).fetchall()
