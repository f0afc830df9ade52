"""Compare two published snapshots (a DuckDB and a Spark run of the same shop).

What the engine acceptance checks: the same table set with the same row counts, and
``customer_features`` / ``customer_segments`` equal row by row (floats within a relative
tolerance: both engines sum money in value order, so differences are rounding only).
Pure reads of two DuckDB files; no Spark needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

# Tables compared value by value, with their key.
EQUAL_TABLES = {"customer_features": ("customer_id",), "customer_segments": ("customer_id",)}
# Columns that differ by design between two runs (when, which run, which model version).
RUN_COLUMNS = frozenset({"run_id", "started_at", "finished_at", "stage_seconds"})


@dataclass
class SnapshotParity:
    """How two snapshots compare."""

    tables_only_in_first: list[str] = field(default_factory=list)
    tables_only_in_second: list[str] = field(default_factory=list)
    row_counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    value_mismatches: dict[str, list[str]] = field(default_factory=dict)

    @property
    def count_mismatches(self) -> dict[str, tuple[int, int]]:
        return {t: c for t, c in self.row_counts.items() if c[0] != c[1]}

    @property
    def equal(self) -> bool:
        return not (
            self.tables_only_in_first
            or self.tables_only_in_second
            or self.count_mismatches
            or any(self.value_mismatches.values())
        )


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return {name for (name,) in rows}


def _same(a, b, rel_tol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is None and b is None
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-9)
    return a == b


def _value_mismatches(first, second, table: str, key: tuple[str, ...], rel_tol: float, limit=10):
    columns = [
        c
        for (c,) in first.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]
    order = ", ".join(key)
    a = first.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}").fetchall()
    b = second.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}").fetchall()
    problems = []
    for row_a, row_b in zip(a, b, strict=False):
        for column, va, vb in zip(columns, row_a, row_b, strict=True):
            if not _same(va, vb, rel_tol):
                problems.append(f"{table}.{column} at {row_a[0]}: {va!r} != {vb!r}")
                if len(problems) >= limit:
                    return problems
    return problems


def compare_snapshots(first: Path | str, second: Path | str, rel_tol: float = 1e-9):
    """Compare two snapshot files; return a :class:`SnapshotParity`."""
    parity = SnapshotParity()
    with (
        duckdb.connect(str(first), read_only=True) as a,
        duckdb.connect(str(second), read_only=True) as b,
    ):
        tables_a, tables_b = _tables(a), _tables(b)
        parity.tables_only_in_first = sorted(tables_a - tables_b)
        parity.tables_only_in_second = sorted(tables_b - tables_a)
        for table in sorted(tables_a & tables_b):
            parity.row_counts[table] = (
                a.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0],
                b.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0],
            )
        for table, key in EQUAL_TABLES.items():
            if table in tables_a and table in tables_b:
                parity.value_mismatches[table] = _value_mismatches(a, b, table, key, rel_tol)
    return parity
