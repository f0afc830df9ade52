"""Defect injection: bad rows of every kind the ingest must quarantine.

Defects are *extra* rows: copies of real rows with one thing broken (and a fresh key, so
the copy does not also count as a duplicate). The clean rows stay exactly the rows of
the defect-free shop, nothing references a defect row, and so no defect cascades:
ingesting a defective shop must load the clean shop and quarantine exactly the rows
listed in ``_expected_defects.parquet``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from ml.datagen.common import id_expr
from ml.ingest.contract import Entity

# Rules the ingest names, per entity, that the generator injects.
RULES: dict[str, tuple[str, ...]] = {
    "customers": ("missing_value", "unparseable_timestamp", "future_timestamp", "duplicate_key"),
    "products": (
        "missing_value",
        "unparseable_timestamp",
        "future_timestamp",
        "duplicate_key",
        "negative_price",
    ),
    "orders": (
        "missing_value",
        "unparseable_timestamp",
        "future_timestamp",
        "duplicate_key",
        "unknown_order_status",
    ),
    "order_lines": (
        "missing_value",
        "duplicate_key",
        "negative_price",
        "zero_quantity",
        "bad_integer",
        "orphan_reference",
    ),
    "events": (
        "missing_value",
        "unparseable_timestamp",
        "future_timestamp",
        "duplicate_key",
        "unknown_event_type",
        "orphan_reference",
    ),
    "reviews": (
        "missing_value",
        "unparseable_timestamp",
        "future_timestamp",
        "duplicate_key",
        "rating_out_of_range",
        "bad_integer",
        "orphan_reference",
    ),
    "campaigns": ("missing_value", "unparseable_timestamp", "duplicate_key", "bad_integer"),
}
# Entities at least this big get every rule at least once, whatever the rate.
MIN_ROWS_FOR_EVERY_RULE = 20
EXPECTED_DEFECTS_SCHEMA = {"entity": pl.Utf8, "source_row": pl.Int64, "rule": pl.Utf8}

UNPARSEABLE_TIMESTAMPS = ("2026-13-45 25:61:00", "yesterday", "2026-02-30 10:00:00", "31/31/2026")
UNKNOWN_EVENT_TYPES = ("teleport", "page_view", "share", "checkout_start")
UNKNOWN_ORDER_STATUSES = ("shipped", "pending", "on_hold", "lost_in_space")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
KEY_PREFIXES = {
    "customers": "C",
    "products": "P",
    "orders": "O",
    "events": "E",
    "reviews": "R",
    "campaigns": "CMP",
}
# The column each entity breaks for a rule, where it is not implied by the contract.
PRICE_COLUMN = {"products": "price", "order_lines": "unit_price"}
INTEGER_COLUMN = {"order_lines": "quantity", "reviews": "rating", "campaigns": "max_audience"}
# Unknown product ids start this far above the last real one.
ORPHAN_ID_OFFSET = 500_000
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def defect_count(rows: int, rate: float, rules: int) -> int:
    """Defect rows to add: ``rate`` of the rows, at least one per rule if big enough."""
    if rate <= 0 or rows == 0:
        return 0
    count = round(rate * rows)
    if rows >= MIN_ROWS_FOR_EVERY_RULE:
        count = max(count, rules)
    return min(count, rows)


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as Utf8 (timestamps as ``YYYY-MM-DD HH:MM:SS``), so bad values fit."""
    return frame.select(
        pl.col(name).dt.strftime(TIMESTAMP_FORMAT)
        if dtype == pl.Datetime
        else pl.col(name).cast(pl.Utf8)
        for name, dtype in frame.schema.items()
    )


def pick(values: tuple[str, ...], rng: np.random.Generator, n: int) -> pl.Series:
    """``n`` values drawn from a small vocabulary."""
    return pl.Series(values, dtype=pl.Utf8).gather(rng.integers(0, len(values), n))


def set_one_of(
    rows: pl.DataFrame, columns: list[str], values: pl.Series | None, rng: np.random.Generator
) -> pl.DataFrame:
    """In each row, overwrite one randomly chosen column of ``columns`` with its value
    from ``values`` (``None``: with null)."""
    choice = pl.Series(rng.integers(0, len(columns), rows.height))
    replacement = pl.lit(None, dtype=pl.Utf8) if values is None else pl.lit(values)
    return rows.with_columns(
        pl.when(choice == i).then(replacement).otherwise(pl.col(c)).alias(c)
        for i, c in enumerate(columns)
    )


def timestamp_columns(entity: Entity) -> list[str]:
    return [c.name for c in entity.columns if c.dtype == "TIMESTAMP"]


def to_future(column: str) -> pl.Expr:
    """Move a timestamp text to 2099 (28 February when it was a 29th)."""
    moved = pl.lit("2099") + pl.col(column).str.slice(4)
    return moved.str.replace("^2099-02-29", "2099-02-28").alias(column)


