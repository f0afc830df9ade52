"""Affinity's campaign measurement: runs whenever the daily DAG publishes a snapshot.

For every campaign whose attribution window has ended by the published logical date,
``measure`` computes treatment vs control conversion, lift, confidence interval and
p-value into the warehouse (``ml.campaign_results``); ``publish_results`` builds the
output mart ``campaign_results`` and refreshes the analyst snapshot (unless a newer
daily run has scored since: its own publish then carries the results). The publish here
emits no Asset event, so this DAG never triggers itself.

Thin configuration only: the tasks run the stages ``ml.pipeline.CAMPAIGN_MEASUREMENT``
declares (bodies in ``ml.orchestration.stages``).
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from ml.orchestration.airflow import WAREHOUSE_POOL, common_dag_arguments, snapshot_asset
from ml.pipeline import CAMPAIGN_MEASUREMENT as PIPELINE
from ml.pipeline import stage

# The Asset the daily DAG's publish task emits.
SNAPSHOT = snapshot_asset()


@dag(
    dag_id="affinity_campaigns",
    schedule=SNAPSHOT,
    **common_dag_arguments(),
    params={
        "as_of": Param(
            "",
            type="string",
            description="Measure as of this date (YYYY-MM-DD); empty: the published date.",
        ),
    },
    tags=["affinity", "campaigns"],
    doc_md=__doc__,
)
def affinity_campaigns():
    @task(task_id="measure", pool=WAREHOUSE_POOL, doc_md=stage("measure", PIPELINE).does)
    def measure(params: dict | None = None) -> dict:
        from ml.orchestration.runner import run_stage
        from ml.pipeline import RunContext

        as_of = (params or {}).get("as_of") or None
        return run_stage("measure", RunContext(as_of), PIPELINE)

    @task(
        task_id="publish_results",
        pool=WAREHOUSE_POOL,
        doc_md=stage("publish_results", PIPELINE).does,
    )
    def publish_results(measured: dict, run_id: str | None = None) -> dict:
        from ml.orchestration.runner import run_stage
        from ml.pipeline import RunContext

        ctx = RunContext(measured["as_of"], run_id=f"campaigns__{run_id}")
        return run_stage("publish_results", ctx, PIPELINE)

    publish_results(measure())


affinity_campaigns()
