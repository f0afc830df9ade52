"""Logical dates, written once: every stage, dbt and the CLI read a run's date through here.

A run's *logical date* is a calendar day (``YYYY-MM-DD``); the run sees everything stamped
before the **end** of that day (:func:`as_of_end`), like the dbt var ``as_of``.
Timestamps in the warehouse are naive UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def to_date(value: date | datetime | str) -> date:
    """Return the calendar day of a date, a datetime or text starting ``YYYY-MM-DD``.

    Raises
    ------
    ValueError
        If the text does not start with a valid ``YYYY-MM-DD`` date.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if not _ISO_DATE.match(text):
        raise ValueError(f"expected a date 'YYYY-MM-DD', got {value!r}")
    try:
        return date.fromisoformat(text[:10])
    except ValueError as exc:
        raise ValueError(f"expected a valid date 'YYYY-MM-DD', got {value!r}: {exc}") from exc


def normalize_as_of(as_of: str | date | datetime) -> str:
    """Return a logical date as ``YYYY-MM-DD`` text (what dbt's ``as_of`` var takes).

    Text must be exactly a date (no time part), so a typo never silently becomes a day.

    Raises
    ------
    ValueError
        If the value is not a valid calendar date.
    """
    if isinstance(as_of, str) and len(as_of.strip()) != 10:
        raise ValueError(f"as_of must be a date 'YYYY-MM-DD', got {as_of!r}")
    try:
        return to_date(as_of).isoformat()
    except ValueError as exc:
        raise ValueError(f"as_of must be a valid date 'YYYY-MM-DD', got {as_of!r}") from exc


def day_start(value: date | datetime | str) -> datetime:
    """Midnight at the start of a day (naive)."""
    return datetime.combine(to_date(value), time.min)


def as_of_end(value: date | datetime | str) -> datetime:
    """Exclusive upper bound of a logical date: midnight after it (naive UTC)."""
    return day_start(value) + timedelta(days=1)


def data_through(end: date | datetime | str) -> date:
    """The last day of data before an exclusive end (midnight): the day runs are named for.

    A run for logical date D reads everything before ``as_of_end(D)``; its labels (log
    lines, MLflow run names, the ``as_of`` param) say D.
    """
    return to_date(end) - timedelta(days=1)


def utcnow() -> datetime:
    """The current time as naive UTC, like every timestamp in the warehouse."""
    return datetime.now(UTC).replace(tzinfo=None)
