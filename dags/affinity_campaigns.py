"""Affinity's campaign measurement: runs whenever the daily DAG publishes a snapshot.

For every campaign whose attribution window has ended by the published logical date,
``measure`` computes treatment vs control conversion, lift, confidence interval and
p-value into the warehouse (``ml.campaign_results``); ``publish_results`` builds the
output mart ``campaign_results`` and refreshes the analyst snapshot (unless a newer
daily run has scored since: its own publish then carries the results). The publish here
emits no Asset event, so this DAG never triggers itself.

Thin configuration only: the task bodies are ``ml.campaigns.measure_stage`` and
``ml.campaigns.publish_results``.
"""

from __future__ import annotations

from airflow.sdk import Asset, Param, dag, task

from ml.orchestrate import (
    DAG_START_DATE,
    SNAPSHOT_ASSET_NAME,
    SNAPSHOT_ASSET_URI,
    WAREHOUSE_POOL,
    dag_default_args,
)

# The Asset the daily DAG's publish task emits (same name and URI).
SNAPSHOT = Asset(name=SNAPSHOT_ASSET_NAME, uri=SNAPSHOT_ASSET_URI)


@dag(
    dag_id="affinity_campaigns",
    schedule=SNAPSHOT,
    start_date=DAG_START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=dag_default_args(),
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
    @task(pool=WAREHOUSE_POOL)
    def measure(params: dict | None = None) -> dict:
        from ml.campaigns import measure_stage

        return measure_stage((params or {}).get("as_of") or None)

    @task(pool=WAREHOUSE_POOL)
    def publish_results(measured: dict, run_id: str | None = None) -> dict:
        from ml.campaigns import publish_results as publish

        return publish(measured["as_of"], run_id=f"campaigns__{run_id}")

    publish_results(measure())


affinity_campaigns()
