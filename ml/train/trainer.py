"""The training step: split, tune, fit the candidates, gate, record everything in MLflow.

:func:`train` is what ``affinity train [--as-of DATE]`` and the Airflow DAG call. One call
is one MLflow parent run in the pipeline's experiment, with one child run per candidate
(tag ``model_family``: ``als``, ``bpr``, ``popularity``). The ALS candidate is logged as a
pyfunc model and registered; the gate then gives it the ``champion`` or ``challenger``
alias and writes its reasons as tags on the run and on the model version.

Windows for ``as_of = D`` (``eval_days = validation_days = 30``)::

    ... training ...  | validation [D-60, D-30) | test [D-30, D) | D (not evaluated)
    search fits before D-60, scores on validation; candidates fit before D-30, score on test;
    the served model is re-fit on everything up to the end of D.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import mlflow
import polars as pl
from threadpoolctl import threadpool_limits

from ml.config import paths
from ml.dates import day_start
from ml.train import tracking
from ml.train.bundle import TrainedRecommender
from ml.train.config import Recipe, TrainConfig
from ml.train.evaluate import Evaluation, evaluate_model, fit_recipe
from ml.train.gate import decide, evaluate_champion
from ml.train.interactions import (
    TimeSplit,
    build_evaluation_window,
    build_training_data,
    load_events,
    load_segments,
    segments_of,
)
from ml.train.recipes import bpr_skipped_because, candidate_warm_start, recent_champion_recipe
from ml.train.review import apply_decision, log_evaluation, log_plots, log_search, recipe_params
from ml.train.tuning import SearchResult, search_als

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What one training run produced.

    Attributes
    ----------
    as_of : date
        The run date (test window ends at its start).
    run_id, experiment_id : str
        The MLflow parent run and experiment.
    decision : str
        ``"champion"``, ``"challenger"`` or ``"rejected"`` (nothing could be fit).
    reason : str
        Why, in one sentence.
    model_name : str
        Registered model name.
    model_version : str or None
        The registered version (None when nothing was registered).
    metrics : dict of str to dict
        Test-window figures per family (``"als"``, ``"bpr"``, ``"popularity"``) and of
        the previous champion (``"champion"``) when there was one.
    recipe : Recipe
        The ALS recipe after the search.
    seconds : float
        Wall time of the whole step.
    """

    as_of: date
    run_id: str
    experiment_id: str
    decision: str
    reason: str
    model_name: str
    model_version: str | None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    recipe: Recipe | None = None
    seconds: float = 0.0

    @property
    def promoted(self) -> bool:
        return self.decision == "champion"


def _resolve_as_of(as_of: str | date | datetime | None, warehouse: Path) -> datetime:
    """Return the run date; ``None`` means the day after the latest event in the warehouse."""
    if as_of is not None:
        return day_start(as_of)
    from ml.warehouse import connect

    with connect(warehouse, read_only=True) as con:
        try:
            latest = con.sql("SELECT max(occurred_at) FROM marts.interaction_events").fetchall()[0][
                0
            ]
        except duckdb.CatalogException as error:  # the table is missing: say what to do
            raise RuntimeError(
                "marts.interaction_events is not in the warehouse: build the marts first "
                "(`affinity run`, or `dbt build` in dbt_project/)"
            ) from error
    if latest is None:
        raise RuntimeError(
            "marts.interaction_events is empty: ingest data and build the marts first"
        )
    return day_start(latest) + timedelta(days=1)


def train(as_of: str | date | None = None, *, config: TrainConfig | None = None) -> TrainResult:
    """Train, evaluate and review the recommenders as of a date; gate the new model.

    Parameters
    ----------
    as_of : str or date, optional
        Run date ``YYYY-MM-DD``: the test window is the ``eval_days`` days before it.
        Default: the day after the latest interaction event.
    config : TrainConfig, optional
        Defaults are the values tuned on Online Retail II.

    Returns
    -------
    TrainResult

    Raises
    ------
    ml.train.interactions.MissingWarehouseTable
        When the marts are not built yet.
    """
    config = config or TrainConfig()
    started = time.perf_counter()
    home = paths()
    as_of_start = _resolve_as_of(as_of, home.warehouse)
    split = TimeSplit.from_as_of(as_of_start, config.eval_days, config.validation_days)
    log.info(
        "training on data up to and including %s: validation [%s, %s), test [%s, %s)",
        data_through(split),
        split.validation_start.date(),
        split.test_start.date(),
        split.test_start.date(),
        split.as_of.date(),
    )
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(split, config, home, started)


