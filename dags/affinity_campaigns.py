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

import os
from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

WAREHOUSE_POOL = "affinity_warehouse"
# The Asset the daily DAG's publish task emits (same name and URI).
SNAPSHOT = Asset(name="affinity_snapshot", uri="affinity://published/affinity.duckdb")


@dag(
    dag_id="affinity_campaigns",
    schedule=SNAPSHOT,
    start_date=datetime(2000, 1, 1),  # static and early: measurement dates of old exports run too
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "marketing-data",
        "retries": int(os.environ.get("AFFINITY_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
    },
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
