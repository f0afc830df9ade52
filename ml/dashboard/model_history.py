"""The model page's figures from MLflow: champion, training runs and their metrics over time.

The snapshot says which model version served each run; how each training went lives in
MLflow. This module only reads (search runs, get aliases): it never creates the tracking
database, and returns None when there is none yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# The defaults of ml.train.config.TrainConfig (not imported: it pulls in the trainers).
EXPERIMENT_NAME = "affinity-recommenders"
MODEL_NAME = "affinity-recommender"
TRAIN_RUN_TAG = ("pipeline", "affinity-train")
# Where `make mlflow` serves the UI; the same variable the Airflow "MLflow run" link reads.
MLFLOW_UI_URL_ENV = "AFFINITY_MLFLOW_UI_URL"
DEFAULT_MLFLOW_UI_URL = "http://localhost:5000"
# Test-window metrics of the ALS candidate, logged on each training's parent run.
HEADLINE_METRICS = (
    "ndcg_at_10",
    "precision_at_10",
    "recall_at_10",
    "map_at_10",
    "catalog_coverage",
    "popularity.ndcg_at_10",
)


@dataclass
class ModelHistory:
    """What MLflow knows about the recommender."""

    experiment_id: str | None
    champion: str | None
    challenger: str | None
    runs: pd.DataFrame  # one row per training: as_of, decision, reason, metrics, url


def mlflow_ui_url() -> str:
    """Base URL of the MLflow UI (``AFFINITY_MLFLOW_UI_URL``, default ``make mlflow``'s)."""
    return os.environ.get(MLFLOW_UI_URL_ENV, DEFAULT_MLFLOW_UI_URL).rstrip("/")


def run_url(experiment_id: str, run_id: str) -> str:
    """URL of one MLflow run in the UI."""
    return f"{mlflow_ui_url()}/#/experiments/{experiment_id}/runs/{run_id}"


def experiment_url(experiment_id: str) -> str:
    """URL of an experiment's run list in the UI."""
    return f"{mlflow_ui_url()}/#/experiments/{experiment_id}"


def model_url(name: str = MODEL_NAME) -> str:
    """URL of a registered model's versions in the UI."""
    return f"{mlflow_ui_url()}/#/models/{name}"


def _sqlite_file(tracking_uri: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(tracking_uri[len(prefix) :]) if tracking_uri.startswith(prefix) else None


def model_history(
    tracking_uri: str, *, experiment: str = EXPERIMENT_NAME, model: str = MODEL_NAME
) -> ModelHistory | None:
    """Read the training runs and the aliases; None when there is no tracking store yet.

    Parameters
    ----------
    tracking_uri : str
        MLflow tracking (and registry) URI, e.g. ``sqlite:///<home>/mlflow.db``.
    experiment, model : str
        Experiment and registered model names (``TrainConfig``'s defaults).
    """
    database = _sqlite_file(tracking_uri)
    if database is not None and not database.exists():
        return None  # MlflowClient would create an empty database: only read
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return ModelHistory(None, None, None, _runs_frame([]))

    def alias(name: str) -> str | None:
        try:
            return str(client.get_model_version_by_alias(model, name).version)
        except MlflowException:
            return None

    key, value = TRAIN_RUN_TAG
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.{key} = '{value}'",
        order_by=["attributes.start_time ASC"],
        max_results=1000,
    )
    rows = [
        {
            "as_of": run.data.tags.get("as_of") or run.data.params.get("as_of"),
            "run_name": run.info.run_name,
            "decision": run.data.tags.get("gate.decision", "-"),
            "model_version": run.data.tags.get("gate.model_version", "-"),
            "reason": run.data.tags.get("gate.reason", ""),
            **{name: run.data.metrics.get(name) for name in HEADLINE_METRICS},
            "started": pd.Timestamp(run.info.start_time, unit="ms"),
            "url": run_url(found.experiment_id, run.info.run_id),
        }
        for run in runs
    ]
    return ModelHistory(
        found.experiment_id, alias("champion"), alias("challenger"), _runs_frame(rows)
    )


def _runs_frame(rows: list[dict]) -> pd.DataFrame:
    columns = ["as_of", "run_name", "decision", "model_version", "reason", *HEADLINE_METRICS]
    return pd.DataFrame(rows, columns=[*columns, "started", "url"])


def metrics_long(runs: pd.DataFrame) -> pd.DataFrame:
    """The headline metrics as ``as_of, metric, value`` rows (for a line chart)."""
    present = [m for m in HEADLINE_METRICS if m in runs and runs[m].notna().any()]
    long = runs.melt(id_vars=["as_of"], value_vars=present, var_name="metric", value_name="value")
    return long.dropna(subset=["value"]).reset_index(drop=True)
