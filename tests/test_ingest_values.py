"""Values that pass typing but would break the night: non-finite numbers, out-of-range values.

Issue 19, finding 1: prices ``1e400``, ``inf``, ``NaN`` and a quantity of 2147483647 used to
load into ``raw`` and then fail the dbt build (INT32 overflow, ``between 0 and 1`` tests).
They are quarantined now (``non_finite_number``, ``value_out_of_range``), values at the
documented bounds still load, and a shop holding both builds its feature marts.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from ml.config import paths
from ml.ingest import ingest
from ml.ingest.contract import MAX_PRICE, MAX_QUANTITY, MIN_TIMESTAMP

NOW = datetime(2026, 7, 1, 12, 0, 0)
AS_OF = "2026-06-30"


def query(sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(paths().warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def write_small_shop(landing: Path) -> Path:
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "customers.csv").write_text(
        "customer_id,email,first_name,country,signed_up_at\n"
        "C1,a@x.example,Ann,GB,2026-01-01 10:00:00\n"
        f"C2,b@x.example,Bob,GB,{MIN_TIMESTAMP}\n"
        "C3,c@x.example,Cy,GB,1969-12-31 23:59:59\n"
        "C4,d@x.example,Di,GB,-infinity\n"
    )
    (landing / "products.csv").write_text(
        "product_id,name,price\n"
        "P1,Mug,3.5\n"
        f"P2,Yacht,{MAX_PRICE}\n"
        "P3,Nothing,1e400\n"
        "P4,Cloud,inf\n"
        "P5,Ghost,NaN\n"
        f"P6,Planet,{MAX_PRICE * 2}\n"
    )
    (landing / "orders.csv").write_text(
        "order_id,customer_id,ordered_at,status\nO1,C1,2026-02-01 10:00:00,placed\n"
    )
    (landing / "order_lines.csv").write_text(
        "order_id,line_no,product_id,quantity,unit_price\n"
        "O1,1,P1,2,3.5\n"
        f"O1,2,P1,{MAX_QUANTITY},3.5\n"
        f"O1,3,P1,-{MAX_QUANTITY},3.5\n"
        "O1,4,P1,2147483647,3.5\n"
        f"O1,5,P1,-{MAX_QUANTITY + 1},3.5\n"
        "O1,6,P1,1,-inf\n"
        "O1,7,P1,NaN,3.5\n"
        "O1,8,P1,1,1e400\n"
    )
    return landing


def test_non_finite_numbers_and_values_out_of_bounds_are_quarantined(tmp_path: Path) -> None:
    report = ingest(write_small_shop(tmp_path / "land"), now=NOW)
    got = set(query("select entity, source_row, rule, detail from raw.quarantine"))
    assert got == {
        (
            "customers",
            3,
            "value_out_of_range",
            "signed_up_at outside [1970-01-01 00:00:00, 2100-01-01 00:00:00)",
        ),
        (
            "customers",
            4,
            "value_out_of_range",
            "signed_up_at outside [1970-01-01 00:00:00, 2100-01-01 00:00:00)",
        ),
        ("products", 3, "non_finite_number", "price"),
        ("products", 4, "non_finite_number", "price"),
        ("products", 5, "non_finite_number", "price"),
        ("products", 6, "value_out_of_range", "price outside [..., 1,000,000]"),
        ("order_lines", 4, "value_out_of_range", "quantity outside [-1,000,000, 1,000,000]"),
        ("order_lines", 5, "value_out_of_range", "quantity outside [-1,000,000, 1,000,000]"),
        ("order_lines", 6, "non_finite_number", "unit_price"),
        ("order_lines", 7, "non_finite_number", "quantity"),
        ("order_lines", 8, "non_finite_number", "unit_price"),
    }
    assert all(f.received_rows == f.loaded_rows + f.quarantined_rows for f in report.files)
    # The documented bounds themselves are legitimate values.
    assert query("select quantity from raw.order_lines order by line_no") == [
        (2,),
        (MAX_QUANTITY,),
        (-MAX_QUANTITY,),
    ]
    assert query("select max(price) from raw.products") == [(MAX_PRICE,)]
    assert query("select min(signed_up_at)::varchar from raw.customers") == [(MIN_TIMESTAMP,)]
    assert query("select count(*) from raw.products where not isfinite(price)") == [(0,)]


def test_parquet_nan_and_infinite_doubles_are_quarantined(tmp_path: Path) -> None:
    landing = tmp_path / "land"
    landing.mkdir()
    pl.DataFrame(
        {
            "product_id": ["P1", "P2", "P3", "P4"],
            "name": ["a", "b", "c", "d"],
            "price": [1.0, float("nan"), float("inf"), float("-inf")],
        }
    ).write_parquet(landing / "products.parquet")
    ingest(landing, now=NOW)
    assert query("select source_row, rule from raw.quarantine order by 1") == [
        (2, "non_finite_number"),
        (3, "non_finite_number"),
        (4, "non_finite_number"),
    ]
    assert query("select product_id from raw.products") == [("P1",)]


def _extreme_rows(landing: Path) -> None:
    """Beside a generated shop: every value the issue's probe used, the bounds, padded ids."""
    orders = pl.read_parquet(landing / "orders.parquet")
    lines = pl.read_parquet(landing / "order_lines.parquet")
    placed = orders.filter(pl.col("status") == "placed").row(0, named=True)
    product = lines["product_id"][0]
    bad_lines = [
        (1e400, 1),
        (float("inf"), 1),
        (float("nan"), 1),
        (3.5, 2_147_483_647),
        (MAX_PRICE, MAX_QUANTITY),  # the largest line a shop may send loads and builds
        (MAX_PRICE, -MAX_QUANTITY),
    ]
    text = "order_id,line_no,product_id,quantity,unit_price\n" + "".join(
        f"{placed['order_id']},{900 + n},{product},{quantity},{price!r}\n"
        for n, (price, quantity) in enumerate(bad_lines)
    )
    (landing / "order_lines").mkdir()
    (landing / "order_lines.parquet").rename(landing / "order_lines" / "generated.parquet")
    (landing / "order_lines" / "extreme.csv").write_text(text.replace("1e+400", "1e400"))
    # Ids dbt compares trimmed: a padded repeat of a customer would fail its unique test.
    customer = pl.read_parquet(landing / "customers.parquet").row(0, named=True)
    (landing / "customers").mkdir()
    (landing / "customers.parquet").rename(landing / "customers" / "generated.parquet")
    (landing / "customers" / "padded.csv").write_text(
        "customer_id,email,first_name,country,signed_up_at\n"
        f" {customer['customer_id']},x@x.example,X,GB,2026-01-01 10:00:00\n"
        f"{customer['customer_id']}  ,y@x.example,Y,GB,2026-01-01 10:00:00\n"
    )
    prices = "product_id,name,price\nPX-INF,Cloud,inf\nPX-NAN,Ghost,NaN\nPX-BIG,Planet,1e400\n"
    (landing / "products").mkdir()
    (landing / "products.parquet").rename(landing / "products" / "generated.parquet")
    (landing / "products" / "extreme.csv").write_text(prices)


