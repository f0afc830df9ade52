"""Validation rules over a staged file: types, required values, bounds, business rules, keys.

:func:`validate` types every contract column in one projection and names, per row, the
first rule it breaks (``_rule``) with the column or condition (``_detail``); then
duplicate keys and orphan references are marked against what is already loaded.

The rules are SQL text built once for either engine (:mod:`ml.ingest.dialect`):
:func:`typing_sql` and :func:`key_rules_sql` return the queries, which :func:`validate`
runs in DuckDB and :mod:`ml.spark.ingest` in Spark.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
from ml.ingest.dialect import DUCKDB, Dialect
from ml.ingest.timestamps import timestamp_sql, typed_timestamp_sql, zone_sql

_TYPE_RULES = {
    "INTEGER": "bad_integer",
    "BIGINT": "bad_integer",
    "DOUBLE": "bad_number",
    "BOOLEAN": "bad_boolean",
    "TIMESTAMP": "unparseable_timestamp",
}
_NUMERIC = ("INTEGER", "BIGINT", "DOUBLE")


def _sql_list(values: Iterable[str], dialect: Dialect = DUCKDB) -> str:
    return ", ".join(dialect.literal(v) for v in values)


def _typed_expr(dtype: str, source: str, dialect: Dialect = DUCKDB) -> str:
    """SQL turning a staged value (any type) into the contract type, NULL if unparseable."""
    text = f"nullif(trim({dialect.text(source)}), '')"
    if dtype == "VARCHAR":
        return f"nullif({dialect.text(source)}, '')"
    if dtype == "BOOLEAN":
        return (
            f"case lower({text}) when 'yes' then true when 'y' then true when 'no' then false "
            f"when 'n' then false else {dialect.try_cast(text, 'boolean')} end"
        )
    if dtype in ("INTEGER", "BIGINT"):
        # Accept '3.0' (spreadsheet exports) but not '3.5': DuckDB's own cast would round
        # '2.5' to 3, silently changing a quantity, so integrality is checked first.
        number = dialect.number(text)
        return (
            f"case when {number} = floor({number}) then coalesce({dialect.try_cast(text, dtype)}, "
            f"{dialect.try_cast(number, dtype)}) end"
        )
    if dtype == "DOUBLE":
        return dialect.number(text)
    return dialect.try_cast(text, dtype)


def _entity_rules(entity: Entity, dialect: Dialect = DUCKDB) -> list[tuple[str, str]]:
    """Business rules as ``(rule, SQL condition true when broken)`` over typed columns."""

    rules = {
        "products": [("negative_price", "price < 0")],
        "orders": [
            ("unknown_order_status", f"status not in ({_sql_list(ORDER_STATUSES, dialect)})")
        ],
        "order_lines": [("negative_price", "unit_price < 0"), ("zero_quantity", "quantity = 0")],
        "events": [
            ("unknown_event_type", f"event_type not in ({_sql_list(EVENT_TYPES, dialect)})")
        ],
        "reviews": [("rating_out_of_range", "rating not between 1 and 5")],
        "campaigns": [
            (
                "unknown_target_type",
                f"target_type not in ({_sql_list(CAMPAIGN_TARGET_TYPES, dialect)})",
            ),
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


def typing_sql(
    entity: Entity,
    stage: str,
    header: list[str],
    staged_types: dict[str, str],
    future_cutoff: datetime,
    shop_zone: str = "UTC",
    dialect: Dialect = DUCKDB,
) -> tuple[str, str]:
    """The two queries typing a staged file: its cast projection and its first broken rule.

    The first query (over the relation ``stage``, which has ``_row`` and the file's
    columns of types ``staged_types``) computes the typed value of every column and,
    beside it, whether the source value was present (``_p_<col>``), its length
    (``_len_<col>``), whether it is a non-finite number (``_nf_<col>``) or a timestamp
    with an unreadable zone (``_tz_<col>``). The second, over the first's result named
    ``{stage}_cast``, keeps ``_row``, the typed columns, ``_rule`` and ``_detail``. Naive
    timestamps are read in ``shop_zone`` (see :mod:`ml.ingest.timestamps`).
    """
    by_lower = {h.strip().lower(): h for h in header}
    # Ids are compared trimmed everywhere downstream (dbt staging trims them): ' C1' and
    # 'C1' are one key, so they are stored trimmed and a repeat is a duplicate_key here,
    # not a failed uniqueness test in tonight's dbt build.
    identifiers = set(entity.primary_key) | {fk.column for fk in entity.foreign_keys}
    select, flags, zones, checks = [], [], [], []
    # A NUL byte is the same defect wherever it is: in any column of any row.
    for number, name in enumerate(header):
        if dialect.is_text_type(staged_types.get(name, "")):
            source = f"s.{dialect.ident(name)}"
            flags.append(f"coalesce({dialect.has_nul(source)}, false) as _nul_{number}")
            checks.append(("nul_byte", f"_nul_{number}", name))
    for col in entity.columns:
        source_name = by_lower.get(col.name)
        if source_name is None:
            default = col.default if col.default is not None else "null"
            select.append(f"cast({default} as {dialect.type_name(col.dtype)}) as {col.name}")
            continue
        source = f"s.{dialect.ident(source_name)}"
        text = f"nullif(trim({dialect.text(source)}), '')"
        typed = _typed_expr(col.dtype, source, dialect)
        if col.dtype == "VARCHAR" and col.name in identifiers:
            typed = text
        if col.dtype == "TIMESTAMP":
            typed = typed_timestamp_sql(source, staged_types[source_name], shop_zone, dialect)
            if typed is None:  # text: offsets to UTC, naive values in the shop's zone
                zones.append(f"{zone_sql(text, dialect)} as _zone_{col.name}")
                typed, bad_zone = timestamp_sql(text, f"s._zone_{col.name}", shop_zone, dialect)
                flags.append(f"{bad_zone} as _tz_{col.name}")
                checks.append(("unparseable_time_zone", f"_tz_{col.name}", col.name))
        if (entity.name, col.name) in _NORMALISED:
            typed = f"lower(trim({typed}))"
        select.append(f"{typed} as {col.name}")
        flags.append(f"{text} is not null as _p_{col.name}")
        if not col.nullable:
            checks.append(("missing_value", f"not _p_{col.name}", col.name))
        if col.dtype in _NUMERIC:
            not_finite = dialect.not_finite(dialect.number(text))
            flags.append(f"coalesce({not_finite}, false) as _nf_{col.name}")
            checks.append(("non_finite_number", f"_nf_{col.name}", col.name))
        if col.dtype in _TYPE_RULES:
            checks.append(
                (_TYPE_RULES[col.dtype], f"_p_{col.name} and {col.name} is null", col.name)
            )
        if col.dtype == "VARCHAR":
            flags.append(f"length({dialect.text(source)}) as _len_{col.name}")
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
    for rule, broken in _entity_rules(entity, dialect):
        checks.append((rule, f"coalesce({broken}, false)", broken))

    rule_expr = "case " + " ".join(f"when {c} then '{r}'" for r, c, _ in checks) + " end"
    detail_expr = (
        "case " + " ".join(f"when {c} then {dialect.literal(d)}" for _, c, d in checks) + " end"
    )
    # The zone of each text timestamp, computed once and read by its typed value and flag.
    staged = f"(select *, {', '.join(zones)} from {stage} s)" if zones else stage
    cast_sql = f"select s._row, {', '.join(select + flags)} from {staged} s"
    typed_sql = (
        f"select _row, {', '.join(entity.column_names)}, {rule_expr} as _rule, "
        f"{detail_expr} as _detail from {stage}_cast"
    )
    return cast_sql, typed_sql


def _raw_table(name: str) -> str:
    return f"raw.{name}"


def key_rules_sql(
    entity: Entity,
    typed: str,
    source_file: str,
    dialect: Dialect = DUCKDB,
    loaded: Callable[[str], str] = _raw_table,
) -> str:
    """A query over ``typed`` (a :func:`typing_sql` result) that adds the key rules.

    ``duplicate_key``: a key repeated within the file (after its first row) or already
    loaded from another file; then ``orphan_reference``: a reference to a key the parent
    table does not hold. Only rows no earlier rule took are marked. ``loaded(entity)``
    names the relation of an entity's loaded rows (default ``raw.<entity>``).
    """
    key = ", ".join(entity.primary_key)
    rules = [("duplicate_key", "(t._copy_no > 1 or e._elsewhere)", key)]
    joins = [
        f"left join (select distinct {key}, true as _elsewhere from {loaded(entity.name)} "
        f"where _source_file <> {dialect.literal(source_file)}) e on "
        + " and ".join(f"t.{k} = e.{k}" for k in entity.primary_key)
    ]
    for number, fk in enumerate(entity.foreign_keys):
        parent = f"p{number}"
        joins.append(
            f"left join (select distinct {fk.parent_column} as _key from {loaded(fk.parent)} "
            f"where {fk.parent_column} is not null) {parent} on t.{fk.column} = {parent}._key"
        )
        rules.append(
            (
                "orphan_reference",
                f"t.{fk.column} is not null and {parent}._key is null",
                f"{fk.column} -> {fk.parent}.{fk.parent_column}",
            )
        )
    rule = "case when t._rule is not null then t._rule " + " ".join(
        f"when {c} then '{r}'" for r, c, _ in rules
    )
    detail = "case when t._rule is not null then t._detail " + " ".join(
        f"when {c} then {dialect.literal(d)}" for _, c, d in rules
    )
    columns = ", ".join(f"t.{c}" for c in entity.column_names)
    # Copies are numbered among the rows no rule took yet (the first of them loads).
    numbered = (
        f"select *, row_number() over (partition by {key}, _rule is null order by _row) "
        f"as _copy_no from {typed}"
    )
    return (
        f"select t._row, {columns}, {rule} end as _rule, {detail} end as _detail "
        f"from ({numbered}) t {' '.join(joins)}"
    )


def validate(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    stage: str,
    header: list[str],
    source_file: str,
    future_cutoff: datetime,
    shop_zone: str = "UTC",
) -> None:
    """Create temp ``{stage}_typed`` in DuckDB: typed contract columns, ``_rule``, ``_detail``.

    See :func:`typing_sql` (types, values, bounds, business rules) and
    :func:`key_rules_sql` (duplicates, orphans).
    """
    staged_types = {r[0]: r[1] for r in con.execute(f"describe {stage}").fetchall()}
    cast_sql, typed_sql = typing_sql(entity, stage, header, staged_types, future_cutoff, shop_zone)
    keyed = key_rules_sql(entity, f"{stage}_checked", source_file)
    # One statement, nothing in between materialized: at 100M events each wide temp table
    # was another full copy spilled to disk (the file's 26 GB filled the disk).
    con.execute(
        f"create or replace temp table {stage}_typed as "
        f"with {stage}_cast as not materialized ({cast_sql}), "
        f"{stage}_checked as not materialized ({typed_sql}) {keyed}"
    )
