"""Affinity's daily pipeline: ingest -> dbt features -> train -> score -> campaigns -> dbt
outputs -> publish.

Thin configuration only: every task body lives in ``ml.pipeline`` and the dbt project;
nothing here touches the warehouse at import time. The dbt task groups render from the
manifest that ``affinity run`` / ``make airflow`` write with ``dbt parse`` beforehand, so
parsing this file stays well under a second.
"""

from __future__ import annotations

import os

from airflow.sdk import Asset, Param, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior

from ml.config import DBT_PROJECT_DIR, paths
from ml.orchestrate import (
    DAG_START_DATE,
    SNAPSHOT_ASSET_NAME,
    SNAPSHOT_ASSET_URI,
    WAREHOUSE_POOL,
    dag_default_args,
)

SNAPSHOT = Asset(name=SNAPSHOT_ASSET_NAME, uri=SNAPSHOT_ASSET_URI)

_project = ProjectConfig(
    dbt_project_path=DBT_PROJECT_DIR,
    manifest_path=paths().dbt_manifest,
    project_name="affinity",
)
_profile = ProfileConfig(
    profile_name="affinity",
    target_name=os.environ.get("AFFINITY_DBT_TARGET", "dev"),
    profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
)
_execution = ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER)
# Each dbt task builds one model with its tests (unit tests included) and the run's as_of.
_dbt_operator_args = {
    "vars": {"as_of": "{{ ds }}"},
    "pool": WAREHOUSE_POOL,
    "install_deps": False,
}


def _dbt_group(group_id: str, folders: list[str]) -> DbtTaskGroup:
    if not paths().dbt_manifest.exists():
        raise FileNotFoundError(
            f"{paths().dbt_manifest} is missing: run `affinity parse` (or `affinity run`, "
            "`make airflow`) to parse the dbt project before loading this DAG."
        )
    return DbtTaskGroup(
        group_id=group_id,
        project_config=_project,
        profile_config=_profile,
        execution_config=_execution,
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=[f"path:{folder}" for folder in folders],
            test_behavior=TestBehavior.BUILD,
            # A test reading several models (e.g. erased customers absent everywhere) runs
            # once all of them are built, not inside the first one's task.
            should_detach_multiple_parents_tests=True,
        ),
        operator_args=_dbt_operator_args,
    )


@dag(
    dag_id="affinity_daily",
    schedule=os.environ.get("AFFINITY_SCHEDULE", "@daily"),
    start_date=DAG_START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dag_default_args(),
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
    @task(pool=WAREHOUSE_POOL)
    def ingest(params: dict | None = None, ds: str | None = None) -> dict:
        from ml.pipeline import ingest_stage

        return ingest_stage(params["input_path"], ds)

    @task(pool=WAREHOUSE_POOL)
    def train(params: dict | None = None, ds: str | None = None, **context) -> dict:
        from affinity_plugin import push_mlflow_link

        from ml.pipeline import train_stage

        summary = train_stage(ds, retrain=params["retrain"])
        if summary.get("run_id"):
            push_mlflow_link(context, summary["experiment_id"], summary["run_id"])
        return summary

    @task(pool=WAREHOUSE_POOL)
    def score(params: dict | None = None, ds: str | None = None) -> dict:
        from ml.pipeline import score_stage

        return score_stage(ds, top_n=params["top_n"])

    @task(pool=WAREHOUSE_POOL)
    def campaigns(params: dict | None = None, ds: str | None = None) -> dict:
        from ml.campaigns import campaigns_stage

        return campaigns_stage(ds, replay=bool((params or {}).get("replay_campaigns")))

    @task(pool=WAREHOUSE_POOL, outlets=[SNAPSHOT])
    def publish(ds: str | None = None, run_id: str | None = None) -> dict:
        from ml.pipeline import publish_stage

        return publish_stage(ds, run_id)

    features = _dbt_group(
        "dbt_features", ["seeds", "models/staging", "models/intermediate", "models/marts"]
    )
    outputs = _dbt_group("dbt_outputs", ["models/outputs"])

    ingest() >> features >> train() >> score() >> campaigns() >> outputs >> publish()


affinity_daily()
