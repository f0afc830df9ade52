"""Reading timestamps into naive UTC: offsets converted, naive values in the shop's zone.

The warehouse stores every timestamp as a naive ``TIMESTAMP`` in UTC. What a landing file
holds is turned into that as follows:

* a text value with an offset or a zone name (``2026-10-30 23:30:00-05:00``,
  ``2026-10-30T23:30:00Z``, ``2026-10-30 23:30 Europe/Paris``) is converted to UTC;
* a naive text value (``2026-10-30 23:30:00``, ``2026-10-30``) is a wall-clock time in the
  shop's zone, ``AFFINITY_SHOP_TIMEZONE`` (an IANA name, default ``UTC``), converted to UTC;
* a value whose date and time read but whose zone does not (``... Mars/Olympus``, an offset
  beyond the real -12:00..+14:00 range) is quarantined as ``unparseable_time_zone``;
* Parquet columns keep their meaning: ``TIMESTAMP WITH TIME ZONE`` is an instant
  (converted to UTC), a plain ``TIMESTAMP`` or ``DATE`` is naive (the shop's zone).

Everything here returns SQL over one staged value, so the whole file is typed in one
projection (:func:`ml.ingest.rules.validate`), in DuckDB's SQL or Spark's
(:mod:`ml.ingest.dialect`).
"""

from __future__ import annotations

import os

import duckdb

from ml.ingest.dialect import DUCKDB, Dialect

SHOP_TIMEZONE_ENV = "AFFINITY_SHOP_TIMEZONE"
DEFAULT_SHOP_TIMEZONE = "UTC"
# Real UTC offsets lie in -12:00..+14:00; DuckDB would accept '+25:00' as a shift.
MAX_OFFSET_SECONDS = 14 * 3600
_UTC_NAMES = frozenset({"utc", "etc/utc", "z", "gmt", "etc/gmt", "universal", "zulu"})
# Date, time, then anything after the time is the zone ('' when the value is naive).
_ZONE_PATTERN = r"^\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{2}(?::\d{1,2}(?:\.\d+)?)?\s*([A-Za-z+-].*)$"


def shop_timezone(zone: str | None = None) -> str:
    """The shop's zone: ``zone`` if given, else ``AFFINITY_SHOP_TIMEZONE``, else UTC."""
    value = zone if zone is not None else os.environ.get(SHOP_TIMEZONE_ENV, "")
    return value.strip() or DEFAULT_SHOP_TIMEZONE


def check_timezone(con: duckdb.DuckDBPyConnection, zone: str) -> str:
    """Return ``zone`` when DuckDB (ICU) knows it.

    Raises
    ------
    ValueError
        Naming the setting and DuckDB's closest candidates.
    """
    try:
        con.execute("SELECT timezone(?, TIMESTAMP '2000-01-01')", [zone]).fetchall()
    except duckdb.Error as exc:
        hint = str(exc).split("Candidate time zones:")[-1].strip()
        raise ValueError(
            f"{SHOP_TIMEZONE_ENV}={zone!r} is not a time zone; set an IANA name such as "
            f"'Europe/Paris' or 'UTC' (close names: {hint})"
        ) from exc
    return zone


def naive_to_utc(value: str, shop_zone: str, dialect: Dialect = DUCKDB) -> str:
    """SQL turning a naive ``TIMESTAMP`` read in ``shop_zone`` into naive UTC."""
    if shop_zone.lower() in _UTC_NAMES:
        return value
    return dialect.naive_to_utc(value, shop_zone)


def zone_sql(text: str, dialect: Dialect = DUCKDB) -> str:
    """SQL: the zone part of a timestamp text (``''`` for a naive value)."""
    return f"coalesce(regexp_extract({text}, {dialect.literal(_ZONE_PATTERN)}, 1), '')"


def timestamp_sql(
    text: str, zone: str, shop_zone: str, dialect: Dialect = DUCKDB
) -> tuple[str, str]:
    """SQL typing a timestamp *text* whose zone part is the SQL expression ``zone``.

    Returns
    -------
    typed, bad_zone : str
        The naive-UTC ``TIMESTAMP`` (NULL when unreadable) and a condition true when the
        date and time read but the zone does not (`unparseable_time_zone`).
    """
    clock = f"rtrim(left({text}, length({text}) - length({zone})))"
    local = dialect.local_timestamp(clock)
    instant = dialect.instant_to_utc(dialect.instant(clock, zone))
    zone_ok = (
        f"({instant} IS NOT NULL AND "
        f"abs({dialect.seconds_between(instant, local)}) <= {MAX_OFFSET_SECONDS})"
    )
    naive = naive_to_utc(dialect.local_timestamp(text), shop_zone, dialect)
    typed = f"CASE WHEN {zone} = '' THEN {naive} WHEN {zone_ok} THEN {instant} END"
    # CASE, not AND: DuckDB evaluates every operand of an AND, and the zone's casts cost
    # seconds per million rows that have no zone at all.
    bad_zone = (
        f"CASE WHEN {zone} = '' THEN false "
        f"ELSE {local} IS NOT NULL AND NOT coalesce({zone_ok}, false) END"
    )
    return typed, bad_zone


def typed_timestamp_sql(
    source: str, staged_type: str, shop_zone: str, dialect: Dialect = DUCKDB
) -> str | None:
    """SQL for a staged column that already has a temporal type, or None for text.

    ``TIMESTAMP WITH TIME ZONE`` is an instant; ``TIMESTAMP`` and ``DATE`` are naive
    (the shop's zone).
    """
    kind = dialect.staged_time_kind(staged_type)
    if kind == "instant":
        return dialect.instant_to_utc(source)
    if kind == "naive":
        return naive_to_utc(dialect.naive(source), shop_zone, dialect)
    return None
