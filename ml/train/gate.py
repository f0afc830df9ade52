"""The champion/challenger gate: a new model serves only if it beats the current one.

The current champion is evaluated on the *same* test window as the candidate. Its stored
``evaluated`` model (fit before its own test window) is scored as is when it was fit before
this run's test window starts, which is the normal case of a later ``as_of``. When it was fit
later (a back-fill with an earlier ``as_of``), scoring it would leak the window's purchases
into the comparison, so its recipe is re-fit on this run's training history instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from ml.train.bundle import TrainedRecommender
from ml.train.evaluate import (
    CURVE_DEPTH,
    Evaluation,
    evaluate_model,
    evaluate_recommendations,
    exclusion_in_foreign_space,
    fit_recipe,
)
from ml.train.history import build_training_data
from ml.train.interactions import TrainingData
from ml.train.split import EvaluationWindow, build_evaluation_window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateDecision:
    """Outcome of the gate, as tagged on the run and the model version.

    Attributes
    ----------
    decision : str
        ``"champion"`` (promoted) or ``"challenger"``.
    reason : str
        One sentence a reviewer can read in the MLflow UI.
    candidate_ndcg_at_10, popularity_ndcg_at_10 : float
        Test-window figures of the candidate and of the popularity baseline.
    champion_ndcg_at_10 : float or None
        The current champion on the same window (None: there is no champion).
    champion_version : str or None
        Its registry version.
    margin : float
        Required relative improvement over the champion.
    eval_customers : int
        Customers in the test window.
    """

    decision: str
    reason: str
    candidate_ndcg_at_10: float
    popularity_ndcg_at_10: float
    champion_ndcg_at_10: float | None
    champion_version: str | None
    margin: float
    eval_customers: int

    @property
    def promoted(self) -> bool:
        return self.decision == "champion"

    def tags(self) -> dict[str, str]:
        """Tags for the run and the model version (visible in the MLflow UI)."""

        def text(value):
            if value is None:
                return "none"
            return f"{value:.6f}" if math.isfinite(value) else "nan"

        return {
            "gate.decision": self.decision,
            "gate.reason": self.reason,
            "gate.candidate_ndcg_at_10": text(self.candidate_ndcg_at_10),
            "gate.champion_ndcg_at_10": text(self.champion_ndcg_at_10),
            "gate.champion_version": self.champion_version or "none",
            "gate.popularity_ndcg_at_10": text(self.popularity_ndcg_at_10),
            "gate.margin": f"{self.margin:g}",
            "gate.eval_customers": str(self.eval_customers),
        }


def decide(
    candidate_ndcg: float,
    popularity_ndcg: float,
    champion_ndcg: float | None,
    *,
    champion_version: str | None,
    eval_customers: int,
    margin: float,
    min_eval_customers: int,
    champion_error: str | None = None,
) -> GateDecision:
    """Apply the promotion rules.

    A candidate becomes champion only when all hold:

    0. the current champion (if any) could be evaluated (``champion_error`` is None);
    1. at least ``min_eval_customers`` customers were evaluated;
    2. its NDCG@10 is finite and beats the popularity baseline;
    3. there is no champion, or it beats the champion's NDCG@10 (same window) by the
       relative ``margin``.
    """

    def outcome(decision: str, reason: str) -> GateDecision:
        log.info("gate: %s (%s)", decision, reason)
        return GateDecision(
            decision,
            reason,
            candidate_ndcg,
            popularity_ndcg,
            champion_ndcg,
            champion_version,
            margin,
            eval_customers,
        )

    if champion_error is not None:
        # Never replace a champion blindly: a person decides (or removes the alias).
        return outcome(
            "challenger",
            f"the current champion v{champion_version} could not be evaluated ({champion_error}); "
            "not promoted: fix it or delete its 'champion' alias to let a new model take over",
        )
    if eval_customers < min_eval_customers:
        return outcome(
            "challenger",
            f"only {eval_customers} customers could be evaluated on the test window "
            f"(< min_eval_customers={min_eval_customers}): too little evidence to promote",
        )
    if not math.isfinite(candidate_ndcg):
        return outcome("challenger", "the candidate has no NDCG@10 on the test window")
    if not (math.isfinite(popularity_ndcg) and candidate_ndcg > popularity_ndcg):
        return outcome(
            "challenger",
            f"NDCG@10 {candidate_ndcg:.4f} does not beat the popularity baseline "
            f"({popularity_ndcg:.4f})",
        )
    if champion_ndcg is None or not math.isfinite(champion_ndcg):
        return outcome(
            "champion",
            f"no comparable champion; NDCG@10 {candidate_ndcg:.4f} beats popularity "
            f"({popularity_ndcg:.4f})",
        )
    needed = champion_ndcg * (1.0 + margin)
    if candidate_ndcg > needed:
        return outcome(
            "champion",
            f"NDCG@10 {candidate_ndcg:.4f} beats champion v{champion_version} "
            f"({champion_ndcg:.4f}) by more than {margin:.1%}",
        )
    return outcome(
        "challenger",
        f"NDCG@10 {candidate_ndcg:.4f} does not beat champion v{champion_version} "
        f"({champion_ndcg:.4f}) by {margin:.1%} (needs > {needed:.4f})",
    )


def evaluate_stored_model(
    bundle: TrainedRecommender,
    training: TrainingData,
    window: EvaluationWindow,
    ks: tuple[int, ...],
    segments: np.ndarray | None = None,
) -> Evaluation:
    """Score a model from another run on this run's window, through product and customer ids.

    Customers the model does not know get its popularity fallback, exactly as when serving;
    products bought in this run's training history are excluded; products it does not know
    simply never hit.
    """
    rows_here = window.customer_rows
    foreign_rows = bundle.maps.customer_rows(training.maps.customer_ids[rows_here])
    to_foreign = bundle.maps.product_cols(training.maps.product_ids)
    exclude = exclusion_in_foreign_space(
        training.bought[rows_here], to_foreign, bundle.maps.shape[1]
    )
    depth = max(CURVE_DEPTH, max(ks))
    foreign_ids, _, known = bundle.recommend_rows(foreign_rows, exclude, depth)
    from_foreign = training.maps.product_cols(bundle.maps.product_ids)
    recommended = np.where(foreign_ids >= 0, from_foreign[np.maximum(foreign_ids, 0)], -1)
    log.info(
        "champion scored %d customers (%d known to it, the rest by its popularity fallback)",
        len(rows_here),
        int(known.sum()),
    )
    return evaluate_recommendations(recommended, window, training, ks, segments)


def evaluate_champion(
    bundle: TrainedRecommender,
    events: pl.DataFrame,
    training: TrainingData,
    window: EvaluationWindow,
    ks: tuple[int, ...],
    seed: int,
    segments: np.ndarray | None = None,
    *,
    categories: pl.DataFrame | None = None,
) -> tuple[Evaluation, str]:
    """Evaluate the champion on this run's test window without leakage.

    Returns
    -------
    evaluation : Evaluation
    method : str
        ``"stored_model"`` or ``"recipe_refit"`` (see the module docstring).
    """
    if bundle.trained_until <= training.cutoff:
        return evaluate_stored_model(bundle, training, window, ks, segments), "stored_model"
    log.info(
        "champion was fit until %s, after this test window starts (%s): re-fitting its recipe",
        bundle.trained_until,
        training.cutoff,
    )
    refit_training = build_training_data(
        events, training.cutoff, bundle.recipe.weighting, categories
    )
    refit_window = build_evaluation_window(events, refit_training, window.end)
    model = fit_recipe(bundle.recipe, refit_training, seed)
    # Segments align with this run's evaluated customers, not the refit's: skip them.
    return evaluate_model(model, refit_training, refit_window, ks), "recipe_refit"
