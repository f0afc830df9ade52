"""Affinity's daily pipeline, in the order ``ml.pipeline.DAILY`` declares: ingest -> dbt
features -> train -> score -> campaigns -> dbt outputs -> publish.

Thin configuration only: every task runs its declared stage through
``ml.orchestration.runner.run_stage``; a dbt stage is one task running one ``dbt build``
of its declared selection (models and tests in dbt's own order; a Cosmos task per model
cost ~1 s of start-up each, 47 of them a night). ``AFFINITY_DBT_TASKS=models`` renders
each dbt stage as a Cosmos task group instead (a task per model, from the manifest that
``affinity run`` / ``make airflow`` write with ``dbt parse`` beforehand). Nothing here
touches the warehouse at import time, so parsing this file stays well under a second.
"""

from __future__ import annotations

import os

from airflow.sdk import Param, chain, dag, task

from ml.config import DBT_PROJECT_DIR, paths
from ml.engine import dbt_target, dbt_tasks_per_model
from ml.orchestration.airflow import WAREHOUSE_POOL, common_dag_arguments, snapshot_asset
from ml.pipeline import DAILY, Stage

SNAPSHOT = snapshot_asset()


def _dbt_group(stage: Stage):
    """A Cosmos task group over the stage's selection: a task per model (with its tests)."""
    # Imported here: the default rendering does not pay for Cosmos at every DAG parse.
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import InvocationMode, LoadMode, TestBehavior

    if not paths().dbt_manifest.exists():
        raise FileNotFoundError(
            f"{paths().dbt_manifest} is missing: run `affinity parse` (or `affinity run`, "
            "`make airflow`) to parse the dbt project before loading this DAG."
        )
    return DbtTaskGroup(
        group_id=stage.name,
        project_config=ProjectConfig(
            dbt_project_path=DBT_PROJECT_DIR,
            manifest_path=paths().dbt_manifest,
            project_name="affinity",
        ),
        profile_config=ProfileConfig(
            profile_name="affinity",
            # dev (DuckDB) or spark, by the home's engine (ml/engine.py); AFFINITY_DBT_TARGET wins.
            target_name=dbt_target(),
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        execution_config=ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=list(stage.dbt_select),
            test_behavior=TestBehavior.BUILD,
            # A test reading several models (e.g. erased customers absent everywhere) runs
            # once all of them are built, not inside the first one's task.
            should_detach_multiple_parents_tests=True,
            # No Airflow Asset per dbt model: nothing is scheduled on them (the DAG's one
            # Asset is the published snapshot), and emitting them made every dbt task warn
            # twice ("Airflow 3.0.0 Asset (Dataset) URIs validation rules changed", then
            # "Emitting event for inactive AssetModel" or "AssetModel ... not found").
            emit_datasets=False,
        ),
        # Each dbt task builds one model with its tests (unit tests included) and as_of.
        operator_args={
            "vars": {"as_of": "{{ ds }}"},
            "pool": WAREHOUSE_POOL,
            "install_deps": False,
        },
    )


def _python_task(stage: Stage):
    @task(
        task_id=stage.name,
        pool=WAREHOUSE_POOL,
        outlets=[SNAPSHOT] if stage.emits_snapshot else [],
        doc_md=stage.does,
    )
    def run(
        params: dict | None = None, ds: str | None = None, run_id: str | None = None, **context
    ):
        from ml.orchestration.child import run_stage_in_child
        from ml.orchestration.runner import run_stage
        from ml.pipeline import RunContext

        # Large stages in a child process: their memory goes back to the OS when they end.
        runner = run_stage_in_child if stage.own_process else run_stage
        summary = runner(
            stage.name,
            RunContext(
                logical_date=ds,
                run_id=run_id,
                input_path=params["input_path"],
                retrain=params["retrain"],
                top_n=params["top_n"],
                full_refresh=bool(params.get("full_refresh")),
                replay_campaigns=bool(params.get("replay_campaigns")),
            ),
        )
        if summary.get("experiment_id") and summary.get("run_id"):
            from affinity_plugin import push_mlflow_link

            push_mlflow_link(context, summary["experiment_id"], summary["run_id"])
        return summary

    return run()


@dag(
    dag_id="affinity_daily",
    schedule=os.environ.get("AFFINITY_SCHEDULE", "@daily"),
    **common_dag_arguments(),
    params={
        "input_path": Param(
            "",
            type="string",
            description="Landing folder of contract files, or an Online Retail CSV(.gz); "
            "empty: $AFFINITY_HOME/landing/inbox.",
        ),
        "retrain": Param(
            True,
            type="boolean",
            description="Train and gate a new model when the data moved enough or a week "
            "passed (ml.train.retrain_rule); false: the champion keeps serving.",
        ),
        "top_n": Param(
            20, type="integer", minimum=1, maximum=200, description="Recommendations per customer."
        ),
        "full_refresh": Param(
            False,
            type="boolean",
            description="Rebuild instead of syncing: dbt rebuilds its incremental models, "
            "every customer is scored (also on AFFINITY_FULL_REFRESH_WEEKDAY).",
        ),
        "replay_campaigns": Param(
            False,
            type="boolean",
            description="Launch campaigns that ended unlaunched as of their launch dates "
            "(ml.campaigns.replay), so they are measured.",
        ),
    },
    tags=["affinity"],
    doc_md=__doc__,
)
def affinity_daily():
    per_model = dbt_tasks_per_model()
    chain(
        *(
            _dbt_group(stage) if stage.is_dbt and per_model else _python_task(stage)
            for stage in DAILY
        )
    )


affinity_daily()
