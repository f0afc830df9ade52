"""Affinity's daily pipeline, in the order ``ml.pipeline.DAILY`` declares: ingest -> dbt
features -> train -> score -> campaigns -> dbt outputs -> publish.

Thin configuration only: every Python task runs its declared stage through
``ml.orchestration.runner.run_stage``; every dbt stage is a Cosmos task group over its
declared selection. Nothing here touches the warehouse at import time. The dbt task groups
render from the manifest that ``affinity run`` / ``make airflow`` write with ``dbt parse``
beforehand, so parsing this file stays well under a second.
"""

from __future__ import annotations

import os

from airflow.sdk import Param, chain, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior

from ml.config import DBT_PROJECT_DIR, paths
from ml.engine import dbt_target, dbt_tasks_per_model
from ml.orchestration.airflow import WAREHOUSE_POOL, common_dag_arguments, snapshot_asset
from ml.pipeline import DAILY, Stage

SNAPSHOT = snapshot_asset()

_project = ProjectConfig(
    dbt_project_path=DBT_PROJECT_DIR,
    manifest_path=paths().dbt_manifest,
    project_name="affinity",
)
_profile = ProfileConfig(
    profile_name="affinity",
    # dev (DuckDB) or spark, by the home's engine (ml/engine.py); AFFINITY_DBT_TARGET wins.
    target_name=dbt_target(),
    profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
)
_execution = ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER)
# Each dbt task builds one model with its tests (unit tests included) and the run's as_of.
_dbt_operator_args = {
    "vars": {"as_of": "{{ ds }}"},
    "pool": WAREHOUSE_POOL,
    "install_deps": False,
}


def _dbt_group(stage: Stage) -> DbtTaskGroup:
    if not paths().dbt_manifest.exists():
        raise FileNotFoundError(
            f"{paths().dbt_manifest} is missing: run `affinity parse` (or `affinity run`, "
            "`make airflow`) to parse the dbt project before loading this DAG."
        )
    return DbtTaskGroup(
        group_id=stage.name,
        project_config=_project,
        profile_config=_profile,
        execution_config=_execution,
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=list(stage.dbt_select),
            test_behavior=TestBehavior.BUILD,
            # A test reading several models (e.g. erased customers absent everywhere) runs
            # once all of them are built, not inside the first one's task.
            should_detach_multiple_parents_tests=True,
        ),
        operator_args=_dbt_operator_args,
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
        from ml.orchestration.runner import run_stage
        from ml.pipeline import RunContext

        summary = run_stage(
            stage.name,
            RunContext(
                logical_date=ds,
                run_id=run_id,
                input_path=params["input_path"],
                retrain=params["retrain"],
                top_n=params["top_n"],
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
        "retrain": Param(True, type="boolean", description="Train and gate a new model."),
        "top_n": Param(
            20, type="integer", minimum=1, maximum=200, description="Recommendations per customer."
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
