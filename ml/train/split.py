"""The time split: a run's cut-offs and the truth of an evaluation window.

:class:`TimeSplit` holds the midnight cut-offs of one run (validation and test windows
before the ``as_of`` day; :mod:`ml.train.windows` sizes them).
:func:`build_evaluation_window` turns a window's purchases into the truth matrix in a
training history's index space (:class:`~ml.train.interactions.TrainingData`): what the
evaluation scores the candidates against.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp

from ml.dates import day_start
from ml.train.interactions import TrainingData, pairs_to_csr


@dataclass(frozen=True)
class EvaluationWindow:
    """Purchases of a window after a training history, in that history's index space.

    Attributes
    ----------
    start, end : datetime
        The window ``[start, end)``; ``start`` is the training cut-off.
    truth : scipy.sparse.csr_matrix
        Customers x products: ones where a training customer bought, in the window, a
        product known to training that they had not bought before (new to them).
    customer_rows : numpy.ndarray
        Rows with at least one truth item: the evaluated customers.
    n_purchases : int
        Purchase events in the window (any customer, any product).
    """

    start: datetime
    end: datetime
    truth: sp.csr_matrix
    customer_rows: np.ndarray
    n_purchases: int

    def sample(self, max_customers: int, seed: int) -> EvaluationWindow:
        """The window restricted to a seeded sample of at most ``max_customers`` (0: all).

        Ranking metrics over tens of thousands of customers are already precise to the
        third decimal; on a large shop scoring every evaluated customer for every
        candidate would cost more than the fits.
        """
        if max_customers <= 0 or len(self.customer_rows) <= max_customers:
            return self
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(self.customer_rows, max_customers, replace=False))
        return dataclasses.replace(self, customer_rows=rows)


def build_evaluation_window(
    events: pl.DataFrame, training: TrainingData, end: datetime
) -> EvaluationWindow:
    """Collect the window's purchases that count as truth for ``training``'s customers."""
    start = training.cutoff
    window = events.filter(
        (pl.col("occurred_at") >= start)
        & (pl.col("occurred_at") < end)
        & (pl.col("event_kind") == "purchase")
    )
    pairs = window.select("customer_id", "product_id").unique()
    truth = pairs_to_csr(training.maps, pairs)
    # Products the customer already bought in training are neither candidates nor truth.
    truth = truth - truth.multiply(training.bought)
    truth.eliminate_zeros()
    rows = np.flatnonzero(np.diff(truth.indptr) > 0)
    return EvaluationWindow(start, end, truth.tocsr(), rows, window.height)


@dataclass(frozen=True)
class TimeSplit:
    """The cut-offs of one run (all midnight datetimes, windows are ``[start, end)``).

    ``as_of``'s own day is never evaluated: on the run day it may be incomplete.
    """

    as_of: datetime
    test_start: datetime
    validation_start: datetime

    @classmethod
    def from_as_of(cls, as_of: date | datetime | str, eval_days: int, validation_days: int):
        as_of_start = day_start(as_of)
        test_start = as_of_start - timedelta(days=eval_days)
        return cls(as_of_start, test_start, test_start - timedelta(days=validation_days))

    @property
    def history_end(self) -> datetime:
        """End of the history a run may read: the end of the ``as_of`` day."""
        return self.as_of + timedelta(days=1)
