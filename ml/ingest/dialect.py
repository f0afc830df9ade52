"""The SQL dialects the ingest's rules are written in: DuckDB (the default) and Spark SQL.

:mod:`ml.ingest.rules` and :mod:`ml.ingest.timestamps` hold the one definition of every
rule; what differs between engines is spelled here: quoting, casts, type names, and how
a text becomes a timestamp. Each method returns SQL over SQL (no engine is touched).

Where the engines cannot be made to agree, the difference is documented on the method
and tested (``EDGE_DIFFERENCES`` in ``tests/test_ingest_spark.py``):

* Spark's double cast takes Java's ``1.5d`` / ``1.5f`` suffixes: refused here, as DuckDB
  does. DuckDB reads ``1_000`` as 1000; Spark does not (``bad_number`` on Spark).
* Spark casts ``2026`` and ``2026-10`` to timestamps: refused here (a full date is needed,
  as on DuckDB).
* Zone names: Java's zone ids are case-sensitive (``europe/paris`` and ``utc`` are
  ``unparseable_time_zone`` on Spark, UTC instants on DuckDB).
"""

from __future__ import annotations

from dataclasses import dataclass

# Contract types (DuckDB spelling) -> Spark SQL types; timestamps are naive (NTZ).
_SPARK_TYPES = {"VARCHAR": "STRING", "TIMESTAMP": "TIMESTAMP_NTZ"}
# Spark casts a bare year or year-month to a timestamp; DuckDB needs a full date.
_FULL_DATE = r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([T ].*)?$"


@dataclass(frozen=True)
class Dialect:
    """DuckDB's SQL; :class:`SparkDialect` overrides what Spark spells differently."""

    name: str = "duckdb"

    def literal(self, text: str) -> str:
        """A string literal."""
        return "'" + text.replace("'", "''") + "'"

    def ident(self, name: str) -> str:
        """A quoted identifier (column names come from files)."""
        return '"' + name.replace('"', '""') + '"'

    def type_name(self, dtype: str) -> str:
        """The engine's name of a contract type (VARCHAR, INTEGER, ..., TIMESTAMP)."""
        return dtype

    def text(self, expr: str) -> str:
        """``expr`` of any type as text."""
        return f"{expr}::varchar"

    def try_cast(self, expr: str, dtype: str) -> str:
        """``expr`` as a contract type, NULL when it does not convert."""
        return f"try_cast({expr} as {self.type_name(dtype)})"

    def number(self, text: str) -> str:
        """A text as DOUBLE (``inf``, ``nan`` included), NULL when not a number."""
        return self.try_cast(text, "DOUBLE")

    def not_finite(self, number: str) -> str:
        """True when a DOUBLE is infinite or NaN."""
        return f"not isfinite({number})"

    def has_nul(self, text: str) -> str:
        """True when a text holds a NUL character."""
        return f"contains({text}, chr(0))"

    def is_text_type(self, staged_type: str) -> bool:
        """Whether a staged column's type is text."""
        return staged_type.upper() == "VARCHAR"

    def staged_time_kind(self, staged_type: str) -> str | None:
        """``'instant'`` (zone-aware), ``'naive'`` (timestamp or date) or None (not temporal)."""
        kind = staged_type.upper()
        if kind in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
            return "instant"
        if kind.startswith("TIMESTAMP") or kind == "DATE":
            return "naive"
        return None

    def local_timestamp(self, text: str) -> str:
        """A naive date-time text as a naive TIMESTAMP, NULL when unreadable."""
        return f"try_cast({text} AS TIMESTAMP)"

    def naive(self, expr: str) -> str:
        """A staged DATE or naive TIMESTAMP column as a naive TIMESTAMP."""
        return f"CAST({expr} AS TIMESTAMP)"

    def instant(self, clock: str, zone: str) -> str:
        """A date-time text and its zone (offset or name) as an instant, NULL when unreadable."""
        # DuckDB reads '...00-05:00', '...00Z' and '...00 Europe/Paris', not '...00 -05:00'.
        return (
            f"coalesce(try_cast({clock} || {zone} AS TIMESTAMPTZ), "
            f"try_cast({clock} || ' ' || {zone} AS TIMESTAMPTZ))"
        )

    def instant_to_utc(self, instant: str) -> str:
        """An instant as naive UTC."""
        return f"timezone('UTC', {instant})"

    def naive_to_utc(self, value: str, zone: str) -> str:
        """A naive TIMESTAMP read as wall-clock time in ``zone`` (a name), as naive UTC."""
        return f"timezone('UTC', timezone({self.literal(zone)}, {value}))"

    def seconds_between(self, start: str, end: str) -> str:
        """Whole seconds from ``start`` to ``end`` (naive timestamps)."""
        return f"date_diff('second', {start}, {end})"


