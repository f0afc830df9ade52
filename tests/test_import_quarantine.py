"""Malformed export lines are quarantined with rule and record number, never refuse a file."""

from __future__ import annotations

import gzip

import duckdb
import polars as pl
import pytest

from ml.config import paths
from ml.ingest import ingest
from ml.ingest.importers.csv_records import read_csv_records
from ml.ingest.importers.online_retail import import_online_retail
from ml.ingest.importers.quarantine import IMPORT_QUARANTINE_FILE

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
GOOD = "489434,85123A,WHITE HANGING HEART,6,2009-12-01 07:45:00,2.55,13085,United Kingdom"
# Record 2 has a ninth field, record 4 only seven: polars used to refuse the whole file.
RAGGED_EXPORT = "\n".join(
    [
        HEADER,
        GOOD,
        "489435,79323P,PINK CHERRY LIGHTS,12,2009-12-01 07:46:00,6.75,13085,United Kingdom,EXTRA",
        '489436,79323W,"WHITE, CHERRY LIGHTS",12,2009-12-01 07:47:00,6.75,13085,United Kingdom',
        "489437,79323W,WHITE CHERRY LIGHTS,12,2009-12-01 07:48:00,6.75,13085",
        "489438,85048,GLASS BALL,12,2009-12-01 07:49:00,6.95,,United Kingdom",
    ]
)


def test_csv_reader_sets_aside_ragged_records_with_their_position(tmp_path):
    data = b'a,b,c\n1,"x\ny",3\n2,q,3,4\n3,r,3\n4,"s\n\nt",5,6\n5,u\n6,v,7\n'
    records, refused = read_csv_records(tmp_path / "t.csv", data)

    assert records["_record"].to_list() == [1, 3, 6]
    assert records["b"].to_list() == ["x\ny", "r", "v"]
    assert [(r.source_row, r.rule) for r in refused] == [
        (2, "wrong_column_count"),
        (4, "wrong_column_count"),
        (5, "wrong_column_count"),
    ]
    assert refused[0].raw_values == "2,q,3,4"


@pytest.mark.parametrize("name", ["ragged.csv", "ragged.csv.gz"])
def test_online_retail_quarantines_ragged_lines_and_imports_the_rest(tmp_path, name):
    source = tmp_path / name
    data = RAGGED_EXPORT.encode()
    source.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)

    counts = import_online_retail(source, tmp_path / "landing")

    assert counts["source_lines"] == 5
    assert counts["refused_lines"] == 2
    assert counts["order_lines"] == 3
    refused = pl.read_parquet(tmp_path / "landing" / "order_lines" / IMPORT_QUARANTINE_FILE)
    assert refused["source_row"].to_list() == [2, 4]
    assert refused["rule"].to_list() == ["wrong_column_count", "wrong_column_count"]
    assert refused["detail"][0].startswith(f"{name} record 2: ")
    assert refused["raw_values"][0].endswith(",United Kingdom,EXTRA")


def test_ingest_puts_refused_lines_in_quarantine_and_reconciles(tmp_path):
    source = tmp_path / "ragged.csv"
    source.write_text(RAGGED_EXPORT)
    landing = tmp_path / "landing"
    import_online_retail(source, landing)

    report = ingest(landing)

    by_file = {f.source_file: f for f in report.files}
    refused = by_file[f"order_lines/{IMPORT_QUARANTINE_FILE}"]
    assert (refused.received_rows, refused.loaded_rows, refused.quarantined_rows) == (2, 0, 2)
    assert refused.rules == {"wrong_column_count": 2}
    lines = by_file["order_lines.parquet"]
    assert lines.received_rows + refused.received_rows == 5
    with duckdb.connect(str(paths().warehouse), read_only=True) as con:
        rows = con.execute(
            "select entity, source_row, rule from raw.quarantine order by source_row"
        ).fetchall()
    assert rows == [
        ("order_lines", 2, "wrong_column_count"),
        ("order_lines", 4, "wrong_column_count"),
    ]

    # A clean re-import removes the stale quarantine file.
    source.write_text("\n".join([HEADER, GOOD]))
    counts = import_online_retail(source, landing)
    assert counts["refused_lines"] == 0
    assert not (landing / "order_lines").exists()


def test_unreadable_file_is_refused_whole(tmp_path):
    source = tmp_path / "broken.csv.gz"
    source.write_bytes(gzip.compress(RAGGED_EXPORT.encode())[:40])
    with pytest.raises(ValueError, match="broken.csv.gz"):
        import_online_retail(source, tmp_path / "landing")
