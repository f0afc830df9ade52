"""Every line counted at its true number; NUL bytes and renamed columns (issue 19, finding 5).

* A blank line is received like any other line (quarantined as ``blank_line``) and the
  ``source_row`` of every row is its line's number in the file (line 1 is the header, so
  line ``n`` is row ``n - 1``), also after blank lines and values spanning lines.
* A NUL byte in a data row is that row's defect (``nul_byte``), whether it comes in the
  first 64 KiB or after; only a header line with one makes the file binary (refused).
* An unknown column beside an absent optional one is warned about in the batch summary and
  the manifest, naming the column and the default every row took.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import numpy as np
import pytest

from ml.config import paths
from ml.ingest import IngestError, ingest
from ml.ingest.lines import count_lines, record_lines

PRODUCTS_HEADER = "product_id,name,price\n"


def query(sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(paths().warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_blank_lines_are_received_and_rows_keep_their_line_numbers(tmp_path: Path) -> None:
    landing = tmp_path / "land"
    landing.mkdir()
    (landing / "products.csv").write_text(
        PRODUCTS_HEADER
        + "P1,Cup,1\n"  # line 2: row 1
        + "\n"  # line 3: blank
        + "P2,Bowl,2\n"  # line 4
        + 'P3,"Two\nline name",3\n'  # lines 5-6: one record
        + "P4,Short\n"  # line 7: the parser rejects it
        + "\n"  # line 8: blank
        + "P5,Jug,abc\n"  # line 9: bad_number
        + "P6,Vase,6\n"  # line 10
        + "\n"  # line 11: blank (a file ending in an empty line)
    )
    report = ingest(landing)
    (products,) = report.files
    assert products.received_rows == 9  # lines 2-11 but line 6, the end of P3
    assert products.received_rows == products.loaded_rows + products.quarantined_rows
    assert query("select product_id, _source_row from raw.products order by 1") == [
        ("P1", 1),
        ("P2", 3),
        ("P3", 4),
        ("P6", 9),
    ]
    assert query("select source_row, rule from raw.quarantine order by 1") == [
        (2, "blank_line"),
        (6, "wrong_column_count"),
        (7, "blank_line"),
        (8, "bad_number"),
        (10, "blank_line"),
    ]


def test_line_numbers_hold_in_gzip_and_crlf_files(tmp_path: Path) -> None:
    landing = tmp_path / "land"
    landing.mkdir()
    text = PRODUCTS_HEADER + "P1,Cup,1\n\nP2,Bowl,2\nP3,Jug\n"
    (landing / "products.csv.gz").write_bytes(gzip.compress(text.replace("\n", "\r\n").encode()))
    ingest(landing)
    assert query("select product_id, _source_row from raw.products order by 1") == [
        ("P1", 1),
        ("P2", 3),
    ]
    assert query("select source_row, rule from raw.quarantine order by 1") == [
        (2, "blank_line"),
        (4, "wrong_column_count"),
    ]


def test_the_line_reader_counts_every_kind_of_line_end(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b'a,b\r\n1,2\r\n\r\n"x\ny",3\r4,5')
    assert count_lines(path) == 6  # \r\n, \r\n, \r\n, \n (inside quotes), \r, and the last
    layout = record_lines(path)
    assert layout.items.tolist() == [2, 3, 4, 6]
    assert layout.blank.tolist() == [False, True, False, False]
    assert np.array_equal(layout.records, [2, 4, 6])


@pytest.mark.parametrize("padding", [0, 100_000], ids=["nul_in_first_64k", "nul_after_64k"])
def test_a_nul_byte_in_a_row_is_quarantined_wherever_it_is(tmp_path: Path, padding: int) -> None:
    landing = tmp_path / "land"
    landing.mkdir()
    filler = "".join(f"PF{n},{'x' * 40},1\n" for n in range(padding // 48))
    (landing / "products.csv").write_bytes(
        (PRODUCTS_HEADER + filler + "P1,Cup,1\n").encode() + b"P2,Bo\x00wl,2\nP3,Jug,3\n"
    )
    report = ingest(landing)
    nul_row = padding // 48 + 2
    assert query("select source_row, rule, detail from raw.quarantine") == [
        (nul_row, "nul_byte", "name")
    ]
    assert query("select count(*) from raw.products where contains(name, chr(0))") == [(0,)]
    (products,) = report.files
    assert products.received_rows == products.loaded_rows + 1


def test_a_nul_byte_in_the_header_refuses_the_file_as_binary(tmp_path: Path) -> None:
    landing = tmp_path / "land"
    landing.mkdir()
    (landing / "products.csv").write_bytes(b"product_id,na\x00me,price\nP1,Cup,1\n")
    with pytest.raises(IngestError, match="binary content"):
        ingest(landing)


def test_a_renamed_optional_column_is_warned_in_the_summary_and_the_manifest(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "land"
    landing.mkdir()
    (landing / "customers.csv").write_text(
        "customer_id,email,first_name,country,signed_up_at,marketing_optin\n"
        "C1,a@x.example,Ann,GB,2026-01-01 10:00:00,yes\n"
    )
    report = ingest(landing)
    summary = report.summary()
    assert "WARNING" in summary
    for needle in ("marketing_optin", "marketing_opt_in = false"):
        assert needle in summary
    (warnings,) = query("select warnings from raw.load_manifest where is_current")[0]
    assert "ignored: marketing_optin" in warnings and "marketing_opt_in = false" in warnings
    assert "'marketing_optin' looks like 'marketing_opt_in'" in warnings
    # The default did apply: that is what the warning is about.
    assert query("select marketing_opt_in from raw.customers") == [(False,)]


def test_a_file_without_unknown_columns_has_no_warning(tmp_path: Path) -> None:
    landing = tmp_path / "land"
    landing.mkdir()
    (landing / "products.csv").write_text(PRODUCTS_HEADER + "P1,Cup,1\n")
    report = ingest(landing)
    assert "WARNING" not in report.summary()
    assert query("select warnings from raw.load_manifest") == [(None,)]
