"""Fit a recipe on a training history and evaluate it on the window that follows.

The evaluation protocol of every candidate (and of the champion at the gate):
recommend to each customer who exists in training and bought something new in the window,
never recommending what they bought in training, and compare the list with those new
purchases.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ml.train import metrics
from ml.train.config import Recipe
from ml.train.interactions import IndexMaps, TrainingData, confidence_matrix
from ml.train.models import (
    ALSRecommender,
    BlendRecommender,
    BPRRecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    Recommender,
    warm_start_factors,
)
from ml.train.split import EvaluationWindow

log = logging.getLogger(__name__)

# Recall curves and frequency plots look this deep into each list.
CURVE_DEPTH = 50


def fit_recipe(
    recipe: Recipe,
    training: TrainingData,
    seed: int,
    *,
    warm_start: tuple[Recommender, IndexMaps] | None = None,
    iterations: int | None = None,
) -> Recommender:
    """Build the recipe's model and fit it on ``training``.

    Parameters
    ----------
    recipe : Recipe
        Family, confidence scaling and hyperparameters (the weighting was already applied
        when ``training`` was built).
    training : TrainingData
        Matrices of the history.
    seed : int
        Model seed.
    warm_start : (ALSRecommender, IndexMaps), optional
        ALS only: start from this fitted model's factors (mapped by id onto ``training``).
    iterations : int, optional
        ALS only: iterations instead of the recipe's (for a warm start).
    """
    if recipe.family == "popularity":
        return PopularityRecommender().fit(training.bought)
    if recipe.family == "itemknn":
        return ItemKNNRecommender(recipe.itemknn).fit(training.strength)
    if recipe.family == "blend":
        return BlendRecommender(recipe.blend).fit(training.strength, training.categories)
    if recipe.family == "bpr":
        # BPR only uses which cells are positive; the strength decides nothing more.
        return BPRRecommender(recipe.bpr, seed=seed).fit(training.strength)
    if recipe.family == "als":
        confidences = confidence_matrix(training.strength, recipe.confidence)
        initial = None
        if warm_start is not None:
            source_model, source_maps = warm_start
            initial = warm_start_factors(source_model, source_maps, training.maps, seed)
        return ALSRecommender(recipe.als, seed=seed).fit(
            confidences, initial_factors=initial, iterations=iterations
        )
    if recipe.family == "spark_als":
        from ml.spark.als import SparkALSRecommender  # needs the Spark extra

        confidences = confidence_matrix(training.strength, recipe.confidence)
        return SparkALSRecommender(recipe.als, seed=seed).fit(confidences, iterations=iterations)
    raise ValueError(
        f"unknown model family {recipe.family!r}: use als, spark_als, bpr, itemknn, blend "
        "or popularity"
    )


@dataclass
class Evaluation:
    """Metrics of one model on one window.

    Attributes
    ----------
    metrics : dict of str to float
        Overall figures: ``precision_at_10`` ... ``map_at_20``, ``catalog_coverage``,
        ``popularity_bias``, ``eval_customers``.
    segment_metrics : dict of str to dict
        The same ranking figures per segment (plus ``eval_customers``).
    recommended : numpy.ndarray
        ``(n_eval_customers, CURVE_DEPTH)`` product columns, for plots.
    recall_curve : numpy.ndarray
        Mean recall at 1..CURVE_DEPTH.
    per_customer : dict of str to numpy.ndarray
        Each ranking figure per evaluated customer (aligned with ``recommended``).
    seconds : float
        Time spent recommending and scoring.
    """

    metrics: dict[str, float]
    segment_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    recommended: np.ndarray | None = None
    recall_curve: np.ndarray | None = None
    per_customer: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ndcg_at_10(self) -> float:
        return self.metrics.get("ndcg_at_10", float("nan"))


def evaluate_recommendations(
    recommended: np.ndarray,
    window: EvaluationWindow,
    training: TrainingData,
    ks: tuple[int, ...] = (10, 20),
    segments: np.ndarray | None = None,
    *,
    seconds: float = 0.0,
) -> Evaluation:
    """Score ready-made recommendations of the window's evaluated customers.

    Parameters
    ----------
    recommended : numpy.ndarray
        ``(len(window.customer_rows), n)`` product columns in ``training``'s space.
    window : EvaluationWindow
        Truth.
    training : TrainingData
        Gives the catalog size and product popularity.
    ks : tuple of int
        Cut-offs.
    segments : numpy.ndarray of str, optional
        Segment of each evaluated customer (aligned with ``window.customer_rows``).
    """
    truth = window.truth[window.customer_rows]
    per_customer = metrics.per_customer_metrics(recommended, truth, ks)
    overall = metrics.mean_metrics(per_customer)
    coverage_k = min(ks)
    overall["catalog_coverage"] = metrics.catalog_coverage(
        recommended, training.maps.shape[1], coverage_k
    )
    overall["popularity_bias"] = metrics.popularity_bias(
        recommended, training.item_popularity, coverage_k
    )
    overall["eval_customers"] = float(len(window.customer_rows))
    by_segment: dict[str, dict[str, float]] = {}
    if segments is not None and len(segments):
        for segment in sorted(set(segments.tolist())):
            mask = segments == segment
            figures = metrics.mean_metrics(per_customer, mask)
            figures["eval_customers"] = float(mask.sum())
            by_segment[segment] = figures
    return Evaluation(
        metrics=overall,
        segment_metrics=by_segment,
        recommended=recommended,
        recall_curve=metrics.recall_curve(
            recommended, truth, min(CURVE_DEPTH, recommended.shape[1])
        ),
        per_customer=per_customer,
        seconds=seconds,
    )


def evaluate_model(
    model: Recommender,
    training: TrainingData,
    window: EvaluationWindow,
    ks: tuple[int, ...] = (10, 20),
    segments: np.ndarray | None = None,
    depth: int = CURVE_DEPTH,
) -> Evaluation:
    """Recommend to the window's evaluated customers with a model fit on ``training``.

    Products bought in training are excluded from the candidates (and are not in the
    truth either, see :func:`~ml.train.split.build_evaluation_window`).
    """
    started = time.perf_counter()
    rows = window.customer_rows
    depth = max(depth, max(ks))
    if len(rows):
        recommended, _ = model.recommend(rows, training.bought[rows], n=depth)
    else:
        recommended = np.empty((0, depth), dtype=np.int64)
    evaluation = evaluate_recommendations(
        recommended, window, training, ks, segments, seconds=time.perf_counter() - started
    )
    log.info(
        "%s: ndcg@10 %.4f, recall@10 %.4f over %d customers (%.2fs)",
        model.family,
        evaluation.ndcg_at_10,
        evaluation.metrics.get("recall_at_10", float("nan")),
        len(rows),
        evaluation.seconds,
    )
    return evaluation


def exclusion_in_foreign_space(
    bought: sp.csr_matrix, column_map: np.ndarray, n_foreign_products: int
) -> sp.csr_matrix:
    """Re-express a bought matrix in another model's product columns.

    Parameters
    ----------
    bought : scipy.sparse.csr_matrix
        Rows x products of the current index space.
    column_map : numpy.ndarray
        For each current product column, its column in the other model (``-1`` if absent).
    n_foreign_products : int
        Product count of the other model.
    """
    coo = bought.tocoo()
    mapped = column_map[coo.col]
    keep = mapped >= 0
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (coo.row[keep], mapped[keep])),
        shape=(bought.shape[0], n_foreign_products),
    )
