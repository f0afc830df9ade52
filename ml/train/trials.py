"""The bookkeeping of one recipe search: validation data, budget, clock, trials.

:mod:`ml.train.tuning` decides *what* to try; :class:`SearchState` fits and validates
one recipe (or one early-stopped run), counts fits against the budget and the time
bound, remembers every trial and never fits the same recipe twice.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from datetime import datetime

import polars as pl

from ml.train.config import Recipe, SearchConfig
from ml.train.evaluate import evaluate_model, fit_recipe
from ml.train.history import build_training_data
from ml.train.interactions import TrainingData, confidence_matrix
from ml.train.models import ALSRecommender, BPRRecommender
from ml.train.significance import CustomerScores, clear_gain
from ml.train.split import EvaluationWindow, build_evaluation_window

log = logging.getLogger(__name__)


def with_knob(recipe: Recipe, knob: str, section: str, value) -> Recipe:
    """Return a copy of ``recipe`` with ``section.knob`` set to ``value``."""
    part = dataclasses.replace(getattr(recipe, section), **{knob: value})
    return dataclasses.replace(recipe, **{section: part})


def knob_value(recipe: Recipe, knob: str, section: str):
    """Return ``section.knob`` of ``recipe``."""
    return getattr(getattr(recipe, section), knob)


class ValidationData:
    """Training matrices and validation window per weighting, built once each."""

    def __init__(
        self,
        events: pl.DataFrame,
        start: datetime,
        end: datetime,
        categories: pl.DataFrame | None = None,
    ) -> None:
        self.events, self.start, self.end, self.categories = events, start, end, categories
        self._cache: dict = {}

    def get(self, recipe: Recipe) -> tuple[TrainingData, EvaluationWindow]:
        if recipe.weighting not in self._cache:
            training = build_training_data(
                self.events, self.start, recipe.weighting, self.categories
            )
            window = build_evaluation_window(self.events, training, self.end)
            self._cache[recipe.weighting] = (training, window)
        return self._cache[recipe.weighting]


def sample_customers(events: pl.DataFrame, max_customers: int, seed: int) -> pl.DataFrame:
    """Keep the events of a seeded sample of at most ``max_customers`` customers (0: all)."""
    customers = events["customer_id"].unique().sort()
    if max_customers <= 0 or len(customers) <= max_customers:
        return events
    chosen = customers.sample(max_customers, seed=seed)
    log.info(
        "search on a sample of %d of %d customers (SearchConfig.max_customers)",
        max_customers,
        len(customers),
    )
    return events.filter(pl.col("customer_id").is_in(chosen.implode()))


class SearchState:
    """The state of one search: data, budget, clock, trials, the best so far."""

    def __init__(self, data: ValidationData, search: SearchConfig, seed: int) -> None:
        self.data, self.config, self.seed = data, search, seed
        self.started = time.perf_counter()
        self.trials: list[dict] = []
        self.fits = 0
        self.stopped: str | None = None
        self.family_best: dict[str, float] = {}
        self.scores: dict[Recipe, float] = {}
        self.customer_scores: dict[Recipe, CustomerScores] = {}

    def beats(
        self, candidate: Recipe, score: float, incumbent: Recipe, incumbent_score: float
    ) -> bool:
        """Whether ``candidate`` beats ``incumbent`` by more than validation noise
        (``SearchConfig.min_gain_se`` paired standard errors, :mod:`ml.train.significance`)."""
        return clear_gain(
            score,
            incumbent_score,
            self.customer_scores.get(candidate),
            self.customer_scores.get(incumbent),
            self.config.min_gain_se,
        )

    def can_fit(self) -> bool:
        if self.fits >= self.config.budget:
            self.stopped = self.stopped or f"budget of {self.config.budget} fits reached"
            return False
        elapsed = time.perf_counter() - self.started
        if self.config.max_seconds and elapsed >= self.config.max_seconds:
            self.stopped = self.stopped or (
                f"time bound of {self.config.max_seconds:g}s reached after {self.fits} fits"
            )
            return False
        return True

    def _record(self, recipe: Recipe, knob: str, value, figures: dict, seconds: float) -> float:
        ndcg = figures.get("ndcg_at_10", float("nan"))
        self.trials.append(
            {
                "trial": len(self.trials),
                "family": recipe.family,
                "knob": knob,
                "value": str(value),
                "val_ndcg_at_10": ndcg,
                "val_recall_at_10": figures.get("recall_at_10", float("nan")),
                "val_catalog_coverage": figures.get("catalog_coverage", float("nan")),
                "seconds": round(seconds, 3),
            }
        )
        if math.isfinite(ndcg) and ndcg > self.family_best.get(recipe.family, -1.0):
            self.family_best[recipe.family] = ndcg
        log.info(
            "search trial %d: %s %s=%s -> val ndcg@10 %.4f",
            len(self.trials) - 1,
            recipe.family,
            knob,
            value,
            ndcg,
        )
        return ndcg

    def score(self, recipe: Recipe, knob: str, value, *, force: bool = False) -> float | None:
        """Fit and validate one recipe; None when the budget or the clock says stop.

        A recipe already validated is not fit again (its score is remembered); ``force``
        fits it whatever the budget and clock (the start recipe, the reference of all).
        """
        if recipe in self.scores:
            return self.scores[recipe]
        if not force and not self.can_fit():
            return None
        started = time.perf_counter()
        training, window = self.data.get(recipe)
        self.fits += 1
        if len(window.customer_rows) == 0 or training.strength.nnz == 0:
            return self.record(recipe, knob, value, {}, time.perf_counter() - started)
        model = fit_recipe(recipe, training, self.seed)
        evaluation = evaluate_model(model, training, window)
        self.customer_scores[recipe] = CustomerScores.of(evaluation, training, window)
        return self.record(recipe, knob, value, evaluation.metrics, time.perf_counter() - started)

    def record(self, recipe: Recipe, knob: str, value, figures: dict, seconds: float) -> float:
        score = self._record(recipe, knob, value, figures, seconds)
        self.scores[recipe] = score
        return score

    def early_stopped(
        self, recipe: Recipe, checkpoints: tuple[int, ...], section: str
    ) -> tuple[Recipe, float] | None:
        """Fit ALS or BPR once through ``checkpoints`` iterations; return the best count
        (the ALS search keeps it only when it clearly beats the recipe's own, :meth:`beats`).
        """
        checkpoints = tuple(sorted({int(c) for c in checkpoints if int(c) > 0}))
        if not checkpoints or not self.can_fit():
            return None
        training, window = self.data.get(recipe)
        self.fits += 1
        if len(window.customer_rows) == 0 or training.strength.nnz == 0:
            return None
        if section == "als":
            matrix = confidence_matrix(training.strength, recipe.confidence)
            model = ALSRecommender(recipe.als, seed=self.seed)
        else:
            matrix = training.strength
            model = BPRRecommender(recipe.bpr, seed=self.seed)
        best: tuple[Recipe, float] | None = None
        done = 0
        for iterations in checkpoints:
            started = time.perf_counter()
            if done == 0 and section == "bpr":
                model.hyper = dataclasses.replace(model.hyper, iterations=iterations)
                model.fit(matrix)
            elif done == 0:
                model.fit(matrix, iterations=iterations)
            else:
                model.fit_more(matrix, iterations - done)
            done = iterations
            evaluation = evaluate_model(model, training, window)
            candidate = with_knob(recipe, "iterations", section, iterations)
            self.customer_scores[candidate] = CustomerScores.of(evaluation, training, window)
            ndcg = self.record(
                candidate,
                "iterations",
                iterations,
                evaluation.metrics,
                time.perf_counter() - started,
            )
            if best is None or ndcg > best[1]:
                best = (candidate, ndcg)
            if self.config.max_seconds and (
                time.perf_counter() - self.started >= self.config.max_seconds
            ):
                break
        return best
