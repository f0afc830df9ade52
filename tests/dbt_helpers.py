"""Helpers of the dbt tests: build a warehouse from a generated shop, read and compare tables.

Plain functions (no fixtures), imported by ``tests/test_dbt_*.py``; each test module builds
its warehouse once in a module-scoped fixture with an explicit home, so the per-test
``AFFINITY_HOME`` of ``conftest.py`` never matters to them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import duckdb

from ml.warehouse import connect

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
ONLINE_RETAIL_CSV = SHARED_DATA / "online_retail_ii" / "online_retail_II_2009-2010.csv.gz"

# The marts of issue 3 (schema marts), all tables.
MART_TABLES = (
    "dim_customers",
    "dim_products",
    "fct_orders",
    "fct_order_lines",
    "fct_events",
    "customer_features",
    "customer_category_affinity",
    "product_features",
    "interaction_events",
    "interactions",
    "customer_rfm_segments",
    "product_popularity",
    "product_review_insights",
)
# A small generated shop: big enough for every segment and feature, quick to build.
SHOP = {"customers": 1_500, "products": 200, "days": 60, "seed": 11, "end_date": "2026-06-30"}
SHOP_AS_OF = "2026-06-30"


def warehouse(home: Path) -> Path:
    return home / "warehouse.duckdb"


def generate_and_ingest(home: Path, landing: Path | None = None, **shop) -> Path:
    """Generate a shop into ``landing`` (default ``home/landing/shop``) and ingest it."""
    from ml.datagen import generate_shop
    from ml.ingest import ingest

    landing = landing or home / "landing" / "shop"
    generate_shop(landing, **{**SHOP, **shop})
    ingest(landing, warehouse=warehouse(home))
    return landing


def ingest_files(home: Path, landing: Path) -> None:
    from ml.ingest import ingest

    ingest(landing, warehouse=warehouse(home))


def copy_home(source: Path, target: Path) -> Path:
    """Copy an Affinity home (warehouse, landing, dbt target) to build on it separately."""
    shutil.copytree(source, target)
    return target


def query(home: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Run a read-only query on the home's warehouse and return all rows."""
    with connect(warehouse(home), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def scalar(home: Path, sql: str, params: list | None = None):
    return query(home, sql, params)[0][0]


def relations(home: Path, schemas: Iterable[str]) -> list[tuple[str, str]]:
    """``(schema, name)`` of every table and view in the given schemas."""
    wanted = list(schemas)
    placeholders = ", ".join("?" for _ in wanted)
    return query(
        home,
        "select table_schema, table_name from information_schema.tables "
        f"where table_schema in ({placeholders}) order by 1, 2",
        wanted,
    )


def columns(home: Path, schema: str, table: str) -> list[tuple[str, str]]:
    """``(column, data_type)`` of a relation, in order."""
    return query(
        home,
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    )


def _normalized_select(con: duckdb.DuckDBPyConnection, qualified: str) -> str:
    """SELECT of a table with doubles rounded, so summation order cannot differ."""
    described = con.execute(f"describe select * from {qualified}").fetchall()
    exprs = [
        f"round({name}, 6) as {name}" if dtype.upper() in ("DOUBLE", "FLOAT") else name
        for name, dtype, *_ in described
    ]
    return f"select {', '.join(exprs)} from {qualified}"


def table_differences(
    home_a: Path, home_b: Path, tables: Iterable[str], schema: str = "marts"
) -> dict[str, tuple[int, int, int]]:
    """Compare tables of two warehouses as multisets.

    Returns
    -------
    dict
        ``table -> (rows in a, rows only in a, rows only in b)`` for every table that
        differs (doubles compared rounded to 6 decimals); empty when all are equal.
    """
    differences: dict[str, tuple[int, int, int]] = {}
    con = duckdb.connect()
    try:
        con.execute(f"attach '{warehouse(home_a)}' as a (read_only)")
        con.execute(f"attach '{warehouse(home_b)}' as b (read_only)")
        for table in tables:
            left = _normalized_select(con, f"a.{schema}.{table}")
            right = _normalized_select(con, f"b.{schema}.{table}")
            only_a = con.execute(f"select count(*) from ({left} except all {right})").fetchone()[0]
            only_b = con.execute(f"select count(*) from ({right} except all {left})").fetchone()[0]
            if only_a or only_b:
                total = con.execute(f"select count(*) from a.{schema}.{table}").fetchone()[0]
                differences[table] = (total, only_a, only_b)
    finally:
        con.close()
    return differences
