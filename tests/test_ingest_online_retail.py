"""Importing + ingesting the real Online Retail II export loses no line."""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from pathlib import Path

import duckdb

from ml.config import paths
from ml.ingest import ingest
from ml.ingest.importers.online_retail import import_online_retail


def count_source_lines(path: Path) -> tuple[int, Counter]:
    """Count data lines and the ones ingest must refuse, straight from the CSV."""
    total, expected = 0, Counter()
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            total += 1
            if float(row["Price"]) < 0:
                expected["negative_price"] += 1
            elif int(row["Quantity"]) == 0:
                expected["zero_quantity"] += 1
    return total, expected


def test_every_real_line_is_loaded_or_quarantined_exactly_once(
    online_retail_csv: Path, tmp_path: Path
) -> None:
    source_lines, expected_rules = count_source_lines(online_retail_csv)
    assert source_lines == 525_461  # the data README's figure

    landing = tmp_path / "landing"
    import_online_retail(online_retail_csv, landing)
    report = ingest(landing)

    lines = next(f for f in report.files if f.entity == "order_lines")
    assert lines.received_rows == source_lines
    assert lines.loaded_rows + lines.quarantined_rows == source_lines
    assert dict(lines.rules) == dict(expected_rules)

    con = duckdb.connect(str(paths().warehouse), read_only=True)
    try:
        loaded, distinct_rows = con.execute(
            "select count(*), count(distinct _source_row) from raw.order_lines"
        ).fetchall()[0]
        quarantined, distinct_q = con.execute(
            "select count(*), count(distinct source_row) from raw.quarantine where entity = 'order_lines'"
        ).fetchall()[0]
        overlap = con.execute(
            "select count(*) from raw.order_lines l join raw.quarantine q "
            "on q.entity = 'order_lines' and q.source_row = l._source_row"
        ).fetchall()[0][0]
        guests = con.execute(
            "select count(*) from raw.orders where customer_id is null"
        ).fetchall()[0][0]
    finally:
        con.close()
    # One place per line: row numbers are unique within each table and never in both.
    assert (loaded, quarantined) == (lines.loaded_rows, lines.quarantined_rows)
    assert distinct_rows == loaded and distinct_q == quarantined and overlap == 0
    assert loaded + quarantined == source_lines
    assert guests > 0  # guest invoices are kept as guest orders