def test_a_shop_with_extreme_rows_still_builds_its_feature_marts(tmp_path: Path) -> None:
    """No single row can fail the night: dbt's feature build (with its tests) passes."""
    from ml.datagen import generate_shop
    from ml.orchestration.runner import run_stage
    from ml.pipeline import RunContext

    landing = tmp_path / "shop"
    generate_shop(landing, customers=200, products=50, days=30, seed=3, end_date=AS_OF)
    _extreme_rows(landing)
    report = ingest(landing, now=NOW)
    extreme = [f for f in report.files if f.source_file.endswith("extreme.csv")]
    assert sum(f.rules.get("non_finite_number", 0) for f in extreme) == 6
    assert sum(f.rules.get("value_out_of_range", 0) for f in extreme) == 1
    (padded,) = [f for f in report.files if f.source_file.endswith("padded.csv")]
    assert padded.rules == {"duplicate_key": 2}

    summary = run_stage("dbt_features", RunContext(AS_OF))  # raises on any failed node

    assert summary["nodes"].get("pass", 0) > 0 and "fail" not in summary["nodes"]
    con = duckdb.connect(str(paths().warehouse), read_only=True)
    try:
        # The bound-sized line reached the marts, and every money figure is finite.
        units = con.execute(
            "select max(abs(quantity)) from marts.fct_order_lines where line_no >= 900"
        ).fetchone()[0]
        not_finite = con.execute(
            "select count(*) from marts.customer_features where not isfinite(monetary)"
        ).fetchone()[0]
    finally:
        con.close()
    assert units == MAX_QUANTITY
    assert not_finite == 0
