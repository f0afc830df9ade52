"""The main job's stages: what each Airflow task calls, and ``affinity run`` around the DAG.

Each ``*_stage`` function is one idempotent task body: re-running it for the same
logical date replaces its outputs. ``run_pipeline`` prepares the input and runs the DAG
with ``airflow dags test`` (see :mod:`ml.orchestrate`).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from ml.config import Paths, paths
from ml.warehouse import connect

log = logging.getLogger(__name__)

ONLINE_RETAIL_SUFFIXES = (".csv", ".csv.gz")
# The known uplift of the generated shop's ground-truth campaign (ml.datagen.uplift).
GENERATED_CAMPAIGN_UPLIFT = 0.1


def prepare_landing(
    data: Path | str | None,
    *,
    customers: int = 2_000,
    products: int = 500,
    days: int = 90,
    seed: int = 42,
    campaign_uplift: float | None = None,
) -> Path:
    """Return a landing folder holding contract files for this run.

    Parameters
    ----------
    data : path-like or None
        ``None``: generate a shop into ``$AFFINITY_HOME/landing/generated``. A CSV(.gz)
        file: an Online Retail export, imported into ``$AFFINITY_HOME/landing/<stem>``. A
        folder: used as it is.
    customers, products, days, seed : int
        Size and seed of the generated shop.
    campaign_uplift : float, optional
        The generated shop's ground-truth campaign uplift (``None``: no such campaigns).
    """
    home = paths().ensure()
    if data is None or str(data) == "":
        from ml.datagen import generate_shop

        out = home.landing / "generated"
        generate_shop(
            out,
            customers=customers,
            products=products,
            days=days,
            seed=seed,
            campaign_uplift=campaign_uplift,
        )
        return out
    data = Path(data).expanduser().resolve()
    if data.is_dir():
        return data
    if data.is_file() and data.name.endswith(ONLINE_RETAIL_SUFFIXES):
        from ml.importers.online_retail import import_online_retail

        out = home.landing / data.name.split(".")[0]
        import_online_retail(data, out)
        return out
    raise FileNotFoundError(
        f"{data}: expected a landing folder of contract files or an Online Retail .csv/.csv.gz export."
    )


def latest_data_date(landing: Path) -> str:
    """Return the last order date (YYYY-MM-DD) in a landing folder: the default ``as_of``."""
    files = sorted(
        str(p) for p in landing.glob("orders*") if p.name.endswith((".parquet", ".csv", ".csv.gz"))
    ) + sorted(str(p) for p in (landing / "orders").glob("*") if (landing / "orders").is_dir())
    if not files:
        raise FileNotFoundError(f"{landing}: no orders file; pass --as-of explicitly.")
    reader = "read_parquet" if files[0].endswith(".parquet") else "read_csv"
    con = duckdb.connect()
    try:
        latest = con.execute(
            f"select max(try_cast(ordered_at as timestamp))::date from {reader}(?)", [files]
        ).fetchall()[0][0]
    finally:
        con.close()
    if latest is None:
        raise ValueError(f"{landing}: orders have no readable ordered_at; pass --as-of explicitly.")
    return latest.isoformat()


# --------------------------------------------------------------------------- task bodies


def _release_dbt() -> None:
    """Let go of the warehouse if an in-process dbt task (Cosmos) left it open.

    dbt-duckdb keeps its DuckDB instance open in the process after a command; in
    ``airflow dags test`` every task shares that process, and DuckDB refuses a second
    connection to the file with another configuration.
    """
    from ml.transform import release_dbt_warehouse

    release_dbt_warehouse()


def _record(logical_date: str, stage: str, rows: int, seconds: float, detail: dict) -> None:
    from ml.publish import record_stage, to_date

    with connect() as con:
        record_stage(con, to_date(logical_date), stage, rows=rows, seconds=seconds, detail=detail)


def ingest_stage(input_path: str | None, logical_date: str | None = None) -> dict:
    """Task body: resolve the input (default: the inbox folder) and ingest it into ``raw``."""
    from ml.ingest import ingest

    _release_dbt()
    started = time.perf_counter()
    source = Path(input_path) if input_path else paths().inbox
    landing = prepare_landing(source) if source.is_file() else source
    report = ingest(landing)
    log.info("%s", report.summary())
    summary = {
        "landing": str(landing),
        "batch_id": report.batch_id,
        "received_rows": report.received_rows,
        "loaded_rows": report.loaded_rows,
        "quarantined_rows": report.quarantined_rows,
    }
    if logical_date:
        _record(logical_date, "ingest", report.loaded_rows, time.perf_counter() - started, summary)
    return summary


def train_stage(logical_date: str, retrain: bool = True) -> dict:
    """Task body: train, review and gate the recommenders on the data up to ``logical_date``.

    The training's ``as_of`` is the start of the next day: its test window ends where
    the logical date ends, like the dbt marts.
    """
    from ml.publish import to_date
    from ml.train import train
    from ml.train.tracking import alias_version

    _release_dbt()
    if not retrain:
        return {"decision": "skipped", "reason": "retrain=false: scoring keeps the champion"}
    started = time.perf_counter()
    result = train(to_date(logical_date) + timedelta(days=1))
    summary = {
        "run_id": result.run_id,
        "experiment_id": result.experiment_id,
        "decision": result.decision,
        "reason": result.reason,
        "model_name": result.model_name,
        "model_version": result.model_version,
        "champion_version": alias_version(result.model_name, "champion"),
        "ndcg_at_10": {k: v.get("ndcg_at_10") for k, v in result.metrics.items()},
    }
    _record(logical_date, "train", 1, time.perf_counter() - started, summary)
    return summary


def score_stage(logical_date: str, top_n: int = 20) -> dict:
    """Task body: recommendations, similar products and segments from the champion."""
    from ml.score import ScoreConfig, load_serving_model, score
    from ml.segments import build_segments
    from ml.similar import similar_products

    _release_dbt()
    _erase_requested_customers()
    model = load_serving_model(logical_date)
    recommendations = score(logical_date, config=ScoreConfig(n=top_n), model=model)
    similar = similar_products(logical_date, model=model)
    segments = build_segments(logical_date, model=model)
    return {
        "model_name": model.name,
        "model_version": model.version,
        "recommendations": recommendations.rows,
        "catalog_coverage": recommendations.catalog_coverage,
        "cold_start_customers": recommendations.cold_start,
        "similar_products": similar.rows,
        "clusters": segments.cluster_names,
    }


def _erase_requested_customers() -> None:
    """Right to be forgotten in the Python steps' outputs of earlier dates too.

    dbt drops erased customers from staging on, so today's outputs never see them; rows
    written for earlier logical dates (kept for backfills and campaign measurement) are
    deleted here, before the output marts are built from them.
    """
    from ml.publish import erase_customers, erased_customer_ids

    with connect() as con:
        erase_customers(con, erased_customer_ids(con))


def publish_stage(logical_date: str, run_id: str, started_at: datetime | None = None) -> dict:
    """Task body: build, verify and swap in the analyst snapshot for ``logical_date``."""
    from ml.publish import publish

    _release_dbt()
    report = publish(
        logical_date, run_id=run_id, started_at=started_at or _run_started(logical_date)
    )
    return {"snapshot": str(report.snapshot), "row_counts": report.row_counts}


def _run_started(logical_date: str) -> datetime | None:
    """When this date's run began: the start of its earliest recorded stage (naive UTC)."""
    from ml.publish import to_date

    with connect() as con:
        rows = con.execute(
            "select min(finished_at - to_microseconds(cast(seconds * 1e6 as bigint))) "
            "from ml.stage_runs where logical_date = ?",
            [to_date(logical_date)],
        ).fetchall()
    return rows[0][0] if rows else None