def break_rows(
    rule: str, rows: pl.DataFrame, entity: Entity, rng: np.random.Generator, n_products: int
) -> pl.DataFrame:
    """Apply one rule's corruption to ``rows`` (text copies of good rows)."""
    n = rows.height
    mutations: dict[str, Callable[[], pl.DataFrame]] = {
        "missing_value": lambda: set_one_of(
            rows, [c.name for c in entity.columns if not c.nullable], None, rng
        ),
        "unparseable_timestamp": lambda: set_one_of(
            rows, timestamp_columns(entity), pick(UNPARSEABLE_TIMESTAMPS, rng, n), rng
        ),
        "future_timestamp": lambda: rows.with_columns(to_future(entity.time_columns[0])),
        "duplicate_key": lambda: rows,
        "negative_price": lambda: rows.with_columns(
            (pl.lit("-") + pl.col(PRICE_COLUMN[entity.name])).alias(PRICE_COLUMN[entity.name])
        ),
        "zero_quantity": lambda: rows.with_columns(pl.lit("0").alias("quantity")),
        "bad_integer": lambda: rows.with_columns(
            pl.col(INTEGER_COLUMN[entity.name])
            .replace_strict([str(i) for i in range(10)], list(NUMBER_WORDS), default="many")
            .alias(INTEGER_COLUMN[entity.name])
        ),
        "unknown_event_type": lambda: rows.with_columns(
            event_type=pick(UNKNOWN_EVENT_TYPES, rng, n)
        ),
        "unknown_order_status": lambda: rows.with_columns(
            status=pick(UNKNOWN_ORDER_STATUSES, rng, n)
        ),
        "rating_out_of_range": lambda: rows.with_columns(rating=pick(("0", "6"), rng, n)),
        "orphan_reference": lambda: rows.with_columns(
            id_expr(
                "P", pl.int_range(n_products + ORPHAN_ID_OFFSET, n_products + ORPHAN_ID_OFFSET + n)
            ).alias("product_id")
        ),
    }
    return mutations[rule]()


def fresh_keys(copies: pl.DataFrame, clean: pl.DataFrame, entity: Entity) -> pl.DataFrame:
    """Give copies keys no clean row has, so only their own defect flags them."""
    if entity.name == "order_lines":
        # Next free line numbers of the same order.
        last = clean.group_by("order_id").agg(pl.col("line_no").cast(pl.Int64).max().alias("_last"))
        return (
            copies.join(last, on="order_id", how="left", maintain_order="left")
            .with_columns(
                (pl.col("_last") + pl.int_range(1, pl.len() + 1).over("order_id"))
                .cast(pl.Utf8)
                .alias("line_no")
            )
            .drop("_last")
        )
    key = entity.primary_key[0]
    first_free = clean.height + 1  # clean ids are numbered 1..n
    numbers = pl.int_range(first_free, first_free + pl.len())
    return copies.with_columns(id_expr(KEY_PREFIXES[entity.name], numbers).alias(key))


def placement_keys(
    source: np.ndarray, duplicate: np.ndarray, rows: int, rng: np.random.Generator
) -> np.ndarray:
    """Where defect rows go, on the scale of clean row positions ``0..rows-1``.

    A duplicate goes anywhere after its original; other defects anywhere.
    """
    u = rng.random(len(source))
    after_source = source + 0.5 + u * (rows - source - 0.5)
    return np.where(duplicate, after_source, u * rows)


def inject_defects(
    entity: Entity, clean: pl.DataFrame, rate: float, rng: np.random.Generator, n_products: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return the entity as text with defect rows mixed in, and the expected defects.

    Parameters
    ----------
    entity : Entity
        The contract entity of ``clean``.
    clean : polars.DataFrame
        The typed, defect-free rows.
    rate : float
        Defect rows to add, as a share of the clean rows.
    rng : numpy.random.Generator
        The entity's defect stream.
    n_products : int
        Products in the shop, to make product ids that do not exist.

    Returns
    -------
    (polars.DataFrame, polars.DataFrame)
        The rows (all Utf8; unchanged and typed when no defect applies) and the
        ``entity, source_row, rule`` list (1-based rows of the returned frame).
    """
    rules = RULES.get(entity.name, ())
    count = defect_count(clean.height, rate, len(rules))
    if count == 0:
        return clean, pl.DataFrame(schema=EXPECTED_DEFECTS_SCHEMA)
    text = as_text(clean)
    source = np.sort(rng.choice(clean.height, size=count, replace=False))
    rule_of = rng.permutation(np.resize(rng.permutation(len(rules)), count))
    copies = text[source]
    # Keys are renumbered once for all copies so no two defect rows share one.
    renamed = fresh_keys(copies, text, entity)
    parts, part_source, part_rule = [], [], []
    for index, rule in enumerate(rules):
        chosen = np.flatnonzero(rule_of == index)
        if not len(chosen):
            continue
        rows = (copies if rule == "duplicate_key" else renamed)[chosen]
        parts.append(break_rows(rule, rows, entity, rng, n_products))
        part_source.append(source[chosen])
        part_rule += [rule] * len(chosen)
    defects = pl.concat(parts)
    defect_source = np.concatenate(part_source)
    placement = placement_keys(
        defect_source, np.array(part_rule) == "duplicate_key", clean.height, rng
    )
    # Clean row i sits at i; a stable sort keeps clean rows first on (unlikely) ties.
    position = np.concatenate([np.arange(clean.height, dtype=np.float64), placement])
    order = np.argsort(position, kind="stable")
    mixed = pl.concat([text, defects]).select(pl.all().gather(order))
    row_of = np.empty(len(order), dtype=np.int64)
    row_of[order] = np.arange(1, len(order) + 1)
    expected = pl.DataFrame(
        {"entity": entity.name, "source_row": row_of[clean.height :], "rule": part_rule},
        schema=EXPECTED_DEFECTS_SCHEMA,
    ).sort("source_row")
    return mixed, expected
