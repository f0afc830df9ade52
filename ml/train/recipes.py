"""Which recipe and families a run uses: the champion's recent recipe, warm starts, skips."""

from __future__ import annotations

import dataclasses
import logging
from datetime import date

import mlflow

from ml.train import tracking
from ml.train.config import Recipe, TrainConfig

log = logging.getLogger(__name__)


def recent_champion_recipe(
    name: str, as_of: date, config: TrainConfig, version: str | None = None
) -> tuple[Recipe, date] | None:
    """The champion's recipe and the date it was tuned, if recent enough to skip the search.

    ``version`` is the champion as of ``as_of`` (default: the ``champion`` alias). Only
    a recipe tuned on or before ``as_of`` counts (a backfill never reuses a recipe tuned
    on later data), and at most ``config.search.reuse_days`` days before it.
    """
    if config.search.reuse_days <= 0:
        return None
    if version is None:
        version = tracking.alias_version(name, tracking.CHAMPION)
    if version is None:
        return None
    tags = mlflow.MlflowClient().get_model_version(name, version).tags
    try:
        tuned_as_of = date.fromisoformat(tags["recipe.tuned_as_of"])
        recipe = Recipe.from_json(tags["recipe.json"])
    except (KeyError, ValueError) as error:  # a champion from before these tags: search
        log.info("champion v%s has no reusable recipe tags (%s): searching", version, error)
        return None
    if not 0 <= (as_of - tuned_as_of).days <= config.search.reuse_days:
        return None
    return recipe, tuned_as_of


def candidate_warm_start(champion, recipe: Recipe, training, config: TrainConfig):
    """``(model, maps)`` to warm-start the ALS candidate from, or None for a cold fit.

    The champion's *evaluated* model qualifies when it has the same recipe and was fit
    on history that ends no later than this candidate's (so nothing of this test window
    leaks in). It then needs ``refit_iterations`` iterations instead of the recipe's.
    """
    if champion is None or not config.refit_iterations or recipe.family != "als":
        return None
    evaluated = champion.evaluated
    same_recipe = dataclasses.replace(evaluated.recipe, family="als") == dataclasses.replace(
        recipe, family="als"
    )
    if evaluated.family != "als" or not same_recipe or evaluated.trained_until > training.cutoff:
        return None
    return evaluated.model, evaluated.maps


def bpr_skipped_because(searched: bool, pairs: int, config: TrainConfig) -> str | None:
    """Why the BPR candidate is left out of this run, or None to fit it."""
    if not config.bpr_enabled:
        return "TrainConfig.bpr_enabled is off"
    if not searched and config.search.budget > 0:
        return "this run reuses the champion's recipe; BPR is compared in tuning runs"
    if pairs > config.bpr_max_pairs:
        return (
            f"{pairs:,} training pairs > TrainConfig.bpr_max_pairs {config.bpr_max_pairs:,} "
            "(single-threaded SGD)"
        )
    return None


def dense_skipped_because(n_customers: int, n_products: int, config: TrainConfig) -> str | None:
    """Why a family served as dense customers x products arrays is left out, or None."""
    cells = n_customers * n_products
    if cells > config.dense_max_cells:
        return (
            f"{n_customers:,} customers x {n_products:,} products = {cells:,} cells > "
            f"TrainConfig.dense_max_cells {config.dense_max_cells:,} (served as dense arrays)"
        )
    return None


def family_skipped_because(
    family: str, pairs: int, n_customers: int, n_products: int, config: TrainConfig
) -> str | None:
    """Why the search leaves ``family`` out on this data (``blend_history``: the blend's
    history lift), or None to try it."""
    if family == "bpr":
        if not config.bpr_enabled:
            return "TrainConfig.bpr_enabled is off"
        if pairs > config.bpr_max_pairs:
            return (
                f"{pairs:,} pairs before the test window > TrainConfig.bpr_max_pairs "
                f"{config.bpr_max_pairs:,}"
            )
        return None
    if family in ("itemknn", "blend_history"):
        return dense_skipped_because(n_customers, n_products, config)
    return None
