"""The scoring run in MLflow: which rules a night's recommendations were served under.

Every ``score`` stage logs one small run in the recommenders' experiment
(``affinity-recommenders``), beside the training runs, tagged ``pipeline =
affinity-score`` (the dashboard's training history filters on ``affinity-train``, so it
never mixes the two). The run holds the :class:`~ml.serving.config.ScoreConfig` as
parameters (``score.demote_turning_negative`` among them), the serving model as tags, and
what the rules did as metrics (``demoted_products``, ``demoted_rows``, ``rows``,
``catalog_coverage``). A run per scoring keeps the history per logical date, which a tag on
the model version (overwritten by every night) would not.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import mlflow

from ml.serving.config import ScoreConfig
from ml.train import tracking
from ml.train.config import TrainConfig

log = logging.getLogger(__name__)

# The recommenders' experiment: where the serving model was trained and reviewed.
EXPERIMENT_NAME = TrainConfig().experiment_name
RUN_TAG = ("pipeline", "affinity-score")


def log_scoring_run(
    report, config: ScoreConfig, *, experiment_name: str = EXPERIMENT_NAME
) -> dict[str, str]:
    """Log one scoring run; return its ``run_id`` and ``experiment_id``.

    Parameters
    ----------
    report : ml.serving.recommend.ScoreReport
    config : ScoreConfig
        The rules the recommendations were scored under.
    experiment_name : str
    """
    experiment_id = tracking.configure(experiment_name)
    day = report.logical_date.isoformat()
    with mlflow.start_run(run_name=f"scoring {day}") as run:
        mlflow.log_params({f"score.{k}": v for k, v in asdict(config).items()})
        key, value = RUN_TAG
        tracking.tag_run(
            {
                key: value,
                "as_of": day,
                "serving.model_name": report.model_name,
                "serving.model_version": report.model_version,
            }
        )
        mlflow.log_metrics(
            tracking.finite_metrics(
                {
                    "demoted_products": report.demoted_products,
                    "demoted_rows": report.demoted_rows,
                    "rows": report.rows,
                    "customers": report.customers,
                    "catalog_coverage": report.catalog_coverage,
                }
            )
        )
    log.info("scoring run %s logged to MLflow experiment %s", run.info.run_id, experiment_name)
    return {"run_id": run.info.run_id, "experiment_id": experiment_id}
