"""Validation rules over a staged file: types, required values, bounds, business rules, keys.

:func:`validate` types every contract column in one projection and names, per row, the
first rule it breaks (``_rule``) with the column or condition (``_detail``); then
duplicate keys and orphan references are marked against what is already loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import duckdb

from ml.ingest.contract import (
    CAMPAIGN_TARGET_TYPES,
    EVENT_TYPES,
    MAX_TEXT_CHARS,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    ORDER_STATUSES,
    Column,
    Entity,
)
from ml.ingest.timestamps import timestamp_sql, typed_timestamp_sql, zone_sql

_TYPE_RULES = {
    "INTEGER": "bad_integer",
    "BIGINT": "bad_integer",
    "DOUBLE": "bad_number",
    "BOOLEAN": "bad_boolean",
    "TIMESTAMP": "unparseable_timestamp",
}
_NUMERIC = ("INTEGER", "BIGINT", "DOUBLE")


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _typed_expr(dtype: str, source: str) -> str:
    """SQL turning a staged value (any type) into the contract type, NULL if unparseable."""
    text = f"nullif(trim({source}::varchar), '')"
    if dtype == "VARCHAR":
        return f"nullif({source}::varchar, '')"
    if dtype == "BOOLEAN":
        return (
            f"case lower({text}) when 'yes' then true when 'y' then true when 'no' then false "
            f"when 'n' then false else try_cast({text} as boolean) end"
        )
    if dtype in ("INTEGER", "BIGINT"):
        # Accept '3.0' (spreadsheet exports) but not '3.5': DuckDB's own cast would round
        # '2.5' to 3, silently changing a quantity, so integrality is checked first.
        number = f"try_cast({text} as double)"
        return (
            f"case when {number} = floor({number}) then coalesce(try_cast({text} as {dtype}), "
            f"try_cast({number} as {dtype})) end"
        )
    return f"try_cast({text} as {dtype})"


def _entity_rules(entity: Entity) -> list[tuple[str, str]]:
    """Business rules as ``(rule, SQL condition true when broken)`` over typed columns."""
    rules = {
        "products": [("negative_price", "price < 0")],
        "orders": [("unknown_order_status", f"status not in ({_sql_list(ORDER_STATUSES)})")],
        "order_lines": [("negative_price", "unit_price < 0"), ("zero_quantity", "quantity = 0")],
        "events": [("unknown_event_type", f"event_type not in ({_sql_list(EVENT_TYPES)})")],
        "reviews": [("rating_out_of_range", "rating not between 1 and 5")],
        "campaigns": [
            ("unknown_target_type", f"target_type not in ({_sql_list(CAMPAIGN_TARGET_TYPES)})"),
            ("bad_control_share", "control_share not between 0 and 1"),
            ("negative_max_audience", "max_audience < 0"),
            ("bad_time_window", "ends_at < starts_at"),
        ],
    }
    return rules.get(entity.name, [])


# Columns normalised on load: enumerations compare lower-case and trimmed.
_NORMALISED = {("orders", "status"), ("events", "event_type"), ("campaigns", "target_type")}


def _bounds_check(col: Column) -> tuple[str, str] | None:
    """``(SQL condition true outside the documented bounds, detail)`` of a typed column."""
    if col.dtype == "TIMESTAMP":
        condition = (
            f"{col.name} < TIMESTAMP '{MIN_TIMESTAMP}' OR {col.name} >= TIMESTAMP '{MAX_TIMESTAMP}'"
        )
        return condition, f"{col.name} outside [{MIN_TIMESTAMP}, {MAX_TIMESTAMP})"
    if col.bounds is None:
        return None
    low, high = col.bounds
    parts = [f"{col.name} < {low!r}" if low != float("-inf") else ""]
    parts.append(f"{col.name} > {high!r}" if high != float("inf") else "")
    condition = " OR ".join(p for p in parts if p)
    if not condition:
        return None
    shown = [f"{b:,.0f}" if b not in (float("inf"), float("-inf")) else "" for b in (low, high)]
    return condition, f"{col.name} outside [{shown[0]}, {shown[1]}]".replace("[, ", "[..., ")


def validate(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    stage: str,
    header: list[str],
    source_file: str,
    future_cutoff: datetime,
    shop_zone: str = "UTC",
) -> None:
    """Create temp ``{stage}_typed``: typed contract columns plus ``_rule`` and ``_detail``.

    One projection computes the typed value of every column and, beside it, whether the
    source value was present (``_p_<col>``), its length (``_len_<col>``), whether it is a
    non-finite number (``_nf_<col>``) or a timestamp with an unreadable zone
    (``_tz_<col>``), so every rule is a condition over that projection. Naive timestamps
    are read in ``shop_zone`` (see :mod:`ml.ingest.timestamps`).
    """
    staged_types = {r[0]: r[1] for r in con.execute(f"describe {stage}").fetchall()}
    by_lower = {h.strip().lower(): h for h in header}
    # Ids are compared trimmed everywhere downstream (dbt staging trims them): ' C1' and
    # 'C1' are one key, so they are stored trimmed and a repeat is a duplicate_key here,
    # not a failed uniqueness test in tonight's dbt build.
    identifiers = set(entity.primary_key) | {fk.column for fk in entity.foreign_keys}
    select, flags, zones, checks = [], [], [], []
    # A NUL byte is the same defect wherever it is: in any column of any row.
    for number, name in enumerate(header):
        if staged_types.get(name) == "VARCHAR":
            source = f"s.{quote_identifier(name)}"
            flags.append(f"coalesce(contains({source}, chr(0)), false) as _nul_{number}")
            checks.append(("nul_byte", f"_nul_{number}", name))
    for col in entity.columns:
        source_name = by_lower.get(col.name)
        if source_name is None:
            default = col.default if col.default is not None else "null"
            select.append(f"cast({default} as {col.dtype}) as {col.name}")
            continue
        source = f"s.{quote_identifier(source_name)}"
        text = f"nullif(trim({source}::varchar), '')"
        typed = _typed_expr(col.dtype, source)
        if col.dtype == "VARCHAR" and col.name in identifiers:
            typed = text
        if col.dtype == "TIMESTAMP":
            typed = typed_timestamp_sql(source, staged_types[source_name], shop_zone)
            if typed is None:  # text: offsets to UTC, naive values in the shop's zone
                zones.append(f"{zone_sql(text)} as _zone_{col.name}")
                typed, bad_zone = timestamp_sql(text, f"s._zone_{col.name}", shop_zone)
                flags.append(f"{bad_zone} as _tz_{col.name}")
                checks.append(("unparseable_time_zone", f"_tz_{col.name}", col.name))
        if (entity.name, col.name) in _NORMALISED:
            typed = f"lower(trim({typed}))"
        select.append(f"{typed} as {col.name}")
        flags.append(f"{text} is not null as _p_{col.name}")
        if not col.nullable:
            checks.append(("missing_value", f"not _p_{col.name}", col.name))
        if col.dtype in _NUMERIC:
            flags.append(
                f"coalesce(not isfinite(try_cast({text} as double)), false) as _nf_{col.name}"
            )
            checks.append(("non_finite_number", f"_nf_{col.name}", col.name))
        if col.dtype in _TYPE_RULES:
            checks.append(
                (_TYPE_RULES[col.dtype], f"_p_{col.name} and {col.name} is null", col.name)
            )
        if col.dtype == "VARCHAR":
            flags.append(f"length({source}::varchar) as _len_{col.name}")
            checks.append(("text_too_long", f"_len_{col.name} > {MAX_TEXT_CHARS}", col.name))
    cutoff = f"TIMESTAMP '{future_cutoff:%Y-%m-%d %H:%M:%S}'"
    for col_name in entity.time_columns:
        if col_name in by_lower:
            checks.append(("future_timestamp", f"{col_name} > {cutoff}", col_name))
    for col in entity.columns:
        bounds = _bounds_check(col)
        if bounds and col.name in by_lower:
            condition, detail = bounds
            checks.append(("value_out_of_range", f"coalesce({condition}, false)", detail))
    for rule, broken in _entity_rules(entity):
        checks.append((rule, f"coalesce({broken}, false)", broken))

    rule_expr = "case " + " ".join(f"when {c} then '{r}'" for r, c, _ in checks) + " end"
    detail_expr = (
        "case " + " ".join(f"when {c} then {_sql_list([d])}" for _, c, d in checks) + " end"
    )
    # The zone of each text timestamp, computed once and read by its typed value and flag.
    staged = f"(select *, {', '.join(zones)} from {stage} s)" if zones else stage
    con.execute(
        f"create or replace temp table {stage}_cast as "
        f"select s._row, {', '.join(select + flags)} from {staged} s"
    )
    con.execute(
        f"""
        create or replace temp table {stage}_typed as
        select _row, {", ".join(entity.column_names)}, {rule_expr} as _rule,
               {detail_expr} as _detail
        from {stage}_cast
        """
    )
    con.execute(f"drop table {stage}_cast")
    _mark_duplicates(con, entity, stage, source_file)
    _mark_orphans(con, entity, stage)


def _mark_duplicates(
    con: duckdb.DuckDBPyConnection, entity: Entity, stage: str, source_file: str
) -> None:
    """Flag repeats of a primary key: within the file (after the first) and across files."""
    key = ", ".join(entity.primary_key)
    join_on = " and ".join(f"t.{k} = r.{k}" for k in entity.primary_key)
    con.execute(
        f"""
        update {stage}_typed set _rule = 'duplicate_key', _detail = '{key}'
        where _rule is null and _row in (
            select _row from (
                select _row, row_number() over (partition by {key} order by _row) as copy_no
                from {stage}_typed where _rule is null
            ) where copy_no > 1
            union all
            select t._row from {stage}_typed t
            join raw.{entity.name} r on {join_on}
            where t._rule is null and r._source_file <> ?
        )
        """,
        [source_file],
    )


def _mark_orphans(con: duckdb.DuckDBPyConnection, entity: Entity, stage: str) -> None:
    """Flag references to rows not loaded in the parent table."""
    for fk in entity.foreign_keys:
        con.execute(
            f"""
            update {stage}_typed set _rule = 'orphan_reference',
                _detail = '{fk.column} -> {fk.parent}.{fk.parent_column}'
            where _rule is null and {fk.column} is not null
              and {fk.column} not in (select {fk.parent_column} from raw.{fk.parent}
                                      where {fk.parent_column} is not null)
            """
        )
