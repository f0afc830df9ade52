"""What a data scientist reviews in MLflow: a candidate's params, metrics, plots, the gate.

Helpers of :mod:`ml.train.trainer` that write into the active MLflow run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from datetime import date
from typing import Any

import mlflow

from ml.train import plots, tracking
from ml.train.config import Recipe
from ml.train.evaluate import Evaluation
from ml.train.gate import GateDecision
from ml.train.metrics import recommendation_frequency
from ml.train.tuning import SearchResult

log = logging.getLogger(__name__)


def recipe_params(recipe: Recipe) -> dict[str, Any]:
    """The parts of a recipe that matter for its family (what a reviewer needs to see)."""
    params: dict[str, Any] = {"family": recipe.family}
    if recipe.family == "popularity":
        return params
    params["weighting"] = dataclasses.asdict(recipe.weighting)
    if recipe.family in ("als", "spark_als"):
        params["confidence"] = dataclasses.asdict(recipe.confidence)
    # spark_als fits the recipe's ALS settings with Spark MLlib.
    section = "als" if recipe.family == "spark_als" else recipe.family
    params[recipe.family] = dataclasses.asdict(getattr(recipe, section))
    return params


def log_search(search: SearchResult) -> None:
    mlflow.log_metrics(
        tracking.finite_metrics(
            {
                "search_fits": len(search.trials),
                "search_customers": search.customers,
                "search_seconds": search.seconds,
                "validation_ndcg_at_10": search.best_ndcg_at_10,
            }
        )
    )
    if search.trials:
        tracking.log_table(search.trials_frame(), "search/trials.csv")


def log_evaluation(evaluation: Evaluation) -> None:
    mlflow.log_metrics(tracking.finite_metrics(evaluation.metrics))
    for segment, figures in evaluation.segment_metrics.items():
        mlflow.log_metrics(
            tracking.finite_metrics(figures, suffix=f"__segment_{tracking.slug(segment)}")
        )


def apply_decision(
    name: str,
    version: str,
    decision: GateDecision,
    run_id: str,
    model_run_id: str,
    recipe: Recipe,
    tuned_as_of: date,
) -> None:
    """Write the decision on the parent run, the model's run and the version.

    A challenger gets the ``challenger`` alias here; a promotion's ``champion`` alias is
    :func:`ml.train.registry.promote`'s job (it records the date and only moves forward).
    """
    client = mlflow.MlflowClient()
    alias = tracking.CHAMPION if decision.promoted else tracking.CHALLENGER
    if not decision.promoted:
        client.set_registered_model_alias(name, alias, version)
    tags = {**decision.tags(), "gate.model_version": version}
    tracking.tag_run(tags)
    for key, value in tags.items():
        client.set_tag(model_run_id, key, value)
    tracking.set_version_tags(
        name,
        version,
        {
            **decision.tags(),
            "parent_run_id": run_id,
            # What the next nightly run needs to reuse this recipe without a search.
            "recipe.tuned_as_of": tuned_as_of.isoformat(),
            "recipe.json": recipe.to_json(),
        },
    )
    mlflow.log_metrics(
        tracking.finite_metrics(
            {
                "gate_promoted": float(decision.promoted),
                "gate_candidate_ndcg_at_10": decision.candidate_ndcg_at_10,
                "gate_champion_ndcg_at_10": decision.champion_ndcg_at_10
                if decision.champion_ndcg_at_10 is not None
                else math.nan,
                "gate_popularity_ndcg_at_10": decision.popularity_ndcg_at_10,
            }
        )
    )
    log.info("model %s version %s -> alias %s", name, version, alias)


def log_plots(evaluations: dict[str, Evaluation], training) -> None:
    figures = {
        "plots/metrics_by_model.png": plots.metrics_comparison(
            {family: e.metrics for family, e in evaluations.items()}
        ),
        "plots/recall_at_k.png": plots.recall_curves(
            {family: e.recall_curve for family, e in evaluations.items()}
        ),
        "plots/recommendation_frequency_vs_popularity.png": plots.frequency_vs_popularity(
            {
                family: recommendation_frequency(e.recommended, training.maps.shape[1])
                for family, e in evaluations.items()
                if e.recommended is not None and family != "champion"
            },
            training.item_popularity,
        ),
        "plots/ndcg_by_segment.png": plots.segment_ndcg(
            {family: e.segment_metrics for family, e in evaluations.items() if e.segment_metrics}
        ),
    }
    for artifact_file, figure in figures.items():
        mlflow.log_figure(figure, artifact_file)
        plots.close(figure)
