"""The opening every serving stage shares: its model, its warehouse connection, its date."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import NamedTuple

import duckdb

from ml.dates import to_date
from ml.serving.inputs import latest_logical_date
from ml.serving.model import ScoringModel, load_scoring_model
from ml.warehouse import connect


class ServingRun(NamedTuple):
    """An open serving stage: ``with serving_run(...) as (con, day, model):``."""

    con: duckdb.DuckDBPyConnection
    day: date
    model: ScoringModel


@contextmanager
def serving_run(
    logical_date: date | str | None, model: ScoringModel | None
) -> Iterator[ServingRun]:
    """Load the model, connect to the warehouse and resolve the run's logical date.

    Parameters
    ----------
    logical_date : date or str, optional
        The run's logical date (default: the last day with an interaction).
    model : ScoringModel, optional
        The model to serve (default: the MLflow ``champion``, see
        :func:`ml.serving.model.load_scoring_model`).
    """
    model = model or load_scoring_model()
    with connect() as con:
        day = to_date(logical_date) if logical_date is not None else latest_logical_date(con)
        yield ServingRun(con, day, model)
