"""The bounded recipe search on the validation window (the test window is never looked at).

Coordinate ascent from the configured recipe: try each value of one knob while keeping
the others, keep the best by validation NDCG@10, move to the next knob. A value replaces
the incumbent only when it wins by more than validation noise
(``SearchConfig.min_gain_se``, :mod:`ml.train.significance`): with dozens of trials on a
few hundred validation customers, the best-looking one is partly luck.

1. **ALS and the data weighting** (:data:`ALS_KNOBS`): confidence normalisation, the
   half-life (fixed values, no decay, and values tied to the history's span), the
   strength transform (counts, log, 0/1), the quantity transform, repeat damping, the
   confidence scaling, regularization and factors; then the iteration count by early
   stopping (one fit continued through the checkpoints, validated at each).
2. **Other families** with the chosen weighting: BPR (learning rates, early-stopped
   epochs), implicit's item-item models (BM25, cosine, TF-IDF) and the popularity blend.
3. **A second ALS pass** with what is left of the budget, when ALS still leads (each
   knob's start value stays a candidate, so the pass can also go back).

The best recipe of any family wins; every family's best settings ride along in it (the
test window compares them, and the blend is the gate's fallback). Fits are capped by ``SearchConfig.budget`` (an
early-stopped fit counts once) and by ``SearchConfig.max_seconds`` of wall time, so the
cost is known in advance; with the same data and seed the search is deterministic unless
the time bound cuts it (the result then says so).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from ml.train.config import PERSONALIZED_FAMILIES, Recipe, SearchConfig
from ml.train.evaluate import evaluate_model, fit_recipe
from ml.train.interactions import TrainingData
from ml.train.trials import (
    SearchState,
    ValidationData,
    knob_value,
    sample_customers,
    with_knob,
)

log = logging.getLogger(__name__)

# (knob, the part of the recipe it lives in), in the order the ALS phase visits them.
ALS_KNOBS: tuple[tuple[str, str], ...] = (
    ("normalize", "confidence"),
    ("half_life_days", "weighting"),
    ("strength_transform", "weighting"),
    ("purchase_quantity", "weighting"),
    ("repeat_exponent", "weighting"),
    ("scheme", "confidence"),
    ("alpha", "confidence"),
    ("regularization", "als"),
    ("factors", "als"),
)
# Kept for callers of the first search (ALS knobs only).
KNOB_ORDER = ALS_KNOBS
# Half-lives shorter than this are not tried, however short the history.
MIN_HALF_LIFE_DAYS = 3.0


# Half-lives within this ratio of one already listed add nothing worth a fit.
HALF_LIFE_MIN_RATIO = 1.25
# Knobs that cannot change anything once strengths are made 0/1.
BINARY_IGNORES = ("half_life_days", "purchase_quantity", "repeat_exponent")


def span_half_lives(
    span_days: float, fractions: tuple[float, ...], known: tuple[float | None, ...] = ()
) -> list[float]:
    """Half-lives tied to the history's span: whole days, at least 3, none within 25 % of
    another listed value or of a ``known`` one."""
    values: list[float] = []
    for fraction in fractions:
        days = float(max(MIN_HALF_LIFE_DAYS, round(span_days * fraction)))
        near = [v for v in (*known, *values) if v is not None]
        if all(max(days, v) / min(days, v) >= HALF_LIFE_MIN_RATIO for v in near):
            values.append(days)
    return values


def matters(recipe: Recipe, knob: str) -> bool:
    """Whether ``knob`` can change the fit of ``recipe`` (0/1 strengths ignore the
    weighting's decay, quantity and repeat knobs)."""
    return not (recipe.weighting.strength_transform == "binary" and knob in BINARY_IGNORES)


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
        One row per validated model: trial number, family, knob, value, figures, seconds.
    seconds : float
        Wall time of the search.
    customers : int
        Customers the search fit on (a sample on a large shop).
    family_best : dict of str to float
        Best validation NDCG@10 per family (``popularity`` included, for reference).
    stopped : str or None
        Why the search stopped early (budget or time), if it did.
    family_recipes : dict of str to Recipe
        The best recipe found for each family tried.
    """

    best: Recipe
    best_ndcg_at_10: float
    trials: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    customers: int = 0
    family_best: dict[str, float] = field(default_factory=dict)
    stopped: str | None = None
    family_recipes: dict[str, Recipe] = field(default_factory=dict)

    def trials_frame(self) -> pl.DataFrame:
        """Return the trials as a table (for the MLflow artifact)."""
        return pl.DataFrame(self.trials) if self.trials else pl.DataFrame()

    def why(self) -> str:
        """One sentence: which family won, by how much, against what (an MLflow tag)."""
        if not math.isfinite(self.best_ndcg_at_10):
            return "no validation customers: the configured recipe is used as is"
        others = sorted(
            (
                (ndcg, family)
                for family, ndcg in self.family_best.items()
                if family != self.best.family and math.isfinite(ndcg)
            ),
            reverse=True,
        )
        rivals = ", ".join(f"{family} {ndcg:.4f}" for ndcg, family in others) or "none"
        text = (
            f"{self.best.family} has the best validation NDCG@10 ({self.best_ndcg_at_10:.4f}) "
            f"of {len(self.trials)} trials; best of the others: {rivals}"
        )
        return text + (f"; {self.stopped}" if self.stopped else "")


def _ascend(
    state: SearchState,
    best: Recipe,
    best_score: float,
    knobs: list[tuple[str, str, list]],
) -> tuple[Recipe, float]:
    """Coordinate ascent over ``(knob, section, values)``: keep strict improvements."""
    for knob, section, values in knobs:
        if not matters(best, knob):
            continue
        current = knob_value(best, knob, section)
        for value in values:
            if value == current:
                continue
            candidate = with_knob(best, knob, section, value)
            candidate_score = state.score(candidate, knob, value)
            if candidate_score is None:
                return best, best_score
            if state.beats(candidate, candidate_score, best, best_score):
                best, best_score = candidate, candidate_score
    return best, best_score


def search_recipe(
    events: pl.DataFrame,
    start_recipe: Recipe,
    validation_start: datetime,
    validation_end: datetime,
    search: SearchConfig,
    seed: int,
    *,
    families: tuple[str, ...] | None = None,
    categories: pl.DataFrame | None = None,
    family_allowed: Callable[[str, TrainingData], str | None] | None = None,
) -> SearchResult:
    """Tune the recipe (weighting, ALS, other families) on ``[validation_start, validation_end)``.

    Parameters
    ----------
    events : polars.DataFrame
        Interaction events (anything after ``validation_end`` is ignored).
    start_recipe : Recipe
        The configured recipe; evaluated first (as ALS when it is another family).
    validation_start, validation_end : datetime
        The validation window; the models are fit on events before ``validation_start``.
    search : SearchConfig
        Budget, time bound and values.
    seed : int
        Model seed (the same for every trial, so trials differ only by the knob).
    families : tuple of str, optional
        Families compared after ALS (default: ``search.space.families``).
    categories : polars.DataFrame, optional
        ``product_id, category`` for the blend.
    family_allowed : callable, optional
        ``(family, training) -> reason or None``: why a family is left out on this data
        (e.g. a catalogue too large for dense item-item serving).

    Returns
    -------
    SearchResult
    """
    events = sample_customers(
        events.filter(pl.col("occurred_at") < validation_end), search.max_customers, seed
    )
    data = ValidationData(events, validation_start, validation_end, categories)
    return search_on(
        data,
        start_recipe,
        search,
        seed,
        families=families,
        family_allowed=family_allowed,
        n_customers=events["customer_id"].n_unique(),
    )


def search_on(
    data,
    start_recipe: Recipe,
    search: SearchConfig,
    seed: int,
    *,
    families: tuple[str, ...] | None = None,
    family_allowed: Callable[[str, TrainingData], str | None] | None = None,
    n_customers: int = 0,
) -> SearchResult:
    """The search on any validation data: ``data.get(recipe)`` returns the
    ``(TrainingData, EvaluationWindow)`` a recipe is fit and validated on.

    :func:`search_recipe` passes a time window (:class:`ValidationData`); the classic
    benchmark protocol passes a per-customer random split.
    """
    state = SearchState(data, search, seed)
    space = search.space

    als_start = dataclasses.replace(start_recipe, family="als")
    best_score = state.score(als_start, "start", "configured", force=True)
    best = als_start
    if best_score is None or not math.isfinite(best_score):
        log.warning("validation window has no evaluable customer: search skipped")
        return SearchResult(
            start_recipe,
            float("nan"),
            state.trials,
            time.perf_counter() - state.started,
            n_customers,
        )
    training, window = data.get(als_start)
    baseline = fit_recipe(dataclasses.replace(als_start, family="popularity"), training, seed)
    popularity = evaluate_model(baseline, training, window).ndcg_at_10
    state.family_best["popularity"] = popularity

    # 1. ALS and the weighting, knob by knob.
    half_lives = list(space.half_life_days) + span_half_lives(
        training.span_days,
        space.half_life_span_fractions,
        (*space.half_life_days, als_start.weighting.half_life_days),
    )
    values = {
        "normalize": list(space.normalize),
        "half_life_days": half_lives,
        "strength_transform": list(space.strength_transform),
        "purchase_quantity": list(space.purchase_quantity),
        "repeat_exponent": list(space.repeat_exponent),
        "scheme": list(space.scheme),
        "alpha": list(space.alpha),
        "regularization": list(space.regularization),
        "factors": list(space.factors),
    }
    # Each knob's start value stays a candidate, so a later pass can go back to it.
    als_knobs = [
        (knob, section, list(dict.fromkeys([knob_value(als_start, knob, section), *values[knob]])))
        for knob, section in ALS_KNOBS
        if values[knob]
    ]
    best, best_score = _ascend(state, best, best_score, als_knobs)
    stopped = state.early_stopped(best, space.iterations, "als")
    if stopped is not None and state.beats(*stopped, best, best_score):
        best, best_score = stopped
    winner, winner_score = best, best_score
    best_als = best

    # 2. Other families on the chosen weighting.
    allowed = space.families if families is None else families
    skipped: dict[str, str] = {}
    family_recipes: dict[str, Recipe] = {}
    training, _ = data.get(best)
    for family in allowed:
        reason = family_allowed(family, training) if family_allowed else None
        if reason:
            skipped[family] = reason
            continue
        base = dataclasses.replace(best, family=family)
        if family == "bpr":
            family_best, family_score = None, -1.0
            for rate in dict.fromkeys([base.bpr.learning_rate, *space.bpr_learning_rate]):
                trial = with_knob(base, "learning_rate", "bpr", rate)
                if space.bpr_iterations:
                    result = state.early_stopped(trial, space.bpr_iterations, "bpr")
                else:
                    trial_score = state.score(trial, "learning_rate", rate)
                    result = None if trial_score is None else (trial, trial_score)
                if result is None:
                    break
                if result[1] > family_score:
                    family_best, family_score = result
        elif family == "itemknn":
            family_best, family_score = None, -1.0
            for weighting in dict.fromkeys([base.itemknn.weighting, *space.itemknn_weighting]):
                trial = with_knob(base, "weighting", "itemknn", weighting)
                trial_score = state.score(trial, "weighting", weighting)
                if trial_score is None:
                    break
                if trial_score > family_score:
                    family_best, family_score = trial, trial_score
        elif family == "blend":
            blend_knobs = [
                ("category_weight", "blend", list(space.blend_category_weight)),
                ("history_weight", "blend", list(space.blend_history_weight)),
            ]
            if training.categories is None:
                blend_knobs = [k for k in blend_knobs if k[0] != "category_weight"]
            history_ban = family_allowed("blend_history", training) if family_allowed else None
            if training.strength.nnz == training.bought.nnz:
                history_ban = history_ban or "every interaction is a purchase (no views)"
            if history_ban:
                skipped["blend history"] = history_ban
                blend_knobs = [k for k in blend_knobs if k[0] != "history_weight"]
                base = with_knob(base, "history_weight", "blend", 0.0)
            family_score = state.score(base, "start", "configured")
            if family_score is None:
                break
            family_best, family_score = _ascend(state, base, family_score, blend_knobs)
        else:
            skipped[family] = "unknown family"
            continue
        if family_best is not None:
            family_recipes[family] = family_best
        if family_best is not None and family_score > winner_score:
            winner, winner_score = family_best, family_score
        if not state.can_fit():
            break
    if winner.family == "als" and state.can_fit():
        # A second pass with what is left of the budget: the knobs interact (alpha and
        # regularization above all), and one pass fixes each given the ones before it.
        second, second_score = _ascend(state, winner, winner_score, als_knobs)
        if second_score > winner_score:
            winner, winner_score = second, second_score
            best_als = second
    # Carry every family's tuned parameters in the winner: the test window compares the
    # other families with their best settings, and the blend is the fallback when no
    # personalized model beats popularity there.
    for family, recipe in family_recipes.items():
        if family != winner.family:
            winner = dataclasses.replace(winner, **{family: getattr(recipe, family)})
    if skipped:
        log.info("search left out: %s", "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    seconds = time.perf_counter() - state.started
    log.info(
        "search done: %d fits in %.1fs, best %s val ndcg@10 %.4f (popularity %.4f)",
        state.fits,
        seconds,
        winner.family,
        winner_score,
        popularity,
    )
    return SearchResult(
        winner,
        winner_score,
        state.trials,
        seconds,
        n_customers,
        dict(state.family_best),
        state.stopped,
        {**family_recipes, "als": best_als},
    )


__all__ = [
    "ALS_KNOBS",
    "PERSONALIZED_FAMILIES",
    "SearchResult",
    "ValidationData",
    "sample_customers",
    "search_on",
    "search_recipe",
    "span_half_lives",
]
