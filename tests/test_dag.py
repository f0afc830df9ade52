"""The Airflow DAG: integrity (parse time, graph, retries, pool) and real `airflow dags test` runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from ml.config import DAGS_DIR
from ml.orchestration.airflow import WAREHOUSE_POOL, airflow_env
from ml.warehouse.dbt import parse_dbt_project

AFFINITY = str(Path(sys.executable).with_name("affinity"))

INSPECT_DAG = textwrap.dedent(
    """
    import json, sys, time
    from airflow.dag_processing.dagbag import DagBag

    # The first parse pays the libraries' own imports (airflow, cosmos, sqlalchemy), which
    # every DAG processor pays once; the second times the DAG files' own work.
    DagBag(dag_folder=sys.argv[1])
    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    seconds = time.perf_counter() - started
    dag = bag.dags.get("affinity_daily")
    print(json.dumps({
        "seconds": seconds,
        "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
        "dags": sorted(bag.dags),
        "schedule": str(dag.schedule) if dag else None,
        "catchup": dag.catchup if dag else None,
        "start_date": dag.start_date.date().isoformat() if dag else None,
        "max_active_runs": dag.max_active_runs if dag else None,
        "params": sorted(dag.params.keys()) if dag else [],
        "tasks": {
            t.task_id: {
                "retries": t.retries,
                "pool": t.pool,
                "upstream": sorted(t.upstream_task_ids),
                "outlets": [getattr(o, "name", str(o)) for o in t.outlets],
                "emit_datasets": getattr(t, "emit_datasets", None),
            }
            for t in (dag.tasks if dag else [])
        },
    }))
    """
)


@pytest.fixture(scope="module")
def dag_info(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What Airflow sees of the DAG folder, inspected in a clean Airflow process."""
    home = tmp_path_factory.mktemp("dag_home")
    parse_dbt_project(home)  # the DAG renders its dbt tasks from this manifest
    out = subprocess.run(
        [sys.executable, "-c", INSPECT_DAG, str(DAGS_DIR)],
        env=airflow_env(home=home),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dag_imports_without_errors_and_quickly(dag_info: dict) -> None:
    assert dag_info["import_errors"] == {}
    assert "affinity_daily" in dag_info["dags"]
    # Thin DAG file: rendering from the saved manifest, no work at import time.
    assert dag_info["seconds"] < 1.0, dag_info["seconds"]


def test_dag_configuration(dag_info: dict) -> None:
    assert dag_info["schedule"] is not None
    assert dag_info["catchup"] is False
    # Airflow skips the tasks of a logical date before start_date: the real Online Retail
    # export (2009-12-01 .. 2010-12-09) must be runnable for its own dates.
    assert dag_info["start_date"] <= "2009-12-01"
    assert dag_info["max_active_runs"] == 1
    assert {"input_path", "retrain", "top_n", "full_refresh"} <= set(dag_info["params"])


def test_task_graph_retries_and_pool(dag_info: dict) -> None:
    tasks = dag_info["tasks"]
    for name in ("ingest", "train", "score", "campaigns", "publish"):
        assert name in tasks
    # Each dbt stage is one task (one `dbt build` of its selection, models and tests).
    assert "dbt_features" in tasks and "dbt_outputs" in tasks
    assert not [t for t in tasks if "." in t]
    # Order: ingest -> features -> train -> score -> outputs -> publish.
    assert tasks["train"]["upstream"] == ["dbt_features"]
    assert tasks["score"]["upstream"] == ["train"]
    assert tasks["publish"]["upstream"] == ["dbt_outputs"]
    # The features wait on the stage declared before them (the language stages after ingest).
    from ml.pipeline import stage_names

    names = stage_names()
    assert tasks["dbt_features"]["upstream"] == [names[names.index("dbt_features") - 1]]
    # Retries everywhere; every warehouse writer takes the size-1 pool.
    assert all(t["retries"] >= 1 for t in tasks.values())
    assert all(t["pool"] == WAREHOUSE_POOL for t in tasks.values())
    assert tasks["publish"]["outlets"] == ["affinity_snapshot"]


def test_per_model_rendering_keeps_a_cosmos_task_per_model(tmp_path_factory) -> None:
    """``AFFINITY_DBT_TASKS=models``: each dbt stage is a Cosmos group, a task per model,
    none of which emits an Asset (nothing consumes them; each one made its task warn
    twice)."""
    home = tmp_path_factory.mktemp("dag_home_models")
    parse_dbt_project(home)
    out = subprocess.run(
        [sys.executable, "-c", INSPECT_DAG, str(DAGS_DIR)],
        env=airflow_env({"AFFINITY_DBT_TASKS": "models"}, home=home),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    tasks = json.loads(out.stdout.strip().splitlines()[-1])["tasks"]
    feature_models = {t for t in tasks if t.startswith("dbt_features.")}
    assert "dbt_features.customer_features_model_build" in feature_models
    assert "dbt_features.interactions_model_build" in feature_models
    assert "dbt_outputs.pub_recommendations_model_build" in tasks
    # The ml tables exist only after score/campaigns: their staging views build with the outputs.
    assert "dbt_outputs.stg_ml__recommendations_model_build" in tasks
    assert not {t for t in feature_models if "stg_ml__" in t}
    # Order (test_dag_task_order_is_the_declared_pipeline checks all of it): ... ->
    # dbt_features -> train -> score -> ... -> dbt_outputs -> publish.
    assert any(t.startswith("dbt_features.") for t in tasks["train"]["upstream"])
    assert tasks["score"]["upstream"] == ["train"]
    assert any(t.startswith("dbt_outputs.") for t in tasks["publish"]["upstream"])
    # The features wait on the stage declared before them (the language stages after ingest).
    from ml.pipeline import stage_names

    before_features = stage_names()[stage_names().index("dbt_features") - 1]
    assert before_features in {u for t in feature_models for u in tasks[t]["upstream"]}
    # Retries everywhere; every warehouse writer takes the size-1 pool.
    assert all(t["retries"] >= 1 for t in tasks.values())
    assert all(t["pool"] == WAREHOUSE_POOL for t in tasks.values())
    dbt_tasks = [
        t for name, t in tasks.items() if name.startswith(("dbt_features.", "dbt_outputs."))
    ]
    assert dbt_tasks and all(t["emit_datasets"] is False for t in dbt_tasks)


def _stage_of(task_id: str) -> str:
    """The declared stage a task belongs to (a dbt group's tasks belong to the group)."""
    return task_id.split(".", 1)[0]


def test_dag_task_order_is_the_declared_pipeline(dag_info: dict) -> None:
    from ml.pipeline import DAILY

    tasks = dag_info["tasks"]
    declared = [stage.name for stage in DAILY]
    # Every task belongs to a declared stage, and every declared stage has tasks.
    assert {_stage_of(t) for t in tasks} == set(declared)
    # Each stage's entry tasks wait only on the stage declared just before it (and tasks of
    # the same dbt group); nothing reaches back further or skips a stage.
    for position, stage in enumerate(declared):
        previous = declared[position - 1] if position else None
        upstream_stages = {
            _stage_of(u)
            for t, info in tasks.items()
            if _stage_of(t) == stage
            for u in info["upstream"]
        } - {stage}
        assert upstream_stages == ({previous} if previous else set()), (stage, upstream_stages)
    snapshot_writers = [s.name for s in DAILY if s.emits_snapshot]
    emitting = [t for t, info in tasks.items() if "affinity_snapshot" in info["outlets"]]
    assert emitting == snapshot_writers


# --------------------------------------------------------------------------- real runs


def affinity_run(home: Path, *args: str) -> str:
    env = {**os.environ, "AFFINITY_HOME": str(home), "AFFINITY_TASK_RETRIES": "0"}
    result = subprocess.run(
        [AFFINITY, "run", *args], env=env, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    return result.stdout


def snapshot_rows(home: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(home / "published" / "affinity.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def table_checksum(home: Path, table: str, columns: str = "*") -> tuple[int, int]:
    return snapshot_rows(
        home, f"select count(*), sum(hash(t)) from (select {columns} from {table}) t"
    )[0]


@pytest.fixture(scope="module")
def small_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ml.datagen import generate_shop

    landing = tmp_path_factory.mktemp("shop")
    generate_shop(landing, customers=800, products=150, days=75, seed=11, end_date="2026-10-31")
    return landing


@pytest.mark.slow
def test_end_to_end_dag_run_publishes_the_snapshot(tmp_path: Path, small_shop: Path) -> None:
    home = tmp_path / "home"
    out = affinity_run(home, "--data", str(small_shop), "--top-n", "10")
    assert "Affinity run for 2026-10-31 finished" in out
    assert str(home / "published" / "affinity.duckdb") in out

    tables = {r[0] for r in snapshot_rows(home, "select table_name from duckdb_tables()")}
    assert {
        "recommendations",
        "similar_products",
        "customer_segments",
        "customer_features",
        "pipeline_runs",
    } <= tables
    (runs,) = snapshot_rows(home, "select count(*) from pipeline_runs")[0]
    assert runs == 1
    per_customer = snapshot_rows(
        home,
        "select max(n), min(n) from (select count(*) n from recommendations group by customer_id)",
    )
    assert per_customer == [(10, 10)]
    version = snapshot_rows(home, "select distinct model_version from recommendations")
    assert version == snapshot_rows(home, "select model_version from pipeline_runs")


@pytest.mark.slow
def test_backfill_two_dates_matches_a_single_run_and_reruns_replace(
    tmp_path: Path, small_shop: Path
) -> None:
    backfilled, single = tmp_path / "backfilled", tmp_path / "single"
    affinity_run(backfilled, "--data", str(small_shop), "--as-of", "2026-10-30")
    affinity_run(backfilled, "--data", str(small_shop), "--as-of", "2026-10-31")
    affinity_run(single, "--data", str(small_shop), "--as-of", "2026-10-31")

    # Features are a pure function of the data up to the date: incremental == single run.
    assert table_checksum(backfilled, "customer_features") == table_checksum(
        single, "customer_features"
    )
    rfm = "customer_id, rfm_segment, r_score, f_score, m_score"
    assert table_checksum(backfilled, "customer_segments", rfm) == table_checksum(
        single, "customer_segments", rfm
    )

    before = {
        t: table_checksum(backfilled, t)
        for t in ("recommendations", "customer_features", "customer_segments")
    }
    affinity_run(backfilled, "--data", str(small_shop), "--as-of", "2026-10-31", "--no-retrain")
    after = {t: table_checksum(backfilled, t) for t in before}
    assert after == before  # a re-run of the date replaces, never duplicates
    logical = snapshot_rows(
        backfilled, "select logical_date::varchar from pipeline_runs order by finished_at"
    )
    assert [d for (d,) in logical][-1] == "2026-10-31"
