"""One training run's candidates: recipe, fits on the test window, gate, registration.

Called by :func:`ml.train.trainer.train` inside the run's MLflow parent run:

1. the recipe: the champion's recent one (nightly) or a search on the validation window
   (weekly), whose chosen family and the reason it won become tags;
2. every candidate family fit on the history before the test window, each in a child run
   (the chosen family, ALS and BPR for comparison in tuning runs, popularity);
3. the gate: the chosen model against popularity and the champion as of this date; when
   no personalized model beats popularity, the popularity blend is tried in its place
   and the gate's reason says so;
4. the gated model registered (plus its re-fit on the whole history, what scoring
   serves), its alias set, and the run's fingerprint tagged last (a finished run).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import mlflow
import polars as pl

from ml.dates import data_through
from ml.spark.sizing import spark_candidates
from ml.train import registry, tracking
from ml.train.bundle import TrainedRecommender
from ml.train.config import PERSONALIZED_FAMILIES, Recipe, TrainConfig
from ml.train.evaluate import Evaluation, evaluate_model, fit_recipe
from ml.train.gate import GateDecision, decide, evaluate_champion
from ml.train.history import build_training_data, distinct_pairs
from ml.train.interactions import HandedEvents, TrainingData, segments_of
from ml.train.recipes import (
    bpr_skipped_because,
    candidate_warm_start,
    dense_skipped_because,
    family_skipped_because,
    recent_champion_recipe,
)
from ml.train.review import apply_decision, log_evaluation, log_plots, log_search, recipe_params
from ml.train.split import TimeSplit, build_evaluation_window
from ml.train.tuning import SearchResult, search_recipe

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Outcome:
    """What :func:`run_candidates` hands back to the trainer."""

    decision: str
    reason: str
    model_version: str | None
    metrics: dict[str, dict[str, float]]
    recipe: Recipe
    family: str | None


def search_gate(
    events: pl.DataFrame, split: TimeSplit, dense_shape: tuple[int, int], config: TrainConfig
) -> Callable[[str, TrainingData], str | None]:
    """Why the search leaves a family out, judged on the whole evaluated history.

    The search fits on a sample of customers, so its own matrices are far below the
    limits that rule a candidate out (at 10M events the sample had ~1M pairs, the
    candidates' history 3.8M > ``bpr_max_pairs``: eight BPR trials, a minute, for a family
    that could not be fit). BPR is judged on the distinct pairs before the test window
    (counted once, when first asked); the dense families on ``dense_shape``.
    """
    n_customers, n_products = dense_shape
    pairs: list[int] = []

    def allowed(family: str, training: TrainingData) -> str | None:
        if family == "bpr" and config.bpr_enabled and not pairs:
            pairs.append(distinct_pairs(events, split.test_start))
        return family_skipped_because(
            family, pairs[0] if pairs else 0, n_customers, n_products, config
        )

    return allowed


def _choose_recipe(events, categories, split, config, champion_version, dense_shape):
    """The run's recipe: reused from a recent champion, searched, or the configured one."""
    recipe, tuned_as_of = config.recipe, split.as_of.date()
    name = config.registered_model_name
    reused = (
        recent_champion_recipe(name, tuned_as_of, config, champion_version)
        if config.search.budget
        else None
    )
    search: SearchResult | None = None
    if reused is not None:
        recipe, tuned_as_of = reused
        # recipe.tuned_as_of is the tuning run's exclusive end: its label is the day before.
        tuned_label = data_through(tuned_as_of)
        log.info("search skipped: the champion's recipe was tuned on data up to %s", tuned_label)
        tracking.tag_run(
            {"search": f"reused the champion's recipe tuned on data up to {tuned_label}"}
        )
    elif config.search.budget > 0:
        search = search_recipe(
            events,
            recipe,
            split.validation_start,
            split.test_start,
            config.search,
            config.seed,
            categories=categories,
            family_allowed=search_gate(events, split, dense_shape, config),
        )
        recipe = search.best
        log_search(search)
        tracking.tag_run({"search.why": search.why()[:5000]})
        if search.stopped:
            tracking.tag_run({"search.stopped": search.stopped})
    return recipe, tuned_as_of, search


def _fit_and_evaluate(
    family: str, recipe: Recipe, training, window, config, eval_segments, warm, champion_version
) -> tuple[Any, Evaluation, str]:
    """Fit one family in its own child run and evaluate it on the test window."""
    family_recipe = dataclasses.replace(recipe, family=family)
    with mlflow.start_run(run_name=family, nested=True) as child:
        # The label is the last day of data, like the parent run's (window.end is exclusive).
        tracking.tag_run({"model_family": family, "as_of": data_through(window.end).isoformat()})
        mlflow.log_params(tracking.flatten(recipe_params(family_recipe)))
        started = time.perf_counter()
        if family == "als" and warm is not None:
            tracking.tag_run({"warm_start": f"champion v{champion_version} (evaluated model)"})
            model = fit_recipe(
                family_recipe,
                training,
                config.seed,
                warm_start=warm,
                iterations=config.refit_iterations,
            )
        else:
            model = fit_recipe(family_recipe, training, config.seed)
        fit_seconds = time.perf_counter() - started
        evaluation = evaluate_model(model, training, window, config.ks, eval_segments)
        log_evaluation(evaluation)
        mlflow.log_metrics({"fit_seconds": fit_seconds, "eval_seconds": evaluation.seconds})
        return model, evaluation, child.info.run_id