def _train(split: TimeSplit, config: TrainConfig, home, started: float) -> TrainResult:
    load_started = time.perf_counter()
    events = load_events(split.history_end, home.warehouse)
    load_seconds = time.perf_counter() - load_started
    log.info(
        "loaded %d events in %.2fs (%.0f rows/s)",
        events.height,
        load_seconds,
        events.height / max(load_seconds, 1e-9),
    )
    segments = load_segments(home.warehouse)
    experiment_id = tracking.configure(config.experiment_name, home)
    # Labels name the last day of data (the logical date); the windows stay half-open.
    as_of_text = data_through(split).isoformat()
    with mlflow.start_run(run_name=f"train {as_of_text}") as parent:
        tracking.tag_run({"as_of": as_of_text, "pipeline": "affinity-train"})
        mlflow.log_params(
            {
                "as_of": as_of_text,
                "eval_days": config.eval_days,
                "validation_days": config.validation_days,
                "test_window": f"[{split.test_start.date()}, {split.as_of.date()})",
                "validation_window": f"[{split.validation_start.date()}, {split.test_start.date()})",
                "seed": config.seed,
                "promotion_margin": config.promotion_margin,
                "min_eval_customers": config.min_eval_customers,
                "max_eval_customers": config.max_eval_customers,
                "search.budget": config.search.budget,
                "refit_on_full_history": config.refit_on_full_history,
                "refit_iterations": config.refit_iterations,
            }
        )
        _log_inputs(events, split, home)
        result = _run_candidates(events, segments, split, config, parent.info.run_id, experiment_id)
        result.seconds = time.perf_counter() - started
        mlflow.log_metric("train_seconds", result.seconds)
        log.info(
            "training on data up to and including %s done in %.1fs: %s (%s)",
            as_of_text,
            result.seconds,
            result.decision,
            result.reason,
        )
        return result


def data_through(split: TimeSplit) -> date:
    """The last day of data a training sees: its logical date, the label of its runs.

    ``split.as_of`` is the exclusive end (midnight after that day) the windows use.
    """
    return (split.as_of - timedelta(days=1)).date()


def _log_inputs(events: pl.DataFrame, split: TimeSplit, home) -> None:
    source = f"{home.warehouse}#marts.interaction_events"
    training = events.filter(pl.col("occurred_at") < split.test_start)
    test = events.filter(
        (pl.col("occurred_at") >= split.test_start) & (pl.col("occurred_at") < split.as_of)
    )
    as_of = data_through(split).isoformat()
    tracking.log_events_dataset(
        training,
        context="training",
        source=source,
        as_of=as_of,
        window=f"< {split.test_start.date()}",
    )
    tracking.log_events_dataset(
        test,
        context="evaluation",
        source=source,
        as_of=as_of,
        window=f"[{split.test_start.date()}, {split.as_of.date()})",
    )
    mlflow.log_metrics({"events_training": training.height, "events_test_window": test.height})


