"""Is one recipe's validation NDCG@10 really better than another's, or validation noise?

A validation window of a few hundred customers measures NDCG@10 with a standard error of
about 0.01, and a search comparing forty recipes on it keeps whichever drew the luckiest
sample (the winner's curse): on the generated shop the widest search validated 0.404
where a narrower one validated lower, and the wider one's pick did worse on the test
window. So the search moves away from its incumbent only when the candidate's gain
exceeds ``min_gain_se`` standard errors of the *paired* per-customer difference (both
models ranked for the same customers, so customer-to-customer variance cancels).

Everything here is numpy over the evaluated customers; no model is fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.train.evaluate import Evaluation
from ml.train.interactions import TrainingData
from ml.train.split import EvaluationWindow


@dataclass(frozen=True)
class CustomerScores:
    """NDCG@10 of each evaluated customer, by customer id (ids sorted ascending)."""

    customer_ids: np.ndarray
    ndcg_at_10: np.ndarray

    @classmethod
    def of(
        cls, evaluation: Evaluation, training: TrainingData, window: EvaluationWindow
    ) -> CustomerScores:
        """Per-customer NDCG@10 of ``evaluation`` (made on ``window`` after ``training``)."""
        rows = window.customer_rows
        ndcg = evaluation.per_customer.get("ndcg_at_10")
        if ndcg is None or len(rows) == 0:
            return cls(np.empty(0, dtype=object), np.empty(0))
        ids = np.asarray(training.maps.customer_ids)[rows]
        order = np.argsort(ids, kind="stable")
        return cls(ids[order], np.nan_to_num(ndcg[order]))


def paired_standard_error(a: CustomerScores, b: CustomerScores) -> float:
    """Standard error of mean NDCG@10 difference over the customers both were scored on.

    ``inf`` when fewer than two customers are shared (nothing to judge a gain by).
    """
    _, in_a, in_b = np.intersect1d(
        a.customer_ids, b.customer_ids, assume_unique=True, return_indices=True
    )
    if len(in_a) < 2:
        return float("inf")
    difference = a.ndcg_at_10[in_a] - b.ndcg_at_10[in_b]
    return float(difference.std(ddof=1) / np.sqrt(len(difference)))


def clear_gain(
    candidate: float,
    incumbent: float,
    candidate_scores: CustomerScores | None,
    incumbent_scores: CustomerScores | None,
    min_gain_se: float,
) -> bool:
    """Whether ``candidate`` beats ``incumbent`` by more than ``min_gain_se`` paired
    standard errors (``min_gain_se = 0``, or missing per-customer scores: any strict gain).
    """
    if not candidate > incumbent:
        return False
    if min_gain_se <= 0 or candidate_scores is None or incumbent_scores is None:
        return True
    margin = min_gain_se * paired_standard_error(candidate_scores, incumbent_scores)
    return candidate - incumbent > margin
