"""Ingest: typed load, quarantine with rules, manifest reconciliation, idempotency, refusals."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from ml.config import paths
from ml.ingest import IngestError, ingest

CUSTOMERS = """customer_id,email,first_name,country,signed_up_at,marketing_opt_in
C1,a@example.com,Ann,UK,2026-01-01 10:00:00,yes
C2,b@example.com,Bob,FR,2026-01-02,no
C2,b@example.com,Bob,FR,2026-01-02,no
,x@example.com,X,UK,2026-01-01,true
C3,c@example.com,Cy,UK,2099-01-01,true
C4,d@example.com,Di,UK,notadate,true
C5,e@example.com,Ed
C6,f@example.com,Fay,UK,2026-01-03,maybe
"""
PRODUCTS = """product_id,name,price
P1,Mug,3.5
P2,Bad,-1
P3,Plate,abc
P4,Bowl,4.0
"""
ORDERS = """order_id,customer_id,ordered_at,status
O1,C1,2026-02-01 10:00:00,placed
O2,C9,2026-02-01 10:00:00,placed
O3,,2026-02-01 10:00:00,Cancelled
O4,C1,2026-02-01 10:00:00,lost
"""
ORDER_LINES = """order_id,line_no,product_id,quantity,unit_price
O1,1,P1,2,3.5
O1,2,P2,1,3.5
O1,3,P1,0,3.5
O3,1,P1,-2,3.5
O1,4,P1,three,3.5
O1,5,P4,1,-4.0
O2,1,P1,1,3.5
"""
EVENTS = """event_id,customer_id,session_id,product_id,event_type,occurred_at
E1,C1,S1,P1,view,2026-02-01 09:00:00
E2,,S2,P1,VIEW,2026-02-01 09:00:00
E3,C1,S1,P1,teleport,2026-02-01 09:01:00
E4,C1,S1,P1,add_to_cart,2026-02-01 9:02
"""
REVIEWS = """review_id,customer_id,product_id,rating,title,body,created_at
R1,C1,P1,5,Great,Lovely mug,2026-02-03
R2,C1,P1,0,Hmm,Zero,2026-02-03
R3,C1,P1,6,Hmm,Six,2026-02-03
R4,C1,P1,3,'; DROP TABLE raw.orders; --,fine,2026-02-03
"""

# (entity, 1-based row, rule) every row above that must be quarantined.
EXPECTED_QUARANTINE = {
    ("customers", 3, "duplicate_key"),
    ("customers", 4, "missing_value"),
    ("customers", 5, "future_timestamp"),
    ("customers", 6, "unparseable_timestamp"),
    ("customers", 7, "wrong_column_count"),
    ("customers", 8, "bad_boolean"),
    ("products", 2, "negative_price"),
    ("products", 3, "bad_number"),
    ("orders", 2, "orphan_reference"),
    ("orders", 4, "unknown_order_status"),
    ("order_lines", 2, "orphan_reference"),
    ("order_lines", 3, "zero_quantity"),
    ("order_lines", 5, "bad_integer"),
    ("order_lines", 6, "negative_price"),
    ("order_lines", 7, "orphan_reference"),
    ("events", 3, "unknown_event_type"),
    ("reviews", 2, "rating_out_of_range"),
    ("reviews", 3, "rating_out_of_range"),
}


def write_landing(folder: Path, **overrides: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "customers": CUSTOMERS,
        "products": PRODUCTS,
        "orders": ORDERS,
        "order_lines": ORDER_LINES,
        "events": EVENTS,
        "reviews": REVIEWS,
    }
    files.update(overrides)
    for entity, text in files.items():
        (folder / f"{entity}.csv").write_text(text)
    return folder


def query(sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(paths().warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def table_fingerprint() -> list[tuple]:
    """Row counts of every raw table: what 'unchanged' means for the warehouse."""
    tables = [
        r[0]
        for r in query(
            "select table_name from information_schema.tables where table_schema = 'raw' order by 1"
        )
    ]
    return [(t, query(f"select count(*) from raw.{t}")[0][0]) for t in tables]


def test_each_defect_lands_in_quarantine_with_its_rule(tmp_path: Path) -> None:
    report = ingest(write_landing(tmp_path / "land"))
    got = set(query("select entity, source_row, rule from raw.quarantine"))
    assert got == EXPECTED_QUARANTINE
    for f in report.files:
        assert f.received_rows == f.loaded_rows + f.quarantined_rows
    assert report.received_rows == sum(
        len(t.strip().splitlines()) - 1
        for t in (CUSTOMERS, PRODUCTS, ORDERS, ORDER_LINES, EVENTS, REVIEWS)
    )


def test_good_rows_are_typed_and_normalised(tmp_path: Path) -> None:
    ingest(write_landing(tmp_path / "land"))
    assert query("select customer_id, marketing_opt_in from raw.customers order by 1") == [
        ("C1", True),
        ("C2", False),
    ]
    assert query("select order_id, status, customer_id from raw.orders order by 1") == [
        ("O1", "placed", "C1"),
        ("O3", "cancelled", None),
    ]
    # Guests and case variants load; the SQL-looking text is kept as plain data.
    assert query("select event_id, event_type from raw.events order by 1") == [
        ("E1", "view"),
        ("E2", "view"),
        ("E4", "add_to_cart"),
    ]
    assert query("select title from raw.reviews where review_id = 'R4'") == [
        ("'; DROP TABLE raw.orders; --",)
    ]
    assert query("select count(*) from raw.orders")[0][0] == 2
    assert query(
        "select typeof(ordered_at), typeof(quantity) from raw.orders, raw.order_lines limit 1"
    ) == [("TIMESTAMP", "INTEGER")]


def test_quarantine_keeps_the_raw_values_and_source(tmp_path: Path) -> None:
    ingest(write_landing(tmp_path / "land"))
    source_file, detail, raw = query(
        "select source_file, detail, raw_values from raw.quarantine where entity = 'order_lines' and rule = 'bad_integer'"
    )[0]
    assert source_file == "order_lines.csv"
    assert detail == "quantity"
    assert '"quantity":"three"' in raw


def test_reingest_same_files_is_a_noop(tmp_path: Path) -> None:
    land = write_landing(tmp_path / "land")
    ingest(land)
    before = table_fingerprint()
    report = ingest(land)
    assert all(f.skipped for f in report.files)
    assert table_fingerprint() == before


def test_new_version_of_a_file_replaces_its_rows(tmp_path: Path) -> None:
    land = write_landing(tmp_path / "land")
    ingest(land)
    (land / "products.csv").write_text(
        "product_id,name,price\nP1,Mug v2,3.9\nP4,Bowl,4.0\nP5,Jug,-2\n"
    )
    report = ingest(land)
    assert [f.skipped for f in report.files if f.entity == "products"] == [False]
    assert query("select product_id, name from raw.products order by 1") == [
        ("P1", "Mug v2"),
        ("P4", "Bowl"),
    ]
    assert query("select source_row, rule from raw.quarantine where entity = 'products'") == [
        (3, "negative_price")
    ]
    assert (
        query("select count(*) from raw.load_manifest where source_file = 'products.csv'")[0][0]
        == 2
    )
    assert (
        query(
            "select count(*) from raw.load_manifest where source_file = 'products.csv' and is_current"
        )[0][0]
        == 1
    )


def test_duplicate_key_across_files_is_quarantined(tmp_path: Path) -> None:
    land = write_landing(tmp_path / "land")
    (land / "events").mkdir()
    (land / "events" / "day2.csv").write_text(
        "event_id,customer_id,session_id,product_id,event_type,occurred_at\n"
        "E1,C1,S9,P1,view,2026-02-02 09:00:00\nE9,C1,S9,P1,view,2026-02-02 09:00:00\n"
    )
    ingest(land)
    assert query(
        "select source_file, source_row, rule from raw.quarantine where rule = 'duplicate_key' and entity = 'events'"
    ) == [("events/day2.csv", 1, "duplicate_key")]


def test_parquet_input_is_loaded_with_row_numbers(tmp_path: Path) -> None:
    land = write_landing(tmp_path / "land")
    (land / "products.csv").unlink()
    con = duckdb.connect()
    con.execute(
        "copy (select * from (values ('P1', 'Mug', 3.5), ('P4', 'Bowl', 4.0), ('P4', 'Bowl', 4.0)) t(product_id, name, price)) "
        f"to '{land / 'products.parquet'}' (format parquet)"
    )
    ingest(land)
    assert query(
        "select source_file, source_row, rule from raw.quarantine where entity = 'products'"
    ) == [("products.parquet", 3, "duplicate_key")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("orders.csv", b"", "empty"),
        ("orders.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
        (
            "orders.csv",
            b"order_id,customer_ref,ordered_at,status\nO1,C1,2026-02-01,placed\n",
            r"missing required column\(s\) customer_id",
        ),
        ("orders.csv.gz", gzip.compress(ORDERS.encode() * 200)[:200], "orders.csv.gz"),
        ("orders.parquet", b"PAR1 this is not parquet", "Parquet"),
    ],
)
def test_unreadable_file_is_refused_and_warehouse_unchanged(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    land = write_landing(tmp_path / "land")
    ingest(land)
    before = table_fingerprint()
    (land / "orders.csv").unlink()
    (land / name).write_bytes(content)
    # A good new file in the same batch must be rolled back too.
    (land / "products.csv").write_text("product_id,name,price\nP7,Cup,1.0\n")
    with pytest.raises(IngestError, match=message) as excinfo:
        ingest(land)
    assert name in str(excinfo.value)
    assert table_fingerprint() == before
    assert query("select count(*) from raw.products where product_id = 'P7'")[0][0] == 0


def test_invalid_utf8_row_is_quarantined_not_lost(tmp_path: Path) -> None:
    land = write_landing(tmp_path / "land")
    (land / "products.csv").write_bytes(
        b"product_id,name,price\nP1,Mug,3.5\nP8,Caf\xe9 cup,2.0\nP4,Bowl,4.0\n"
    )
    report = ingest(land)
    products = next(f for f in report.files if f.entity == "products")
    assert (products.received_rows, products.loaded_rows, products.quarantined_rows) == (3, 2, 1)
    assert query("select source_row, rule from raw.quarantine where entity = 'products'") == [
        (2, "invalid_utf8")
    ]


def test_missing_landing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="not a directory"):
        ingest(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="no landing files"):
        ingest(tmp_path / "empty")