def _run_candidates(events, segments, split, config, run_id, experiment_id) -> TrainResult:
    recipe = config.recipe
    name = config.registered_model_name
    as_of_date = split.as_of.date()

    def rejected(reason: str) -> TrainResult:
        log.warning("training rejected: %s", reason)
        tracking.tag_run({"gate.decision": "rejected", "gate.reason": reason})
        return TrainResult(
            as_of_date, run_id, experiment_id, "rejected", reason, name, None, {}, recipe
        )

    # 1. Tune ALS on the validation window (never on the test window), unless the champion's
    #    recipe was tuned recently enough to reuse.
    search: SearchResult | None = None
    tuned_as_of = as_of_date
    reused = recent_champion_recipe(name, as_of_date, config) if config.search.budget else None
    if reused is not None:
        recipe, tuned_as_of = reused
        # recipe.tuned_as_of is the tuning run's exclusive end: its label is the day before.
        tuned_label = tuned_as_of - timedelta(days=1)
        log.info(
            "search skipped: the champion's recipe was tuned on data up to %s "
            "(SearchConfig.reuse_days %d)",
            tuned_label,
            config.search.reuse_days,
        )
        tracking.tag_run(
            {"search": f"reused the champion's recipe tuned on data up to {tuned_label}"}
        )
    elif config.search.budget > 0:
        search = search_als(
            events, recipe, split.validation_start, split.test_start, config.search, config.seed
        )
        recipe = search.best
        log_search(search)
    mlflow.log_params(tracking.flatten({"chosen": recipe_params(recipe)}))
    mlflow.log_param("recipe_tuned_as_of", tuned_as_of.isoformat())

    # 2. One training history and test window shared by every candidate.
    training = build_training_data(events, split.test_start, recipe.weighting)
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
    log.info(
        "training matrix %d customers x %d products, %d pairs; %d customers to evaluate",
        n_customers,
        n_products,
        training.strength.nnz,
        len(window.customer_rows),
    )
    if n_customers == 0 or n_products == 0:
        return rejected(f"no interaction before {split.test_start.date()}: nothing to train on")

    eval_segments = segments_of(training.maps.customer_ids[window.customer_rows], segments)
    if eval_segments is None:
        tracking.tag_run({"segments": "unavailable (marts.customer_rfm_segments missing)"})

    # 3. Candidates, each in its own child run.
    families = ["als", "popularity"]
    if config.bpr_enabled:
        skipped = bpr_skipped_because(search is not None, training.strength.nnz, config)
        if skipped:
            log.info("bpr skipped: %s", skipped)
            tracking.tag_run({"bpr.skipped": skipped})
        else:
            families.insert(1, "bpr")
    champion_version = tracking.alias_version(name, tracking.CHAMPION)
    champion, champion_error = None, None
    if champion_version is not None:
        try:
            champion = tracking.load_registered(name, tracking.CHAMPION)
        except Exception as error:  # a broken champion must block promotion, not the run
            log.exception("the champion v%s could not be loaded", champion_version)
            champion_error = f"{type(error).__name__}: {error}"[:300]
    warm = candidate_warm_start(champion, recipe, training, config)
    evaluations: dict[str, Evaluation] = {}
    fitted: dict[str, Any] = {}
    child_runs: dict[str, str] = {}
    for family in families:
        family_recipe = dataclasses.replace(recipe, family=family)
        with mlflow.start_run(run_name=family, nested=True) as child:
            child_runs[family] = child.info.run_id
            tracking.tag_run({"model_family": family, "as_of": data_through(split).isoformat()})
            mlflow.log_params(tracking.flatten(recipe_params(family_recipe)))
            fit_started = time.perf_counter()
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
            fit_seconds = time.perf_counter() - fit_started
            evaluation = evaluate_model(model, training, window, config.ks, eval_segments)
            log_evaluation(evaluation)
            mlflow.log_metrics({"fit_seconds": fit_seconds, "eval_seconds": evaluation.seconds})
            evaluations[family] = evaluation
            fitted[family] = model
    als, popularity = evaluations["als"], evaluations["popularity"]

    # 4. The current champion on the same window.
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
                )
            except Exception as error:  # a broken champion must block promotion, not the run
                log.exception("the champion v%s could not be evaluated", champion_version)
                champion_error = f"{type(error).__name__}: {error}"[:300]
        tracking.tag_run({"gate.champion_evaluation": method})
        if champion_eval is not None:
            evaluations["champion"] = champion_eval
            mlflow.log_metrics(tracking.finite_metrics(champion_eval.metrics, prefix="champion_"))

    decision = decide(
        als.ndcg_at_10,
        popularity.ndcg_at_10,
        champion_eval.ndcg_at_10 if champion_eval is not None else None,
        champion_version=champion_version,
        eval_customers=len(window.customer_rows),
        margin=config.promotion_margin,
        min_eval_customers=config.min_eval_customers,
        champion_error=champion_error,
    )

    # 5. Register the ALS candidate (fit on the test-window history, plus a serving re-fit).
    evaluated_bundle = TrainedRecommender.from_training(
        fitted["als"],
        training,
        dataclasses.replace(recipe, family="als"),
        as_of=as_of_date.isoformat(),
    )
    serving_bundle = evaluated_bundle
    if config.refit_on_full_history:
        full = build_training_data(events, split.history_end, recipe.weighting)
        # Warm start: the evaluated model already fits all but the last eval_days days.
        warm = (fitted["als"], training.maps) if config.refit_iterations else None
        serving_bundle = TrainedRecommender.from_training(
            fit_recipe(
                dataclasses.replace(recipe, family="als"),
                full,
                config.seed,
                warm_start=warm,
                iterations=config.refit_iterations or None,
            ),
            full,
            dataclasses.replace(recipe, family="als"),
            as_of=as_of_date.isoformat(),
        )
    with mlflow.start_run(run_id=child_runs["als"], nested=True):
        _, version = tracking.log_recommender(serving_bundle, evaluated_bundle, name)
    apply_decision(
        name,
        version,
        decision,
        run_id,
        child_runs["als"],
        dataclasses.replace(recipe, family="als"),
        tuned_as_of,
    )

    # 6. The parent run's summary: headline metrics, the decision, the review plots.
    mlflow.log_metrics(tracking.finite_metrics(als.metrics))
    for family, evaluation in evaluations.items():
        if family != "champion":  # the champion's figures are logged as champion_*
            mlflow.log_metrics(tracking.finite_metrics(evaluation.metrics, prefix=f"{family}."))
    ratio = als.ndcg_at_10 / popularity.ndcg_at_10 if popularity.ndcg_at_10 else float("nan")
    mlflow.log_metrics(tracking.finite_metrics({"ndcg_at_10_vs_popularity": ratio}))
    if config.log_plots:
        log_plots(evaluations, training)
    return TrainResult(
        as_of=as_of_date,
        run_id=run_id,
        experiment_id=experiment_id,
        decision=decision.decision,
        reason=decision.reason,
        model_name=name,
        model_version=version,
        metrics={family: evaluation.metrics for family, evaluation in evaluations.items()},
        recipe=recipe,
    )


__all__ = ["TrainResult", "data_through", "train"]