# The Cosmos task groups of affinity_daily, by their cache identifier (<dag>__<group>).
DBT_TASK_GROUPS = ("affinity_daily__dbt_features", "affinity_daily__dbt_outputs")


def parse_dbt_project(home: Path | None = None, as_of: str | None = None) -> Path:
    """Parse the dbt project and save the manifest the DAG renders its dbt tasks from.

    With ``as_of`` (the run's logical date) the parse uses the same ``--vars`` as the
    DAG's dbt tasks, and its partial-parse file seeds each task group's Cosmos cache: a
    changed var makes dbt re-parse the whole project, which the first task of each group
    would otherwise do (10-20 s each on a loaded machine).
    """
    from ml.transform import run_dbt

    where = Paths(Path(home).resolve()) if home else paths()
    # dbt hashes the --profile and --target arguments with the vars: pass them as Cosmos does.
    target = os.environ.get("AFFINITY_DBT_TARGET", "dev")
    run_dbt(["parse", "--profile", "affinity", "--target", target], as_of=as_of, home=where.home)
    where.dbt_manifest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(where.dbt_target / "manifest.json", where.dbt_manifest)
    partial_parse = where.dbt_target / "partial_parse.msgpack"
    if as_of and partial_parse.exists():
        for group in DBT_TASK_GROUPS:
            target = where.cosmos_cache / group / "target"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(partial_parse, target / "partial_parse.msgpack")
    return where.dbt_manifest


# --------------------------------------------------------------------------- the main job


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
    campaign_uplift: float | None = GENERATED_CAMPAIGN_UPLIFT,
    replay_campaigns: bool | None = None,
) -> str:
    """Run the DAG end to end for one logical date and return a short human summary.

    A generated shop (``data`` None) includes campaigns that ended before the run date
    with a known effect (``campaign_uplift``, truth in ``_campaign_truth.parquet``), and
    ``replay_campaigns`` defaults to on for it (off for real data: see
    :mod:`ml.campaigns.replay`), so the first run already publishes ``campaign_results``
    and ``campaign_insights``.

    Holds the home's run lock (:mod:`ml.locking`) for the whole run: a second run started
    meanwhile is refused with a message naming this one (or waits, with
    ``AFFINITY_RUN_LOCK_TIMEOUT``), so two runs never write the same warehouse.
    """
    from ml.locking import lock_timeout_from_env, run_lock
    from ml.orchestrate import run_dag

    home = paths().ensure()
    started = time.perf_counter()
    with run_lock(home.home, timeout=lock_timeout_from_env()) as lock:
        landing = prepare_landing(
            data,
            customers=customers,
            products=products,
            days=days,
            seed=seed,
            campaign_uplift=campaign_uplift,
        )
        if replay_campaigns is None:
            replay_campaigns = data is None or str(data) == ""
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
