"""Tests of the UCI Online Retail / Online Retail II importer (ml.ingest.importers.online_retail)."""

from __future__ import annotations

import csv
import gzip
import logging
import re
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ml.ingest.contract import ENTITIES
from ml.ingest.importers import import_online_retail
from ml.ingest.importers.online_retail_entities import is_product_code
from ml.warehouse.tables import POLARS_TYPES

REAL_FILE = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "online_retail_ii"
    / "online_retail_II_2009-2010.csv.gz"
)
OUTPUTS = ("customers", "products", "orders", "order_lines")

V2_HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
V1_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"

# Online Retail II format, in file order. Covers: a '13085.0' id, a lower-case suffix code,
# POST, an exact duplicate line (interleaved with another invoice), a guest line, a C invoice,
# a zero quantity, a quoted comma, an A "Adjust bad debt" invoice, a zero-price stock
# adjustment whose description is a note ("damaged"), a gift voucher with a pound sign.
SOURCE_CSV = f"""{V2_HEADER}
489434,85123A, WHITE HANGING HEART ,6,2009-12-01 07:45:00,2.55,13085.0,United Kingdom
489434,85123a,WHITE HANGING HEART T-LIGHT HOLDER,6,2009-12-01 07:45:00,2.65,13085.0,United Kingdom
489434,POST,POSTAGE,1,2009-12-01 07:45:00,18.0,13085.0,United Kingdom
489435,79323P,PINK CHERRY LIGHTS,12,2009-12-01 07:46:00,6.75,,United Kingdom
489434,85123A, WHITE HANGING HEART ,6,2009-12-01 07:45:00,2.55,13085.0,United Kingdom
C489436,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-6,2009-12-02 10:00:00,2.95,13085,France
489437,79323P,"PINK CHERRY LIGHTS, LARGE",0,2009-12-03 09:00:00,6.95,13085,France
A489438,B,Adjust bad debt,1,2009-12-04 12:00:00,-100.0,,United Kingdom
489439,79323P,damaged,-5,2009-12-05 08:00:00,0,,United Kingdom
489440,85048,15CM CHRISTMAS GLASS BALL,12,2009-12-05 09:00:00,6.95,14000,Germany
489441,gift_0001_10,Dotcomgiftshop Gift Voucher £10.00,1,2009-12-06 10:00:00,8.69,14000,Germany
"""


def as_v1(v2_csv: str) -> str:
    """The same export in UCI v1 form: v1 header, ``12/1/2009 7:45`` timestamps."""

    def v1_timestamp(match: re.Match[str]) -> str:
        ts = datetime.strptime(match.group(0), "%Y-%m-%d %H:%M:%S")
        return f"{ts.month}/{ts.day}/{ts.year} {ts.hour}:{ts.minute:02d}"

    body = v2_csv.removeprefix(V2_HEADER)
    return V1_HEADER + re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", v1_timestamp, body)


