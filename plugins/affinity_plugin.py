"""Airflow glue shared by Affinity's DAGs: a task link to the MLflow run it produced.

A task that trains or scores calls :func:`push_mlflow_link` with its MLflow run; the
"MLflow run" button then appears on that task instance in the Airflow UI.
"""

from __future__ import annotations

import os

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

# Where `make mlflow` serves the UI; override for a deployed tracking server.
MLFLOW_UI_URL_ENV = "AFFINITY_MLFLOW_UI_URL"
DEFAULT_MLFLOW_UI_URL = "http://localhost:5000"


class MlflowRunLink(BaseOperatorLink):
    """Button on a task instance that opens the MLflow run the task recorded."""

    name = "MLflow run"

    def get_link(self, operator, *, ti_key) -> str:
        # Called in the API server, never in a task: the Task SDK's XCom reader
        # (BaseXCom.get_value) only works inside a running task, where it asks the task
        # supervisor, and fails here (ImportError: SUPERVISOR_COMMS). The API server reads
        # link XComs from the metadata database, as Airflow's own XComOperatorLink does for
        # the links operators push; "" (no button) when the task pushed none.
        from airflow.serialization.definitions.operatorlink import XComOperatorLink

        link = XComOperatorLink(name=self.name, xcom_key=self.xcom_key)
        return link.get_link(operator, ti_key=ti_key)


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