@dataclass(frozen=True)
class SparkDialect(Dialect):
    """Spark SQL (4.x) with the session settings of :func:`ml.spark.session.spark_conf`:
    ANSI off, session time zone UTC, ``TIMESTAMP`` meaning TIMESTAMP_NTZ."""

    name: str = "spark"

    def literal(self, text: str) -> str:
        # Spark reads backslash escapes inside literals (a regex's \d would lose its \).
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def ident(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def type_name(self, dtype: str) -> str:
        return _SPARK_TYPES.get(dtype, dtype)

    def text(self, expr: str) -> str:
        return f"cast({expr} as string)"

    def number(self, text: str) -> str:
        # Java's parser takes a d/f type suffix after the digits ('1.5d', '2f'); DuckDB
        # refuses it ('inf' is no suffix).
        return (
            f"case when {text} rlike '[0-9.][dDfF]$' then null else try_cast({text} as DOUBLE) end"
        )

    def not_finite(self, number: str) -> str:
        return f"(isnan({number}) or abs({number}) = double('inf'))"

    def is_text_type(self, staged_type: str) -> bool:
        return staged_type.lower() == "string"

    def staged_time_kind(self, staged_type: str) -> str | None:
        kind = staged_type.lower()
        if kind in ("timestamp", "timestamp_ltz"):
            return "instant"
        if kind in ("timestamp_ntz", "date"):
            return "naive"
        return None

    def local_timestamp(self, text: str) -> str:
        return (
            f"case when {text} rlike {self.literal(_FULL_DATE)} "
            f"then try_cast({text} AS TIMESTAMP_NTZ) end"
        )

    def naive(self, expr: str) -> str:
        return f"CAST({expr} AS TIMESTAMP_NTZ)"

    def instant(self, clock: str, zone: str) -> str:
        # Spark reads a zone only after the seconds ('09:00 UTC' is NULL, '09:00:00 UTC'
        # is not): the clock is read first and written back in full.
        full = f"CAST({self.local_timestamp(clock)} AS STRING)"
        return (
            f"coalesce(try_cast({full} || {zone} AS TIMESTAMP_LTZ), "
            f"try_cast({full} || ' ' || {zone} AS TIMESTAMP_LTZ))"
        )

    def instant_to_utc(self, instant: str) -> str:
        # The session's zone is UTC: an instant's local time is its UTC time.
        return f"CAST({instant} AS TIMESTAMP_NTZ)"

    def naive_to_utc(self, value: str, zone: str) -> str:
        # In a fall-back hour a wall-clock time happens twice: Java takes the first
        # (summer) instant, DuckDB the second; the second is taken here too when it
        # reads back as the same wall-clock time (folds of one hour: every real zone
        # but Lord Howe's half hour).
        zone_sql = self.literal(zone)
        first = f"CAST(to_utc_timestamp({value}, {zone_sql}) AS TIMESTAMP_NTZ)"
        second = f"{first} + INTERVAL 1 HOUR"
        return (
            f"CASE WHEN CAST(from_utc_timestamp({second}, {zone_sql}) AS TIMESTAMP_NTZ) "
            f"= {value} THEN {second} ELSE {first} END"
        )

    def seconds_between(self, start: str, end: str) -> str:
        return f"timestampdiff(SECOND, {start}, {end})"


DUCKDB = Dialect()
SPARK = SparkDialect()