def write_export(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path``, gzip-compressed if the name ends in ``.gz``."""
    data = text.encode(encoding)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def _frame(entity: str, rows: list[tuple]) -> pl.DataFrame:
    """Build a frame with the contract's columns and the importer's polars types."""
    schema = {c.name: POLARS_TYPES[c.dtype] for c in ENTITIES[entity].columns}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _dec(day: int, hour: int, minute: int) -> datetime:
    return datetime(2009, 12, day, hour, minute)


UK, FR, DE = "United Kingdom", "France", "Germany"
HEART = "WHITE HANGING HEART T-LIGHT HOLDER"
CHERRY = "PINK CHERRY LIGHTS, LARGE"  # not "damaged": that zero-price note is newer
GLASS_BALL = "15CM CHRISTMAS GLASS BALL"
VOUCHER = "Dotcomgiftshop Gift Voucher £10.00"
BAD_DEBT = "Adjust bad debt"

# fmt: off
EXPECTED = {
    "order_lines": _frame("order_lines", [
        ("489434", 1, "85123A", 6, 2.55),
        ("489434", 2, "85123A", 6, 2.65),
        ("489434", 3, "POST", 1, 18.0),
        ("489434", 4, "85123A", 6, 2.55),  # the duplicate, kept as its own line
        ("489435", 1, "79323P", 12, 6.75),
        ("489437", 1, "79323P", 0, 6.95),  # zero quantity: passed on for the ingest
        ("489439", 1, "79323P", -5, 0.0),
        ("489440", 1, "85048", 12, 6.95),
        ("489441", 1, "GIFT_0001_10", 1, 8.69),
        ("A489438", 1, "B", 1, -100.0),  # negative price: passed on for the ingest
        ("C489436", 1, "85123A", -6, 2.95),
    ]),
    "orders": _frame("orders", [
        ("489434", "13085", _dec(1, 7, 45), "placed", "online", UK),
        ("489435", None, _dec(1, 7, 46), "placed", "online", UK),
        ("489437", "13085", _dec(3, 9, 0), "placed", "online", FR),
        ("489439", None, _dec(5, 8, 0), "placed", "online", UK),
        ("489440", "14000", _dec(5, 9, 0), "placed", "online", DE),
        ("489441", "14000", _dec(6, 10, 0), "placed", "online", DE),
        ("A489438", None, _dec(4, 12, 0), "placed", "online", UK),
        ("C489436", "13085", _dec(2, 10, 0), "cancelled", "online", FR),
    ]),
    "customers": _frame("customers", [
        # Two of 13085's three invoices are French, although most of its lines are British.
        ("13085", None, None, FR, _dec(1, 7, 45), True),
        ("14000", None, None, DE, _dec(5, 9, 0), True),
    ]),
    "products": _frame("products", [
        ("79323P", CHERRY, CHERRY, None, None, 6.95, True, True, _dec(1, 7, 46)),
        ("85048", GLASS_BALL, GLASS_BALL, None, None, 6.95, True, True, _dec(5, 9, 0)),
        ("85123A", HEART, HEART, None, None, 2.95, True, True, _dec(1, 7, 45)),
        ("B", BAD_DEBT, BAD_DEBT, None, None, None, True, False, _dec(4, 12, 0)),
        ("GIFT_0001_10", VOUCHER, VOUCHER, None, None, 8.69, True, False, _dec(6, 10, 0)),
        ("POST", "POSTAGE", "POSTAGE", None, None, 18.0, True, False, _dec(1, 7, 45)),
    ]),
}
# fmt: on


@pytest.mark.parametrize(
    ("filename", "text", "encoding"),
    [
        ("online_retail_II.csv", SOURCE_CSV, "utf-8"),
        ("online_retail_II.csv.gz", SOURCE_CSV, "utf-8"),
        ("online_retail.csv", as_v1(SOURCE_CSV), "cp1252"),  # a Windows export of v1
        ("online_retail.csv.gz", as_v1(SOURCE_CSV), "utf-8"),
    ],
    ids=["v2-csv", "v2-gz", "v1-csv-cp1252", "v1-gz"],
)
def test_synthetic_export_maps_exactly(tmp_path, caplog, filename, text, encoding):
    source = write_export(tmp_path / filename, text, encoding)
    out_dir = tmp_path / "landing"

    with caplog.at_level(logging.INFO, logger="ml.ingest.importers.online_retail"):
        counts = import_online_retail(source, out_dir)

    assert counts == {
        "customers": 2,
        "products": 6,
        "orders": 8,
        "order_lines": 11,
        "source_lines": 11,
        "refused_lines": 0,
    }
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{e}.parquet" for e in OUTPUTS)
    for entity in OUTPUTS:
        written = pl.read_parquet(out_dir / f"{entity}.parquet")
        assert written.columns == ENTITIES[entity].column_names
        assert_frame_equal(written, EXPECTED[entity])
    assert "11 lines read" in caplog.text
    assert "non-product codes: B, GIFT_0001_10, POST" in caplog.text


def test_output_is_deterministic(tmp_path):
    source = write_export(tmp_path / "export.csv", SOURCE_CSV)
    import_online_retail(source, tmp_path / "first")
    import_online_retail(source, tmp_path / "second")
    for entity in OUTPUTS:
        first = (tmp_path / "first" / f"{entity}.parquet").read_bytes()
        assert first == (tmp_path / "second" / f"{entity}.parquet").read_bytes()


def test_untypeable_values_pass_through_as_null(tmp_path, caplog):
    # The ingest quarantines the NULLs, so the line must still arrive as one order line.
    text = f"{V2_HEADER}\n1,85123A,HEART,six,not a date,2.55,13085,United Kingdom\n"
    source = write_export(tmp_path / "bad_values.csv", text)

    with caplog.at_level(logging.WARNING, logger="ml.ingest.importers.online_retail_source"):
        counts = import_online_retail(source, tmp_path / "out")

    assert counts["order_lines"] == counts["source_lines"] == 1
    line = pl.read_parquet(tmp_path / "out" / "order_lines.parquet").row(0, named=True)
    assert line["quantity"] is None
    assert line["unit_price"] == 2.55
    assert "1 Quantity value(s) could not be parsed" in caplog.text
    assert "1 InvoiceDate value(s) could not be parsed" in caplog.text


def test_missing_columns_raise_naming_file_and_columns(tmp_path):
    source = tmp_path / "not_retail.csv"
    source.write_text("Invoice,StockCode,Quantity,InvoiceDate,Customer ID,Country\n1,A,1,x,1,UK\n")

    with pytest.raises(ValueError, match=r"not_retail\.csv.*Description, Price"):
        import_online_retail(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "code",
    ["85123A", "79323P", "79323LP", "15056BL", "10002", "DCGS0058", "DCGSSBOY", "SP1002"],
)
def test_merchandise_codes_are_products(code):
    assert pl.select(is_product_code(pl.lit(code))).item() is True


@pytest.mark.parametrize(
    "code",
    [
        "POST", "DOT", "M", "D", "C2", "C3", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS",
        "S", "B", "ADJUST", "ADJUST2", "TEST001", "TEST002", "GIFT", "GIFT_0001_10",
    ],
)  # fmt: skip
def test_fee_and_adjustment_codes_are_not_products(code):
    assert pl.select(is_product_code(pl.lit(code))).item() is False


# --- the real Online Retail II file ------------------------------------------------------


def _count_independently(path: Path) -> dict[str, int]:
    """Count lines, invoices, customers, guest and cancellation lines with the csv module."""
    lines = guest_lines = cancellation_lines = 0
    invoices: set[str] = set()
    customers: set[str] = set()
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            lines += 1
            invoices.add(row["Invoice"])
            customer = row["Customer ID"].strip()
            if customer:
                customers.add(customer.removesuffix(".0"))
            else:
                guest_lines += 1
            cancellation_lines += row["Invoice"].startswith("C")
    return {
        "lines": lines,
        "invoices": len(invoices),
        "customers": len(customers),
        "guest_lines": guest_lines,
        "cancellation_lines": cancellation_lines,
    }


@pytest.fixture(scope="module")
def real_import(tmp_path_factory, online_retail_csv):
    out_dir = tmp_path_factory.mktemp("online_retail_ii")
    counts = import_online_retail(REAL_FILE, out_dir)
    tables = {e: pl.read_parquet(out_dir / f"{e}.parquet") for e in OUTPUTS}
    return counts, tables


def test_real_file_counts_match_an_independent_count(real_import):
    counts, tables = real_import
    expected = _count_independently(REAL_FILE)
    # The data README's figures, so a silently changed file is noticed too.
    assert expected == {
        "lines": 525_461,
        "invoices": 28_816,
        "customers": 4_383,
        "guest_lines": 107_927,
        "cancellation_lines": 10_206,
    }

    lines = tables["order_lines"].join(tables["orders"], on="order_id", how="left")
    assert counts["source_lines"] == counts["order_lines"] == expected["lines"]
    assert counts["orders"] == tables["orders"].height == expected["invoices"]
    assert counts["customers"] == tables["customers"].height == expected["customers"]
    assert lines["customer_id"].is_null().sum() == expected["guest_lines"]
    assert (lines["status"] == "cancelled").sum() == expected["cancellation_lines"]


def test_real_file_is_referentially_complete(real_import):
    _, tables = real_import
    lines, orders, products = tables["order_lines"], tables["orders"], tables["products"]
    assert lines.select("order_id", "line_no").is_duplicated().sum() == 0
    assert lines.join(orders, on="order_id", how="anti").height == 0
    assert lines.join(products, on="product_id", how="anti").height == 0
    with_customer = orders.filter(pl.col("customer_id").is_not_null())
    assert with_customer.join(tables["customers"], on="customer_id", how="anti").height == 0
    for entity, frame in tables.items():
        contract = ENTITIES[entity]
        assert frame.schema == {c.name: POLARS_TYPES[c.dtype] for c in contract.columns}


def test_real_file_product_rules(real_import):
    _, tables = real_import
    products = tables["products"]
    non_products = set(products.filter(~pl.col("is_product"))["product_id"])
    assert {
        "POST",
        "DOT",
        "M",
        "D",
        "C2",
        "BANK CHARGES",
        "AMAZONFEE",
        "GIFT_0001_10",
    } <= non_products
    assert not {"85123A", "79323P", "DCGSSBOY", "SP1002"} & non_products
    # Case-normalised: no lower-case twin of any code survives.
    assert (
        products.filter(pl.col("product_id") != pl.col("product_id").str.to_uppercase()).height == 0
    )
    heart = products.filter(pl.col("product_id") == "85123A").row(0, named=True)
    assert heart["name"] == "WHITE HANGING HEART T-LIGHT HOLDER"
