"""Airflow glue shared by Affinity's DAGs: a task link to the MLflow run it produced.

A task that trains or scores calls :func:`push_mlflow_link` with its MLflow run; the
"MLflow run" button then appears on that task instance in the Airflow UI.
"""

from __future__ import annotations

import os

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink
from airflow.sdk.bases.xcom import BaseXCom

# Where `make mlflow` serves the UI; override for a deployed tracking server.
MLFLOW_UI_URL_ENV = "AFFINITY_MLFLOW_UI_URL"
DEFAULT_MLFLOW_UI_URL = "http://localhost:5000"


class MlflowRunLink(BaseOperatorLink):
    """Button on a task instance that opens the MLflow run the task recorded."""

    name = "MLflow run"

    def get_link(self, operator, *, ti_key) -> str:
        return BaseXCom.get_value(key=self.xcom_key, ti_key=ti_key) or ""


def mlflow_run_url(experiment_id: str, run_id: str) -> str:
    """URL of an MLflow run in the tracking UI."""
    base = os.environ.get(MLFLOW_UI_URL_ENV, DEFAULT_MLFLOW_UI_URL).rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def push_mlflow_link(context, experiment_id: str, run_id: str) -> str:
    """Store the run's URL where :class:`MlflowRunLink` finds it; return the URL."""
    url = mlflow_run_url(experiment_id, run_id)
    context["ti"].xcom_push(key=MlflowRunLink().xcom_key, value=url)
    return url


class AffinityPlugin(AirflowPlugin):
    name = "affinity"
    global_operator_extra_links = [MlflowRunLink()]