def _beats(candidate: float, baseline: float) -> bool:
    return math.isfinite(candidate) and math.isfinite(baseline) and candidate > baseline


def run_candidates(
    handed: HandedEvents,
    segments: pl.DataFrame | None,
    categories: pl.DataFrame | None,
    split: TimeSplit,
    config: TrainConfig,
    run_id: str,
    fingerprint: str,
) -> Outcome:
    """Choose the recipe, fit and evaluate the candidates, gate and register (see module).

    The events are taken from ``handed`` and freed before the serving re-fit.
    """
    name = config.registered_model_name
    as_of_date = split.as_of.date()
    events = handed.take()
    dense_shape = (
        events.filter(pl.col("occurred_at") < split.history_end)
        .select(pl.col("customer_id").n_unique(), pl.col("product_id").n_unique())
        .row(0)
    )
    champion_version = registry.champion_as_of(name, as_of_date)

    # 1. The recipe (never tuned on the test window).
    recipe, tuned_as_of, search = _choose_recipe(
        events, categories, split, config, champion_version, dense_shape
    )
    mlflow.log_params(tracking.flatten({"chosen": recipe_params(recipe)}))
    mlflow.log_param("recipe_tuned_as_of", tuned_as_of.isoformat())
    tracking.tag_run({"recipe.family": recipe.family})

    # 2. One training history and test window shared by every candidate.
    training = build_training_data(events, split.test_start, recipe.weighting, categories)
    window = build_evaluation_window(events, training, split.as_of).sample(
        config.max_eval_customers, config.seed
    )
    n_customers, n_products = training.maps.shape
    mlflow.log_metrics(
        {
            "train_customers": n_customers,
            "train_products": n_products,
            "train_pairs": training.strength.nnz,
            "train_density": training.strength.nnz / max(n_customers * n_products, 1),
            "eval_customers": len(window.customer_rows),
            "test_purchases": window.n_purchases,
        }
    )
    if n_customers == 0 or n_products == 0:
        reason = f"no interaction before {split.test_start.date()}: nothing to train on"
        log.warning("training rejected: %s", reason)
        tracking.tag_run({"gate.decision": "rejected", "gate.reason": reason})
        return Outcome("rejected", reason, None, {}, recipe, None)
    eval_segments = segments_of(training.maps.customer_ids[window.customer_rows], segments)
    if eval_segments is None:
        tracking.tag_run({"segments": "unavailable (marts.customer_rfm_segments missing)"})

    # 3. Candidates, each in its own child run.
    families = [recipe.family]
    if search is not None and recipe.family != "als":
        families.append("als")  # the default family, for the review
    if recipe.family != "bpr" and config.bpr_enabled:
        skipped = bpr_skipped_because(search is not None, training.strength.nnz, config)
        if skipped:
            log.info("bpr skipped: %s", skipped)
            tracking.tag_run({"bpr.skipped": skipped})
        else:
            families.append("bpr")
    families.append("popularity")
    # Spark homes: spark_als as a candidate, or the chosen ALS past the size rule.
    recipe, families = spark_candidates(recipe, families, training.strength.nnz)
    champion, champion_error = None, None
    if champion_version is not None:
        try:
            champion = registry.load_version(name, champion_version)
        except Exception as error:  # a broken champion must block promotion, not the run
            log.exception("the champion v%s could not be loaded", champion_version)
            champion_error = f"{type(error).__name__}: {error}"[:300]
    warm = candidate_warm_start(champion, recipe, training, config)
    evaluations: dict[str, Evaluation] = {}
    fitted: dict[str, Any] = {}
    child_runs: dict[str, str] = {}

    def candidate(family: str) -> None:
        model, evaluation, child = _fit_and_evaluate(
            family, recipe, training, window, config, eval_segments, warm, champion_version
        )
        fitted[family], evaluations[family], child_runs[family] = model, evaluation, child

    for family in families:
        candidate(family)
    popularity = evaluations["popularity"]

    # 4. The champion as of this date, on the same window.
    champion_eval = None
    if champion_version is not None:
        method = "failed"
        if champion is not None:
            try:
                champion_eval, method = evaluate_champion(
                    champion.evaluated,
                    events,
                    training,
                    window,
                    config.ks,
                    config.seed,
                    eval_segments,
                    categories=categories,
                )
            except Exception as error:  # a broken champion must block promotion, not the run
                log.exception("the champion v%s could not be evaluated", champion_version)
                champion_error = f"{type(error).__name__}: {error}"[:300]
        tracking.tag_run({"gate.champion_evaluation": method})
        if champion_eval is not None:
            evaluations["champion"] = champion_eval
            mlflow.log_metrics(tracking.finite_metrics(champion_eval.metrics, prefix="champion_"))

    def gate(family: str) -> GateDecision:
        return decide(
            evaluations[family].ndcg_at_10,
            popularity.ndcg_at_10,
            champion_eval.ndcg_at_10 if champion_eval is not None else None,
            champion_version=champion_version,
            eval_customers=len(window.customer_rows),
            margin=config.promotion_margin,
            min_eval_customers=config.min_eval_customers,
            champion_error=champion_error,
        )

    # 5. The gate; the blend steps in when no personalized model beats popularity.
    chosen = recipe.family
    decision = gate(chosen)
    # A review-only spark_als (below the size rule) never changes the decision.
    personalized = {
        f: e.ndcg_at_10
        for f, e in evaluations.items()
        if f in PERSONALIZED_FAMILIES and (f != "spark_als" or recipe.family == "spark_als")
    }
    if personalized and not any(_beats(v, popularity.ndcg_at_10) for v in personalized.values()):
        dense_ban = (
            dense_skipped_because(*dense_shape, config) if recipe.blend.history_weight else None
        )
        if dense_ban:
            recipe = dataclasses.replace(
                recipe, blend=dataclasses.replace(recipe.blend, history_weight=0.0)
            )
        if "blend" not in evaluations:
            candidate("blend")
        figures = ", ".join(f"{f} {v:.4f}" for f, v in sorted(personalized.items()))
        blend_ndcg = evaluations["blend"].ndcg_at_10
        prefix = (
            f"no personalized model beats popularity ({figures} vs {popularity.ndcg_at_10:.4f})"
        )
        if _beats(blend_ndcg, popularity.ndcg_at_10):
            chosen = "blend"
            blend_decision = gate("blend")
            decision = dataclasses.replace(
                blend_decision,
                reason=f"{prefix}; serving the popularity blend (popularity re-ranked by the "
                f"customer's categories and history): {blend_decision.reason}",
            )
        else:
            decision = dataclasses.replace(
                decision,
                reason=f"{prefix}, nor does the popularity blend ({blend_ndcg:.4f}): "
                f"{decision.reason}",
            )
    chosen_recipe = dataclasses.replace(recipe, family=chosen)

    # 6. Register the gated model (fit before the test window, plus the serving re-fit).
    # Only the chosen model goes on: the champion and the other candidates are freed first,
    # and the events once the re-fit's matrices are built (gigabytes each at 100M events).
    champion = warm = None
    fitted = {chosen: fitted[chosen]}
    evaluated_bundle = TrainedRecommender.from_training(
        fitted[chosen], training, chosen_recipe, as_of=as_of_date.isoformat()
    )
    serving_bundle = evaluated_bundle
    if config.refit_on_full_history:
        full = build_training_data(events, split.history_end, recipe.weighting, categories)
        events = None
        refit_warm = (
            (fitted[chosen], training.maps) if chosen == "als" and config.refit_iterations else None
        )
        serving_bundle = TrainedRecommender.from_training(
            fit_recipe(
                chosen_recipe,
                full,
                config.seed,
                warm_start=refit_warm,
                iterations=(config.refit_iterations or None) if refit_warm else None,
            ),
            full,
            chosen_recipe,
            as_of=as_of_date.isoformat(),
        )
    with mlflow.start_run(run_id=child_runs[chosen], nested=True):
        _, version = tracking.log_recommender(serving_bundle, evaluated_bundle, name)
    apply_decision(name, version, decision, run_id, child_runs[chosen], chosen_recipe, tuned_as_of)
    if decision.promoted:
        moved = registry.promote(name, version, as_of_date)
        tracking.tag_run({"gate.alias_moved": str(moved).lower()})

    # 7. The parent run's summary: headline metrics, the decision, the review plots.
    mlflow.log_metrics(tracking.finite_metrics(evaluations[chosen].metrics))
    for family, evaluation in evaluations.items():
        if family != "champion":  # the champion's figures are logged as champion_*
            mlflow.log_metrics(tracking.finite_metrics(evaluation.metrics, prefix=f"{family}."))
    ratio = (
        evaluations[chosen].ndcg_at_10 / popularity.ndcg_at_10
        if popularity.ndcg_at_10
        else float("nan")
    )
    mlflow.log_metrics(tracking.finite_metrics({"ndcg_at_10_vs_popularity": ratio}))
    if config.log_plots and len(window.customer_rows):
        log_plots(evaluations, training)
    # Last: a version with its fingerprint is a finished run a retry may reuse.
    tracking.set_version_tags(name, version, {registry.FINGERPRINT_TAG: fingerprint})
    tracking.tag_run({registry.FINGERPRINT_TAG: fingerprint})
    return Outcome(
        decision.decision,
        decision.reason,
        version,
        {family: evaluation.metrics for family, evaluation in evaluations.items()},
        chosen_recipe,
        chosen,
    )


__all__ = ["Outcome", "run_candidates"]
