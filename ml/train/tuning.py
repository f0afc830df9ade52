"""Bounded ALS search on the validation window (the test window is never looked at).

Coordinate ascent: starting from the configured recipe, try each value of one knob while
keeping the others, keep the best by validation NDCG@10, move to the next knob. The knobs
are visited in :data:`KNOB_ORDER` (data weighting first, then confidence scaling, then
the ALS hyperparameters). The number of fits is capped by ``SearchConfig.budget``, so the
cost is known in advance.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from ml.train.config import Recipe, SearchConfig
from ml.train.evaluate import evaluate_model, fit_recipe
from ml.train.interactions import (
    EvaluationWindow,
    TrainingData,
    build_evaluation_window,
    build_training_data,
)

log = logging.getLogger(__name__)

# (knob, the part of the recipe it lives in)
KNOB_ORDER: tuple[tuple[str, str], ...] = (
    ("half_life_days", "weighting"),
    ("purchase_quantity", "weighting"),
    ("repeat_exponent", "weighting"),
    ("scheme", "confidence"),
    ("alpha", "confidence"),
    ("regularization", "als"),
    ("factors", "als"),
    ("iterations", "als"),
)


def with_knob(recipe: Recipe, knob: str, section: str, value) -> Recipe:
    """Return a copy of ``recipe`` with ``section.knob`` set to ``value``."""
    part = dataclasses.replace(getattr(recipe, section), **{knob: value})
    return dataclasses.replace(recipe, **{section: part})


def knob_value(recipe: Recipe, knob: str, section: str):
    """Return ``section.knob`` of ``recipe``."""
    return getattr(getattr(recipe, section), knob)


@dataclass
class SearchResult:
    """Outcome of the search.

    Attributes
    ----------
    best : Recipe
        The recipe with the best validation NDCG@10 (the start recipe if nothing beat it).
    best_ndcg_at_10 : float
        Its validation NDCG@10.
    trials : list of dict
        One row per fit: trial number, knob, value, validation figures, seconds.
    seconds : float
        Wall time of the search.
    customers : int
        Customers the search fit on (a sample on a large shop).
    """

    best: Recipe
    best_ndcg_at_10: float
    trials: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    customers: int = 0

    def trials_frame(self) -> pl.DataFrame:
        """Return the trials as a table (for the MLflow artifact)."""
        return pl.DataFrame(self.trials) if self.trials else pl.DataFrame()


class _ValidationData:
    """Training matrices and window per weighting, built once each."""

    def __init__(self, events: pl.DataFrame, start: datetime, end: datetime) -> None:
        self.events, self.start, self.end = events, start, end
        self._cache: dict = {}

    def get(self, recipe: Recipe) -> tuple[TrainingData, EvaluationWindow]:
        if recipe.weighting not in self._cache:
            training = build_training_data(self.events, self.start, recipe.weighting)
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


def search_als(
    events: pl.DataFrame,
    start_recipe: Recipe,
    validation_start: datetime,
    validation_end: datetime,
    search: SearchConfig,
    seed: int,
) -> SearchResult:
    """Tune the ALS recipe on ``[validation_start, validation_end)``.

    Parameters
    ----------
    events : polars.DataFrame
        Interaction events (anything after ``validation_end`` is ignored).
    start_recipe : Recipe
        The configured recipe; evaluated first.
    validation_start, validation_end : datetime
        The validation window; the models are fit on events before ``validation_start``.
    search : SearchConfig
        Budget and values.
    seed : int
        Model seed (the same for every trial, so trials differ only by the knob).

    Returns
    -------
    SearchResult
    """
    started = time.perf_counter()
    events = sample_customers(
        events.filter(pl.col("occurred_at") < validation_end), search.max_customers, seed
    )
    n_customers = events["customer_id"].n_unique()
    data = _ValidationData(events, validation_start, validation_end)
    trials: list[dict] = []

    def score(recipe: Recipe, knob: str, value) -> float:
        fit_started = time.perf_counter()
        training, window = data.get(recipe)
        if len(window.customer_rows) == 0:
            ndcg = float("nan")
            figures = {}
        else:
            model = fit_recipe(recipe, training, seed)
            figures = evaluate_model(model, training, window).metrics
            ndcg = figures["ndcg_at_10"]
        trials.append(
            {
                "trial": len(trials),
                "knob": knob,
                "value": str(value),
                "val_ndcg_at_10": ndcg,
                "val_recall_at_10": figures.get("recall_at_10", float("nan")),
                "val_catalog_coverage": figures.get("catalog_coverage", float("nan")),
                "seconds": round(time.perf_counter() - fit_started, 3),
            }
        )
        log.info("search trial %d: %s=%s -> val ndcg@10 %.4f", len(trials) - 1, knob, value, ndcg)
        return ndcg

    best = start_recipe
    best_score = score(best, "start", "configured")
    if best_score != best_score:  # NaN: nothing to validate on (tiny or degenerate data)
        log.warning("validation window has no evaluable customer: search skipped")
        return SearchResult(best, best_score, trials, time.perf_counter() - started, n_customers)
    for knob, section in KNOB_ORDER:
        current = knob_value(best, knob, section)
        for value in getattr(search.space, knob):
            if len(trials) >= search.budget:
                break
            if value == current:
                continue
            candidate = with_knob(best, knob, section, value)
            candidate_score = score(candidate, knob, value)
            if candidate_score > best_score:
                best, best_score = candidate, candidate_score
        if len(trials) >= search.budget:
            log.info("search budget of %d fits reached", search.budget)
            break
    seconds = time.perf_counter() - started
    log.info(
        "search done: %d fits in %.1fs, best val ndcg@10 %.4f", len(trials), seconds, best_score
    )
    return SearchResult(best, best_score, trials, seconds, n_customers)
