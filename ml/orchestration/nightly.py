"""What a night recomputes: the scheduled full refresh.

A night is incremental by default: dbt syncs its incremental models, scoring re-scores
only the customers whose inputs changed (:mod:`ml.serving.incremental`), and the champion
keeps serving unless the data moved enough (:mod:`ml.train.retrain_rule`). Once a week (the
day ``AFFINITY_FULL_REFRESH_WEEKDAY`` names, default ``sunday``; ``never`` switches it off)
the run rebuilds instead, as the DAG's ``full_refresh`` param does on demand: dbt rebuilds
every incremental model from raw and every customer is scored. Both give the same
published tables (``tests/test_incremental_rebuild.py``); the weekly rebuild bounds what a
bug in an incremental path could leave behind.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import date

from ml.dates import to_date
from ml.pipeline import RunContext

FULL_REFRESH_WEEKDAY_ENV = "AFFINITY_FULL_REFRESH_WEEKDAY"
DEFAULT_FULL_REFRESH_WEEKDAY = "sunday"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def full_refresh_weekday(value: str | None = None) -> int | None:
    """The weekday (0 = Monday) of the scheduled full refresh, or None for ``never``.

    Raises
    ------
    ValueError
        For a value that is neither a weekday name nor ``never``.
    """
    text = value if value is not None else os.environ.get(FULL_REFRESH_WEEKDAY_ENV, "")
    text = text.strip().lower() or DEFAULT_FULL_REFRESH_WEEKDAY
    if text == "never":
        return None
    if text not in WEEKDAYS:
        raise ValueError(
            f"{FULL_REFRESH_WEEKDAY_ENV}={text!r}: use a weekday name ({', '.join(WEEKDAYS)}) "
            "or 'never'"
        )
    return WEEKDAYS.index(text)


def scheduled_full_refresh(logical_date: date | str | None, weekday: str | None = None) -> bool:
    """Whether ``logical_date`` is the week's full-refresh day."""
    if logical_date is None:
        return False
    day = full_refresh_weekday(weekday)
    return day is not None and to_date(logical_date).weekday() == day


def night_context(ctx: RunContext) -> RunContext:
    """``ctx`` with ``full_refresh`` on when asked for or scheduled for its date."""
    if ctx.full_refresh or not scheduled_full_refresh(ctx.logical_date):
        return ctx
    return dataclasses.replace(ctx, full_refresh=True)
