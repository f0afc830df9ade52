"""The training step: split, tune, fit the candidates, gate, record everything in MLflow.

:func:`train` is what ``affinity train [--as-of DATE]`` and the Airflow DAG call. One call
is one MLflow parent run in the pipeline's experiment, with one child run per candidate
(tag ``model_family``: ``als``, ``bpr``, ``itemknn``, ``blend``, ``popularity``). The gated
model is logged as a pyfunc model and registered; the gate then gives it the
``champion`` or ``challenger`` alias and writes its reasons as tags on the run and on the
model version (see :mod:`ml.train.candidates`).

Windows for ``as_of = D`` (at least ``eval_days = validation_days = 30``, doubled while
they hold fewer than ``window_min_customers`` customers to evaluate, see
:mod:`ml.train.windows`)::

    ... training ...  | validation [D-2w, D-w) | test [D-w, D) | D (not evaluated)
    search fits before D-2w, scores on validation; candidates fit before D-w, score on test;
    the served model is re-fit on everything up to the end of D.

A re-run of a date on the same inputs reuses the version it registered (see
:mod:`ml.train.registry`): retries never register duplicates.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import mlflow
import polars as pl
from threadpoolctl import threadpool_limits

from ml.config import paths
from ml.dates import data_through, day_start
from ml.train import registry, tracking
from ml.train.candidates import run_candidates
from ml.train.categories import load_product_categories
from ml.train.config import Recipe, TrainConfig
from ml.train.interactions import HandedEvents, load_events, load_segments
from ml.train.split import TimeSplit
from ml.train.windows import adaptive_split

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
        The gated model's recipe (after the search).
    seconds : float
        Wall time of the whole step.
    family : str or None
        Family of the registered model (``als``, ``bpr``, ``itemknn``, ``blend``).
    reused : bool
        True when a finished run on the same inputs was found and nothing was trained.
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
    family: str | None = None
    reused: bool = False

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
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(as_of_start, config, home, started)


def _reused_result(
    version, as_of: date, config: TrainConfig, experiment_id: str, started: float
) -> TrainResult:
    """The result of the finished run that trained on the same inputs (nothing trained)."""
    tags = version.tags
    run_id = tags.get("parent_run_id", "")
    metrics: dict[str, dict[str, float]] = {}
    if run_id:
        for key, value in mlflow.MlflowClient().get_run(run_id).data.metrics.items():
            family, dot, metric = key.partition(".")
            if dot:
                metrics.setdefault(family, {})[metric] = value
            elif key.startswith("champion_"):
                metrics.setdefault("champion", {})[key.removeprefix("champion_")] = value
    recipe = Recipe.from_json(tags["recipe.json"]) if "recipe.json" in tags else None
    log.info(
        "train: v%s already holds a finished run on the same inputs (%s): reused, nothing trained",
        version.version,
        run_id,
    )
    return TrainResult(
        as_of=as_of,
        run_id=run_id,
        experiment_id=experiment_id,
        decision=tags.get("gate.decision", "challenger"),
        reason=tags.get("gate.reason", ""),
        model_name=config.registered_model_name,
        model_version=str(version.version),
        metrics=metrics,
        recipe=recipe,
        seconds=time.perf_counter() - started,
        family=recipe.family if recipe else None,
        reused=True,
    )


def _train(as_of_start: datetime, config: TrainConfig, home, started: float) -> TrainResult:
    load_started = time.perf_counter()
    history_end = as_of_start + timedelta(days=1)
    events = load_events(history_end, home.warehouse)
    load_seconds = time.perf_counter() - load_started
    log.info(
        "loaded %d events in %.2fs (%.0f rows/s)",
        events.height,
        load_seconds,
        events.height / max(load_seconds, 1e-9),
    )
    segments = load_segments(home.warehouse)
    categories = load_product_categories(home.warehouse)
    experiment_id = tracking.configure(config.experiment_name, home)
    as_of_date = as_of_start.date()
    # Labels name the last day of data (the logical date); the windows stay half-open.
    as_of_text = data_through(as_of_start).isoformat()
    fingerprint = registry.training_fingerprint(as_of_date, events, categories, config)
    existing = registry.version_with_fingerprint(config.registered_model_name, fingerprint)
    if existing is not None:
        return _reused_result(existing, as_of_date, config, experiment_id, started)
    split, test_window, validation_window = adaptive_split(
        events,
        as_of_start,
        config.eval_days,
        config.validation_days,
        config.window_min_customers,
        config.window_max_share,
    )
    log.info(
        "training on data up to and including %s: validation [%s, %s), test [%s, %s)",
        as_of_text,
        split.validation_start.date(),
        split.test_start.date(),
        split.test_start.date(),
        split.as_of.date(),
    )
    with mlflow.start_run(run_name=f"train {as_of_text}") as parent:
        tracking.tag_run(
            {
                "as_of": as_of_text,
                "pipeline": "affinity-train",
                "window.test": test_window.describe(),
                "window.validation": validation_window.describe(),
            }
        )
        mlflow.log_params(
            {
                "as_of": as_of_text,
                "eval_days": (split.as_of - split.test_start).days,
                "validation_days": (split.test_start - split.validation_start).days,
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
        handed = HandedEvents(events)
        del events  # so that run_candidates can free them before the serving re-fit
        outcome = run_candidates(
            handed, segments, categories, split, config, parent.info.run_id, fingerprint
        )
        result = TrainResult(
            as_of=as_of_date,
            run_id=parent.info.run_id,
            experiment_id=experiment_id,
            model_name=config.registered_model_name,
            **vars(outcome),  # decision, reason, model_version, metrics, recipe, family
        )
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


def _log_inputs(events: pl.DataFrame, split: TimeSplit, home) -> None:
    source = f"{home.warehouse}#marts.interaction_events"
    training = events.filter(pl.col("occurred_at") < split.test_start)
    test = events.filter(
        (pl.col("occurred_at") >= split.test_start) & (pl.col("occurred_at") < split.as_of)
    )
    as_of = data_through(split.as_of).isoformat()
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


__all__ = ["TrainResult", "train"]
