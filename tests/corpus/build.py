"""Generate the bad-input corpus, ingest it, and say what happened to every defect.

The corpus is code, not committed files: each :class:`Case` writes one defective landing
file beside a small clean *baseline* shop (every entity, every reference resolvable), so a
case shows exactly what one defect does. Three outcomes are allowed, and each case states
which one it expects:

``quarantined``
    the file is accepted; the bad rows land in ``raw.quarantine`` with their rule, every
    other row loads, and ``received = loaded + quarantined`` where *received* is counted
    independently here (the records this module wrote), not by the ingest;
``loaded``
    the content is odd but legitimate (SQL-looking text, a BOM, a header without rows) and
    loads verbatim as data;
``refused``
    the whole file cannot be read: :class:`ml.ingest.IngestError` names the file and the
    problem, and the batch (including a good file loaded earlier in it) is rolled back, so
    the warehouse is exactly as before.

Usage::

    .venv/bin/python tests/corpus/build.py --out /tmp/corpus   # write every case's landing
    .venv/bin/python tests/corpus/build.py --summary           # ingest each, print a table

``tests/test_reliability_corpus.py`` runs every case as its own test.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

# The ingest clock of every corpus run: `future_timestamp` is relative to it.
INGEST_NOW = datetime(2026, 11, 1, 12, 0, 0)
SQL_TEXT = "'; DROP TABLE raw.orders; --"
ONE_MB = 1_000_000

HEADERS = {
    "customers": "customer_id,email,first_name,country,signed_up_at,marketing_opt_in",
    "products": "product_id,name,description,category,brand,price,is_active",
    "orders": "order_id,customer_id,ordered_at,status,channel",
    "order_lines": "order_id,line_no,product_id,quantity,unit_price",
    "events": "event_id,customer_id,session_id,product_id,event_type,occurred_at",
    "reviews": "review_id,customer_id,product_id,rating,title,body,created_at",
    "campaigns": (
        "campaign_id,name,channel,target_type,target_value,starts_at,ends_at,"
        "max_audience,control_share"
    ),
    "erasure_requests": "customer_id,requested_at",
}

# A clean shop every case builds on: each reference resolves, no rule is broken.
BASELINE = {
    "customers": [
        ["C1", "ann@corpus.example", "Ann", "GB", "2026-01-01 10:00:00", "true"],
        ["C2", "bob@corpus.example", "Bob", "FR", "2026-01-02 11:00:00", "false"],
        ["C3", "cy@corpus.example", "Cy", "DE", "2026-01-03 12:00:00", "yes"],
        ["C4", "di@corpus.example", "Di", "US", "2026-01-04 13:00:00", "no"],
    ],
    "products": [
        ["P1", "Mug", "A stoneware mug", "Kitchen", "Acme", "3.50", "true"],
        ["P2", "Spade", "A garden spade", "Garden", "Delve", "12.00", "true"],
        ["P3", "Lamp", "A desk lamp", "Lighting", "Lumo", "25.99", "false"],
    ],
    "orders": [
        ["O1", "C1", "2026-02-01 10:00:00", "placed", "web"],
        ["O2", "C2", "2026-02-02 10:00:00", "placed", "app"],
        ["O3", "", "2026-02-03 10:00:00", "cancelled", "web"],
    ],
    "order_lines": [
        ["O1", "1", "P1", "2", "3.50"],
        ["O1", "2", "P2", "1", "12.00"],
        ["O2", "1", "P3", "1", "25.99"],
        ["O3", "1", "P1", "-1", "3.50"],
    ],
    "events": [
        ["E1", "C1", "S1", "P1", "view", "2026-02-01 09:55:00"],
        ["E2", "", "S2", "P2", "add_to_cart", "2026-02-01 11:00:00"],
        ["E3", "C2", "S3", "P3", "purchase", "2026-02-02 10:00:00"],
    ],
    "reviews": [["R1", "C1", "P1", "5", "Great", "Lovely mug", "2026-02-05 08:00:00"]],
    "campaigns": [
        [
            "K1",
            "Spring",
            "email",
            "segment",
            "Champions",
            "2026-03-01 00:00:00",
            "2026-03-31 00:00:00",
            "1000",
            "0.1",
        ]
    ],
    "erasure_requests": [["C4", "2026-02-10 00:00:00"]],
}
BASELINE_FILE = "00_baseline.csv"
# A good file of the same batch, loaded before any case file: a refused case must roll it back.
SAME_BATCH_GOOD_FILE = "customers/10_same_batch_good.csv"
SAME_BATCH_GOOD_ID = "C-SAME-BATCH"


def csv_bytes(header: str, rows: Sequence[Sequence[str]]) -> bytes:
    """A CSV file (``\\n`` line ends) with ``header`` and ``rows``, quoting where needed."""
    out = io.StringIO()
    out.write(header + "\n")
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def lines_bytes(*lines: str | bytes) -> bytes:
    """A file from raw lines (for rows a CSV writer would not produce)."""
    return b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)


@dataclass(frozen=True)
class Case:
    """One defect of the corpus and what the ingest must do with it.

    Attributes
    ----------
    kind : str
        Short name (the pytest id).
    entity : str
        Entity of the defective file.
    defect : str
        What is wrong, in words (for the summary table).
    file : str
        Path of the defective file under the landing folder.
    content : bytes
        Its bytes.
    outcome : str
        ``"quarantined"``, ``"loaded"`` or ``"refused"``.
    quarantined : tuple of (int, str)
        Expected ``(source_row, rule)`` of every quarantined row of the file.
    received : int or None
        Data records in the file as written here (accepted files only).
    loaded_keys : tuple of str
        First key column of the rows that must load from the file.
    message : str or None
        Regular expression the refusal must match (besides naming the file).
    check : callable, optional
        Extra assertion on the warehouse after an accepted ingest: ``check(con)``.
    """

    kind: str
    entity: str
    defect: str
    file: str
    content: bytes
    outcome: str
    quarantined: tuple[tuple[int, str], ...] = ()
    received: int | None = None
    loaded_keys: tuple[str, ...] = ()
    message: str | None = None
    check: Callable[[duckdb.DuckDBPyConnection], None] | None = field(default=None, compare=False)


def _case_file(entity: str, kind: str, suffix: str = ".csv") -> str:
    return f"{entity}/50_{kind}{suffix}"


def _sql_text_loaded_verbatim(con: duckdb.DuckDBPyConnection) -> None:
    titles = con.execute("select title from raw.reviews where review_id = 'R-SQL-1'").fetchall()
    assert titles == [(SQL_TEXT,)], titles
    bodies = con.execute("select body from raw.reviews where review_id = 'R-SQL-2'").fetchall()
    assert bodies == [("Robert'); DROP TABLE raw.customers; --",)], bodies
    assert con.execute("select count(*) from raw.orders").fetchone()[0] == len(BASELINE["orders"])


def _sql_identifiers_harmless(con: duckdb.DuckDBPyConnection) -> None:
    assert con.execute("select count(*) from raw.orders").fetchone()[0] == len(BASELINE["orders"])
    columns = [r[0] for r in con.execute("describe raw.products").fetchall()]
    assert not any("DROP" in c for c in columns), columns


def _swallowed_rows_kept_in_quarantine(con: duckdb.DuckDBPyConnection) -> None:
    # CSV grammar: an unterminated quote runs to the end of the file. Those lines are one
    # record, quarantined whole: their text is kept, nothing is lost.
    (raw,) = con.execute(
        "select raw_values from raw.quarantine where rule = 'malformed_row'"
    ).fetchone()
    assert "P-QUOTE-3" in raw and "P-QUOTE-4" in raw, raw


def _lone_cr_rows_typed(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "select product_id, name, price from raw.products where product_id like 'P-CR-%' order by 1"
    ).fetchall()
    assert rows == [("P-CR-1", "Cup", 1.0), ("P-CR-2", "Bowl", 2.0)], rows


def _line_numbers_kept(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "select customer_id, _source_row from raw.customers where customer_id like 'C-BL-%' "
        "order by 1"
    ).fetchall()
    assert rows == [("C-BL-1", 1), ("C-BL-2", 3), ("C-BL-3", 5)], rows


def _offsets_in_utc(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "select order_id, ordered_at::varchar from raw.orders where order_id like 'O-TZ-%' "
        "order by 1"
    ).fetchall()
    assert rows == [
        ("O-TZ-1", "2026-02-05 04:30:00"),
        ("O-TZ-2", "2026-02-04 23:30:00"),
        ("O-TZ-3", "2026-02-04 22:30:00"),
    ], rows


def _renamed_optional_column_warned(con: duckdb.DuckDBPyConnection) -> None:
    (warnings,) = con.execute(
        "select warnings from raw.load_manifest where source_file like '%renamed_optional%'"
    ).fetchone()
    assert "marketing_optin" in warnings and "marketing_opt_in = false" in warnings, warnings


def _multiline_value_numbered(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "select product_id, _source_row from raw.products where product_id like 'P-ML-%' order by 1"
    ).fetchall()
    assert rows == [("P-ML-1", 1), ("P-ML-2", 3)], rows


def _padded_key_trimmed(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "select customer_id from raw.customers where customer_id like '%C-PAD-%'"
    ).fetchall()
    assert rows == [("C-PAD-1",)], rows


def _late_nul_file() -> bytes:
    """Products with a NUL byte in a row after the first 64 KiB."""
    filler = [[f"P-FILL-{n}", "x" * 60, "", "Kitchen", "Acme", "1.00", "true"] for n in range(1200)]
    head = csv_bytes(HEADERS["products"], filler)
    assert len(head) > 64 * 1024
    return head + b"P-NUL-2,Bo\x00wl,,Kitchen,Acme,2.00,true\nP-NUL-3,Jug,,Kitchen,Acme,3.00,true\n"


def _truncated(content: bytes, share: float) -> bytes:
    """The first ``share`` of ``content``: a download or copy that stopped early."""
    return content[: int(len(content) * share)]


def _parquet_bytes(rows: dict[str, list]) -> bytes:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "x.parquet"
        con = duckdb.connect()
        try:
            con.register("frame", _arrow(rows))
            con.execute(f"copy frame to '{path}' (format parquet)")
        finally:
            con.close()
        return path.read_bytes()


def _arrow(rows: dict[str, list]):
    import pyarrow as pa

    return pa.table(rows)


def _big_events_csv(rows: int) -> bytes:
    return csv_bytes(
        HEADERS["events"],
        [
            [f"E-GZ-{i}", "C1", f"S-GZ-{i // 5}", "P1", "view", "2026-02-01 10:00:00"]
            for i in range(rows)
        ],
    )


def build_cases() -> list[Case]:
    """Every case of the corpus (fresh objects; content generated here)."""
    cases: list[Case] = []
    add = cases.append
    H = HEADERS

    # --------------------------------------------------------- quarantined row by row
    add(
        Case(
            "wrong_column_count_short",
            "customers",
            "a row with 3 of 6 fields",
            _case_file("customers", "wrong_column_count_short"),
            lines_bytes(
                H["customers"],
                "C-WCC-1,e1@corpus.example,Eve,GB,2026-01-05 10:00:00,true",
                "C-WCC-2,e2@corpus.example,Fay",
                "C-WCC-3,e3@corpus.example,Gus,GB,2026-01-05 10:00:00,true",
            ),
            "quarantined",
            ((2, "wrong_column_count"),),
            3,
            ("C-WCC-1", "C-WCC-3"),
        )
    )
    add(
        Case(
            "wrong_column_count_long",
            "orders",
            "a row with 7 of 5 fields",
            _case_file("orders", "wrong_column_count_long"),
            lines_bytes(
                H["orders"],
                "O-WCC-1,C1,2026-02-04 10:00:00,placed,web",
                "O-WCC-2,C1,2026-02-04 10:00:00,placed,web,extra,fields",
            ),
            "quarantined",
            ((2, "wrong_column_count"),),
            2,
            ("O-WCC-1",),
        )
    )
    add(
        Case(
            "invalid_utf8",
            "products",
            "Latin-1 byte 0xE9 in a product name",
            _case_file("products", "invalid_utf8"),
            lines_bytes(
                H["products"],
                "P-UTF-1,Cup,,Kitchen,Acme,2.00,true",
                b"P-UTF-2,Caf\xe9 cup,,Kitchen,Acme,2.00,true",
                "P-UTF-3,Caf\u00e9 bowl,,Kitchen,Acme,2.00,true",
            ),
            "quarantined",
            ((2, "invalid_utf8"),),
            3,
            ("P-UTF-1", "P-UTF-3"),
        )
    )
    add(
        Case(
            "unparseable_timestamp",
            "orders",
            "ordered_at '2026-13-45 10:00:00' and 'yesterday'",
            _case_file("orders", "unparseable_timestamp"),
            csv_bytes(
                H["orders"],
                [
                    ["O-TS-1", "C1", "2026-02-05 10:00:00", "placed", "web"],
                    ["O-TS-2", "C1", "2026-13-45 10:00:00", "placed", "web"],
                    ["O-TS-3", "C1", "yesterday", "placed", "web"],
                ],
            ),
            "quarantined",
            ((2, "unparseable_timestamp"), (3, "unparseable_timestamp")),
            3,
            ("O-TS-1",),
        )
    )
    add(
        Case(
            "future_timestamp",
            "events",
            "occurred_at in 2099 (more than a day after the ingest clock)",
            _case_file("events", "future_timestamp"),
            csv_bytes(
                H["events"],
                [
                    ["E-FUT-1", "C1", "S9", "P1", "view", "2026-11-02 08:00:00"],  # within a day
                    ["E-FUT-2", "C1", "S9", "P1", "view", "2099-01-01 00:00:00"],
                ],
            ),
            "quarantined",
            ((2, "future_timestamp"),),
            2,
            ("E-FUT-1",),
        )
    )
    add(
        Case(
            "null_key",
            "customers",
            "customer_id empty and blank",
            _case_file("customers", "null_key"),
            csv_bytes(
                H["customers"],
                [
                    ["C-NULL-1", "n1@corpus.example", "Hal", "GB", "2026-01-06 10:00:00", "true"],
                    ["", "n2@corpus.example", "Ida", "GB", "2026-01-06 10:00:00", "true"],
                    ["   ", "n3@corpus.example", "Jo", "GB", "2026-01-06 10:00:00", "true"],
                ],
            ),
            "quarantined",
            ((2, "missing_value"), (3, "missing_value")),
            3,
            ("C-NULL-1",),
        )
    )
    add(
        Case(
            "null_composite_key",
            "order_lines",
            "order line without line_no",
            _case_file("order_lines", "null_composite_key"),
            csv_bytes(
                H["order_lines"], [["O2", "7", "P1", "1", "3.50"], ["O2", "", "P1", "1", "3.50"]]
            ),
            "quarantined",
            ((2, "missing_value"),),
            2,
            ("O2",),
        )
    )
    add(
        Case(
            "duplicate_key",
            "products",
            "P-DUP twice in the file, P1 already loaded from another file",
            _case_file("products", "duplicate_key"),
            csv_bytes(
                H["products"],
                [
                    ["P-DUP", "Jug", "", "Kitchen", "Acme", "4.00", "true"],
                    ["P-DUP", "Jug again", "", "Kitchen", "Acme", "4.50", "true"],
                    ["P1", "Mug twin", "", "Kitchen", "Acme", "3.50", "true"],
                ],
            ),
            "quarantined",
            ((2, "duplicate_key"), (3, "duplicate_key")),
            3,
            ("P-DUP",),
        )
    )
    add(
        Case(
            "duplicate_composite_key",
            "order_lines",
            "order line (O1, 1) again, and (O2, 5) twice",
            _case_file("order_lines", "duplicate_composite_key"),
            csv_bytes(
                H["order_lines"],
                [
                    ["O2", "5", "P2", "1", "12.00"],
                    ["O2", "5", "P1", "1", "3.50"],
                    ["O1", "1", "P1", "9", "3.50"],
                ],
            ),
            "quarantined",
            ((2, "duplicate_key"), (3, "duplicate_key")),
            3,
            ("O2",),
        )
    )
    add(
        Case(
            "negative_price",
            "products",
            "price -1.00",
            _case_file("products", "negative_price"),
            csv_bytes(
                H["products"],
                [
                    ["P-NEG-1", "Free sample", "", "Kitchen", "Acme", "0", "true"],
                    ["P-NEG-2", "Refund", "", "Kitchen", "Acme", "-1.00", "true"],
                ],
            ),
            "quarantined",
            ((2, "negative_price"),),
            2,
            ("P-NEG-1",),
        )
    )
    add(
        Case(
            "negative_unit_price",
            "order_lines",
            "unit_price -3.50",
            _case_file("order_lines", "negative_unit_price"),
            csv_bytes(
                H["order_lines"], [["O2", "8", "P1", "1", "3.50"], ["O2", "9", "P1", "1", "-3.50"]]
            ),
            "quarantined",
            ((2, "negative_price"),),
            2,
            ("O2",),
        )
    )
    add(
        Case(
            "zero_quantity",
            "order_lines",
            "quantity 0 (a negative one is a legitimate reversal)",
            _case_file("order_lines", "zero_quantity"),
            csv_bytes(
                H["order_lines"],
                [["O2", "10", "P1", "-1", "3.50"], ["O2", "11", "P1", "0", "3.50"]],
            ),
            "quarantined",
            ((2, "zero_quantity"),),
            2,
            ("O2",),
        )
    )
    add(
        Case(
            "orphan_product",
            "order_lines",
            "order line for product P404 that does not exist",
            _case_file("order_lines", "orphan_product"),
            csv_bytes(
                H["order_lines"],
                [["O2", "12", "P2", "1", "12.00"], ["O2", "13", "P404", "1", "9.99"]],
            ),
            "quarantined",
            ((2, "orphan_reference"),),
            2,
            ("O2",),
        )
    )
    add(
        Case(
            "orphan_customer",
            "orders",
            "order of customer C404 that does not exist (guest orders have none)",
            _case_file("orders", "orphan_customer"),
            csv_bytes(
                H["orders"],
                [
                    ["O-ORPH-1", "", "2026-02-06 10:00:00", "placed", "web"],
                    ["O-ORPH-2", "C404", "2026-02-06 10:00:00", "placed", "web"],
                ],
            ),
            "quarantined",
            ((2, "orphan_reference"),),
            2,
            ("O-ORPH-1",),
        )
    )
    add(
        Case(
            "unknown_event_type",
            "events",
            "event_type 'teleport' ('VIEW' is a case variant and loads)",
            _case_file("events", "unknown_event_type"),
            csv_bytes(
                H["events"],
                [
                    ["E-TYPE-1", "C1", "S8", "P1", "VIEW", "2026-02-07 10:00:00"],
                    ["E-TYPE-2", "C1", "S8", "P1", "teleport", "2026-02-07 10:01:00"],
                ],
            ),
            "quarantined",
            ((2, "unknown_event_type"),),
            2,
            ("E-TYPE-1",),
        )
    )
    add(
        Case(
            "rating_out_of_range",
            "reviews",
            "ratings 0 and 6",
            _case_file("reviews", "rating_out_of_range"),
            csv_bytes(
                H["reviews"],
                [
                    ["R-RATE-1", "C2", "P2", "1", "Meh", "Bent", "2026-02-08 10:00:00"],
                    ["R-RATE-2", "C2", "P2", "0", "Zero", "No", "2026-02-08 10:00:00"],
                    ["R-RATE-3", "C2", "P2", "6", "Six", "Yes", "2026-02-08 10:00:00"],
                ],
            ),
            "quarantined",
            ((2, "rating_out_of_range"), (3, "rating_out_of_range")),
            3,
            ("R-RATE-1",),
        )
    )
    add(
        Case(
            "text_1mb",
            "reviews",
            "a 1 MB review body",
            _case_file("reviews", "text_1mb"),
            csv_bytes(
                H["reviews"],
                [
                    ["R-BIG-1", "C2", "P1", "4", "Long", "x" * 9_999, "2026-02-08 10:00:00"],
                    ["R-BIG-2", "C2", "P1", "4", "Huge", "y" * ONE_MB, "2026-02-08 10:00:00"],
                ],
            ),
            "quarantined",
            ((2, "text_too_long"),),
            2,
            ("R-BIG-1",),
        )
    )
    add(
        Case(
            "bad_integer",
            "order_lines",
            "quantity 'three' and '2.5'",
            _case_file("order_lines", "bad_integer"),
            csv_bytes(
                H["order_lines"],
                [
                    ["O2", "14", "P1", "2.0", "3.50"],
                    ["O2", "15", "P1", "three", "3.50"],
                    ["O2", "16", "P1", "2.5", "3.50"],
                ],
            ),
            "quarantined",
            ((2, "bad_integer"), (3, "bad_integer")),
            3,
            ("O2",),
        )
    )
    add(
        Case(
            "bad_number",
            "products",
            "price 'abc'",
            _case_file("products", "bad_number"),
            csv_bytes(H["products"], [["P-NUM-1", "Bowl", "", "Kitchen", "Acme", "abc", "true"]]),
            "quarantined",
            ((1, "bad_number"),),
            1,
            (),
        )
    )
    add(
        Case(
            "bad_boolean",
            "customers",
            "marketing_opt_in 'maybe'",
            _case_file("customers", "bad_boolean"),
            csv_bytes(
                H["customers"],
                [["C-BOOL-1", "b1@corpus.example", "Kim", "GB", "2026-01-07 10:00:00", "maybe"]],
            ),
            "quarantined",
            ((1, "bad_boolean"),),
            1,
            (),
        )
    )
    add(
        Case(
            "unknown_order_status",
            "orders",
            "status 'lost'",
            _case_file("orders", "unknown_order_status"),
            csv_bytes(
                H["orders"],
                [
                    ["O-ST-1", "C1", "2026-02-09 10:00:00", " Returned ", "web"],
                    ["O-ST-2", "C1", "2026-02-09 10:00:00", "lost", "web"],
                ],
            ),
            "quarantined",
            ((2, "unknown_order_status"),),
            2,
            ("O-ST-1",),
        )
    )
    add(
        Case(
            "campaign_rules",
            "campaigns",
            "control_share 1.5, ends before it starts, unknown target, max_audience -5",
            _case_file("campaigns", "campaign_rules"),
            csv_bytes(
                H["campaigns"],
                [
                    [
                        "K-1",
                        "a",
                        "email",
                        "segment",
                        "Champions",
                        "2026-03-01",
                        "2026-03-02",
                        "10",
                        "1.5",
                    ],
                    [
                        "K-2",
                        "b",
                        "email",
                        "segment",
                        "Champions",
                        "2026-03-02",
                        "2026-03-01",
                        "10",
                        "0.1",
                    ],
                    [
                        "K-3",
                        "c",
                        "email",
                        "horoscope",
                        "Leo",
                        "2026-03-01",
                        "2026-03-02",
                        "10",
                        "0.1",
                    ],
                    [
                        "K-4",
                        "d",
                        "email",
                        "category",
                        "Garden",
                        "2026-03-01",
                        "2026-03-02",
                        "-5",
                        "0.1",
                    ],
                ],
            ),
            "quarantined",
            (
                (1, "bad_control_share"),
                (2, "bad_time_window"),
                (3, "unknown_target_type"),
                (4, "negative_max_audience"),
            ),
            4,
            (),
        )
    )
    add(
        Case(
            "erasure_request_defects",
            "erasure_requests",
            "request without customer_id, request dated 2099",
            _case_file("erasure_requests", "erasure_request_defects"),
            csv_bytes(
                H["erasure_requests"],
                [["C3", "2026-10-01 00:00:00"], ["", "2026-10-01 00:00:00"], ["C2", "2099-01-01"]],
            ),
            "quarantined",
            ((2, "missing_value"), (3, "future_timestamp")),
            3,
            ("C3",),
        )
    )
    add(
        Case(
            "unterminated_quote",
            "products",
            "an opening quote never closed: the rest of the file is one field",
            _case_file("products", "unterminated_quote"),
            lines_bytes(
                H["products"],
                "P-QUOTE-1,Cup,,Kitchen,Acme,2.00,true",
                'P-QUOTE-2,"Broken,,Kitchen,Acme,2.00,true',
                "P-QUOTE-3,Bowl,,Kitchen,Acme,2.00,true",
                "P-QUOTE-4,Plate,,Kitchen,Acme,2.00,true",
            ),
            "quarantined",
            ((2, "malformed_row"),),
            2,  # CSV records: P-QUOTE-1, then one record from the open quote to the end
            ("P-QUOTE-1",),
            check=_swallowed_rows_kept_in_quarantine,
        )
    )
    add(
        Case(
            "parquet_bad_values",
            "products",
            "Parquet with price 'abc' (string column) and a negative price",
            _case_file("products", "parquet_bad_values", ".parquet"),
            _parquet_bytes(
                {
                    "product_id": ["P-PQ-1", "P-PQ-2", "P-PQ-3"],
                    "name": ["Vase", "Tray", "Rack"],
                    "price": ["5.5", "abc", "-2"],
                }
            ),
            "quarantined",
            ((2, "bad_number"), (3, "negative_price")),
            3,
            ("P-PQ-1",),
        )
    )

    # ------------------------------------------ issue 19: values that would break the night
    add(
        Case(
            "non_finite_number",
            "products",
            "prices inf, NaN and 1e400 (a double overflow)",
            _case_file("products", "non_finite_number"),
            csv_bytes(
                H["products"],
                [
                    ["P-NF-1", "Cup", "", "Kitchen", "Acme", "1.00", "true"],
                    ["P-NF-2", "Cloud", "", "Kitchen", "Acme", "inf", "true"],
                    ["P-NF-3", "Ghost", "", "Kitchen", "Acme", "NaN", "true"],
                    ["P-NF-4", "Void", "", "Kitchen", "Acme", "1e400", "true"],
                ],
            ),
            "quarantined",
            ((2, "non_finite_number"), (3, "non_finite_number"), (4, "non_finite_number")),
            4,
            ("P-NF-1",),
        )
    )
    add(
        Case(
            "value_out_of_range",
            "order_lines",
            "quantity 2147483647 and a unit price of 2,000,000 (bounds: 1,000,000 each)",
            _case_file("order_lines", "value_out_of_range"),
            csv_bytes(
                H["order_lines"],
                [
                    ["O2", "20", "P1", "1000000", "1000000"],  # at the bounds: loads
                    ["O2", "21", "P1", "2147483647", "3.50"],
                    ["O2", "22", "P1", "1", "2000000"],
                ],
            ),
            "quarantined",
            ((2, "value_out_of_range"), (3, "value_out_of_range")),
            3,
            ("O2",),
        )
    )
    add(
        Case(
            "timestamp_out_of_range",
            "events",
            "occurred_at 1960-01-01 and -infinity (bounds: 1970 to 2100)",
            _case_file("events", "timestamp_out_of_range"),
            csv_bytes(
                H["events"],
                [
                    ["E-OOR-1", "C1", "S7", "P1", "view", "1970-01-01 00:00:00"],
                    ["E-OOR-2", "C1", "S7", "P1", "view", "1960-01-01 00:00:00"],
                    ["E-OOR-3", "C1", "S7", "P1", "view", "-infinity"],
                ],
            ),
            "quarantined",
            ((2, "value_out_of_range"), (3, "value_out_of_range")),
            3,
            ("E-OOR-1",),
        )
    )
    add(
        Case(
            "unparseable_time_zone",
            "orders",
            "ordered_at in zone 'Mars/Olympus' and at offset +25:00",
            _case_file("orders", "unparseable_time_zone"),
            csv_bytes(
                H["orders"],
                [
                    ["O-UTZ-1", "C1", "2026-02-04 10:00:00 Europe/Paris", "placed", "web"],
                    ["O-UTZ-2", "C1", "2026-02-04 10:00:00 Mars/Olympus", "placed", "web"],
                    ["O-UTZ-3", "C1", "2026-02-04 10:00:00+25:00", "placed", "web"],
                ],
            ),
            "quarantined",
            ((2, "unparseable_time_zone"), (3, "unparseable_time_zone")),
            3,
            ("O-UTZ-1",),
        )
    )
    add(
        Case(
            "blank_lines",
            "customers",
            "blank lines between rows and at the end (received, quarantined, numbered)",
            _case_file("customers", "blank_lines"),
            lines_bytes(
                H["customers"],
                "C-BL-1,bl1@corpus.example,Ola,GB,2026-01-05 10:00:00,true",
                "",
                "C-BL-2,bl2@corpus.example,Pia,GB,2026-01-05 10:00:00,true",
                "",
                "C-BL-3,bl3@corpus.example,Quin,GB,2026-01-05 10:00:00,true",
                "",
            ),
            "quarantined",
            ((2, "blank_line"), (4, "blank_line"), (6, "blank_line")),
            6,
            ("C-BL-1", "C-BL-2", "C-BL-3"),
            check=_line_numbers_kept,
        )
    )
    add(
        Case(
            "padded_key",
            "customers",
            "' C1' and 'C2 ': ids the warehouse compares trimmed, so repeats of C1 and C2",
            _case_file("customers", "padded_key"),
            csv_bytes(
                H["customers"],
                [
                    ["C-PAD-1 ", "p1@corpus.example", "Pam", "GB", "2026-01-05 10:00:00", "1"],
                    [" C1", "p2@corpus.example", "Pat", "GB", "2026-01-05 10:00:00", "1"],
                    ["C2 ", "p3@corpus.example", "Pip", "GB", "2026-01-05 10:00:00", "1"],
                ],
            ),
            "quarantined",
            ((2, "duplicate_key"), (3, "duplicate_key")),
            3,
            ("C-PAD-1",),
            check=_padded_key_trimmed,
        )
    )
    add(
        Case(
            "nul_byte_early",
            "products",
            "a NUL byte inside a product name in the first rows",
            _case_file("products", "nul_byte_early"),
            b"product_id,name,price\nP-NUL-1,Cup,1\nP-NUL-2,Bo\x00wl,2\n",
            "quarantined",
            ((2, "nul_byte"),),
            2,
            ("P-NUL-1",),
        )
    )
    add(
        Case(
            "nul_byte_late",
            "products",
            "a NUL byte inside a product name after the first 64 KiB (same rule)",
            _case_file("products", "nul_byte_late"),
            _late_nul_file(),
            "quarantined",
            ((1201, "nul_byte"),),
            1202,
            tuple([f"P-FILL-{n}" for n in range(1200)] + ["P-NUL-3"]),
        )
    )

    # ----------------------------------------------------------- loaded verbatim as data
    add(
        Case(
            "sql_text",
            "reviews",
            f'review title {SQL_TEXT!r}, body "Robert\'); DROP TABLE raw.customers; --"',
            _case_file("reviews", "sql_text"),
            csv_bytes(
                H["reviews"],
                [
                    ["R-SQL-1", "C1", "P2", "3", SQL_TEXT, "fine", "2026-02-10 10:00:00"],
                    [
                        "R-SQL-2",
                        "C2",
                        "P2",
                        "4",
                        "ok",
                        "Robert'); DROP TABLE raw.customers; --",
                        "2026-02-10 10:00:00",
                    ],
                ],
            ),
            "loaded",
            (),
            2,
            ("R-SQL-1", "R-SQL-2"),
            check=_sql_text_loaded_verbatim,
        )
    )
    add(
        Case(
            "sql_identifiers",
            "products",
            "file name and an extra column name that look like SQL",
            "products/50_x'; DROP TABLE raw.orders; --.csv",
            csv_bytes(
                H["products"] + ',"x""; DROP TABLE raw.orders; --"',
                [["P-SQLID-1", "Cup", "", "Kitchen", "Acme", "2.00", "true", "z"]],
            ),
            "loaded",
            (),
            1,
            ("P-SQLID-1",),
            check=_sql_identifiers_harmless,
        )
    )
    add(
        Case(
            "bom_crlf",
            "customers",
            "UTF-8 byte order mark and CRLF line ends (a spreadsheet export)",
            _case_file("customers", "bom_crlf"),
            b"\xef\xbb\xbf"
            + csv_bytes(
                H["customers"],
                [
                    ["C-BOM-1", "m1@corpus.example", "Lou", "GB", "2026-01-08 10:00:00", "Y"],
                    ["C-BOM-2", "m2@corpus.example", "Mo", "GB", "2026-01-08 10:00:00", "N"],
                ],
            ).replace(b"\n", b"\r\n"),
            "loaded",
            (),
            2,
            ("C-BOM-1", "C-BOM-2"),
        )
    )
    add(
        Case(
            "classic_mac_line_ends",
            "products",
            "lines ended by a lone CR (old Mac export)",
            _case_file("products", "classic_mac_line_ends"),
            b"product_id,name,price\rP-CR-1,Cup,1\rP-CR-2,Bowl,2\r",
            "loaded",
            (),
            2,
            ("P-CR-1", "P-CR-2"),
            check=_lone_cr_rows_typed,
        )
    )
    add(
        Case(
            "offset_timestamps",
            "orders",
            "ordered_at with an offset, a Z and a zone name: converted to UTC",
            _case_file("orders", "offset_timestamps"),
            csv_bytes(
                H["orders"],
                [
                    ["O-TZ-1", "C1", "2026-02-04 23:30:00-05:00", "placed", "web"],
                    ["O-TZ-2", "C1", "2026-02-04T23:30:00Z", "placed", "web"],
                    ["O-TZ-3", "C1", "2026-02-04 23:30:00 Europe/Paris", "placed", "web"],
                ],
            ),
            "loaded",
            (),
            3,
            ("O-TZ-1", "O-TZ-2", "O-TZ-3"),
            check=_offsets_in_utc,
        )
    )
    add(
        Case(
            "renamed_optional_column",
            "customers",
            "marketing_opt_in renamed marketing_optin: loads with its default, loudly",
            _case_file("customers", "renamed_optional_column"),
            lines_bytes(
                H["customers"].replace("marketing_opt_in", "marketing_optin"),
                "C-ROC-1,roc@corpus.example,Ros,GB,2026-01-09 10:00:00,true",
            ),
            "loaded",
            (),
            1,
            ("C-ROC-1",),
            check=_renamed_optional_column_warned,
        )
    )
    add(
        Case(
            "multiline_value",
            "products",
            "a quoted name spanning two lines: the next row keeps its line number",
            _case_file("products", "multiline_value"),
            b'product_id,name,price\nP-ML-1,"Two\nlines",1\nP-ML-2,Cup,2\n',
            "loaded",
            (),
            2,
            ("P-ML-1", "P-ML-2"),
            check=_multiline_value_numbered,
        )
    )
    add(
        Case(
            "header_only",
            "orders",
            "a header line and no rows",
            _case_file("orders", "header_only"),
            lines_bytes(H["orders"]),
            "loaded",
            (),
            0,
            (),
        )
    )

    # ------------------------------------------------------------ refused file by file
    refused = [
        ("empty_file", "orders", "an empty file (0 bytes)", ".csv", b"", r"the file is empty"),
        (
            "blank_file",
            "orders",
            "only blank lines",
            ".csv",
            b"\n\n   \n",
            r"the file is empty",
        ),
        (
            "missing_column",
            "orders",
            "header without the required column status",
            ".csv",
            lines_bytes("order_id,customer_id,ordered_at,channel", "O-MC-1,C1,2026-02-01,web"),
            r"missing required column\(s\) status",
        ),
        (
            "renamed_column",
            "customers",
            "customer_id renamed customer_ref in the header",
            ".csv",
            lines_bytes(
                H["customers"].replace("customer_id", "customer_ref"),
                "C-REN-1,r@corpus.example,Ray,GB,2026-01-09 10:00:00,true",
            ),
            r"missing required column\(s\) customer_id .*customer_ref",
        ),
        (
            "duplicate_header",
            "products",
            "the column price twice in the header",
            ".csv",
            lines_bytes("product_id,name,price,price", "P-DH-1,Cup,1,2"),
            r"duplicate column names",
        ),
        (
            "wrong_delimiter",
            "products",
            "semicolon-separated file",
            ".csv",
            lines_bytes("product_id;name;price", "P-SC-1;Cup;1"),
            r"missing required column\(s\) product_id, name, price",
        ),
        (
            "truncated_gz",
            "events",
            "a .csv.gz cut in half (header readable, stream ends early)",
            ".csv.gz",
            _truncated(gzip.compress(_big_events_csv(20_000), mtime=0), 0.5),
            r"(Unexpected end of GZIP stream|cannot be read)",
        ),
        (
            "truncated_gz_header",
            "events",
            "a .csv.gz cut after 100 bytes",
            ".csv.gz",
            gzip.compress(_big_events_csv(200), mtime=0)[:100],
            r"cannot be read",
        ),
        (
            "binary_named_csv",
            "products",
            "PNG bytes in a file named .csv",
            ".csv",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
            r"binary content",
        ),
        (
            "nul_in_header",
            "products",
            "a NUL byte in the header line",
            ".csv",
            b"product_id,na\x00me,price\nP-NH-1,Cup,1\n",
            r"binary content",
        ),
        (
            "gzip_named_csv",
            "orders",
            "gzip bytes in a file named .csv (no .gz suffix)",
            ".csv",
            gzip.compress(csv_bytes(H["orders"], BASELINE["orders"]), mtime=0),
            r"(binary content|not valid UTF-8)",
        ),
        (
            "binary_without_nul",
            "orders",
            "high bytes only (no NUL, not UTF-8) in a .csv",
            ".csv",
            bytes(range(128, 256)) * 64,
            r"not valid UTF-8",
        ),
        (
            "corrupt_parquet",
            "orders",
            "a .parquet that is not Parquet",
            ".parquet",
            b"PAR1 this is not parquet PAR1",
            r"cannot be read as Parquet",
        ),
    ]
    for kind, entity, defect, suffix, content, message in refused:
        add(
            Case(
                kind,
                entity,
                defect,
                _case_file(entity, kind, suffix),
                content,
                "refused",
                message=message,
            )
        )
    return cases


CASES = build_cases()


# --------------------------------------------------------------------------- writing


def write_baseline(landing: Path) -> Path:
    """Write the clean baseline shop as ``<entity>/00_baseline.csv`` files; return ``landing``."""
    for entity, rows in BASELINE.items():
        folder = landing / entity
        folder.mkdir(parents=True, exist_ok=True)
        (folder / BASELINE_FILE).write_bytes(csv_bytes(HEADERS[entity], rows))
    return landing


def write_case(case: Case, landing: Path) -> Path:
    """Write one case's defective file into ``landing``; return its path."""
    path = landing / case.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(case.content)
    return path


def write_same_batch_good_file(landing: Path) -> Path:
    """A good new file loaded early in the batch (a refusal must roll it back)."""
    path = landing / SAME_BATCH_GOOD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        csv_bytes(
            HEADERS["customers"],
            [[SAME_BATCH_GOOD_ID, "new@corpus.example", "Neo", "GB", "2026-01-10 10:00:00", "1"]],
        )
    )
    return path


def build_corpus(out: Path) -> list[Path]:
    """Write every case as ``out/<kind>/`` (baseline + the case's file); return the folders."""
    folders = []
    for case in CASES:
        landing = write_baseline(Path(out) / case.kind)
        write_case(case, landing)
        folders.append(landing)
    return folders


# --------------------------------------------------------------------------- running


@dataclass
class CaseResult:
    """What the ingest did with one case (a row of the summary table)."""

    case: Case
    outcome: str
    received: int | None = None
    loaded: int | None = None
    quarantined: int | None = None
    rules: dict[str, int] = field(default_factory=dict)
    message: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def raw_state(warehouse: Path) -> dict[str, tuple[int, str]]:
    """``{raw table: (rows, order-independent checksum)}``: what 'unchanged' means."""
    from ml.publish.query import table_checksum

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw' "
                "order by 1"
            ).fetchall()
        ]
        return {t: table_checksum(con, f"raw.{t}") for t in tables}
    finally:
        con.close()


def run_case(case: Case, workdir: Path) -> CaseResult:
    """Ingest one case into a fresh warehouse under ``workdir`` and check what happened.

    Accepted cases: one batch of baseline + case file. Refused cases: the baseline is
    loaded first; then a batch with a good new file and the case file must fail, naming the
    file, and leave the warehouse exactly as it was.
    """
    from ml.ingest import IngestError, check_manifest, ingest

    workdir.mkdir(parents=True, exist_ok=True)
    landing = write_baseline(workdir / "landing")
    warehouse = workdir / "warehouse.duckdb"
    result = CaseResult(case, outcome="?")
    problems = result.problems

    if case.outcome == "refused":
        ingest(landing, warehouse=warehouse, now=INGEST_NOW)
        before = raw_state(warehouse)
        write_same_batch_good_file(landing)
        path = write_case(case, landing)
        try:
            ingest(landing, warehouse=warehouse, now=INGEST_NOW)
        except IngestError as exc:
            result.outcome = "refused"
            result.message = str(exc).replace(str(landing) + "/", "")
            if str(path) not in str(exc):
                problems.append(f"the message does not name the file {path}: {exc}")
            if not re.search(case.message or "", str(exc)):
                problems.append(f"the message does not match {case.message!r}: {exc}")
        else:
            result.outcome = "accepted"
            problems.append("the file was accepted, expected a refusal")
        if raw_state(warehouse) != before:
            problems.append("the warehouse changed: the batch was not rolled back")
        return result

    path = write_case(case, landing)
    try:
        report = ingest(landing, warehouse=warehouse, now=INGEST_NOW)
    except IngestError as exc:
        result.outcome = "refused"
        result.message = str(exc)
        problems.append(f"refused, expected {case.outcome}: {exc}")
        return result
    source_file = path.relative_to(landing).as_posix()
    (mine,) = [f for f in report.files if f.source_file == source_file]
    result.received, result.loaded, result.quarantined = (
        mine.received_rows,
        mine.loaded_rows,
        mine.quarantined_rows,
    )
    result.rules = dict(sorted(mine.rules.items()))
    result.outcome = "quarantined" if mine.quarantined_rows else "loaded"
    for f in report.files:
        if f.received_rows != f.loaded_rows + f.quarantined_rows:
            problems.append(f"{f.source_file}: received != loaded + quarantined")
    if mine.received_rows != case.received:
        problems.append(f"received {mine.received_rows} rows, the file has {case.received}")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        check_manifest(con)  # the tables agree with the manifest for every file
        got = sorted(
            con.execute(
                "select source_row, rule from raw.quarantine where source_file = ? order by 1",
                [source_file],
            ).fetchall()
        )
        if got != sorted(case.quarantined):
            problems.append(f"quarantined {got}, expected {sorted(case.quarantined)}")
        empty_raw = con.execute(
            "select count(*) from raw.quarantine where source_file = ? "
            "and (raw_values is null or raw_values = '')",
            [source_file],
        ).fetchone()[0]
        if empty_raw:
            problems.append(f"{empty_raw} quarantined row(s) without their raw values")
        key = _first_key(case.entity)
        loaded = sorted(
            r[0]
            for r in con.execute(
                f"select {key} from raw.{case.entity} where _source_file = ?", [source_file]
            ).fetchall()
        )
        if loaded != sorted(case.loaded_keys):
            problems.append(f"loaded {key} {loaded}, expected {sorted(case.loaded_keys)}")
        if case.check is not None:
            try:
                case.check(con)
            except AssertionError as exc:
                problems.append(f"check failed: {exc}")
    finally:
        con.close()
    if result.outcome != case.outcome:
        problems.append(f"outcome {result.outcome}, expected {case.outcome}")
    return result


def _first_key(entity: str) -> str:
    from ml.ingest.contract import ENTITIES

    return ENTITIES[entity].primary_key[0]


def run_corpus(workdir: Path, cases: Sequence[Case] = CASES) -> list[CaseResult]:
    """Run every case in its own folder under ``workdir``."""
    return [run_case(case, Path(workdir) / case.kind) for case in cases]


def summary_table(results: Sequence[CaseResult]) -> str:
    """A Markdown table of what happened to each defect (for the reliability note)."""
    lines = [
        "| defect kind | entity | defect | what happened | received = loaded + quarantined |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        if r.outcome == "refused":
            what = "file refused: " + _one_line(r.message)
            counts = "batch rolled back, warehouse unchanged"
        elif r.outcome == "quarantined":
            what = "quarantined: " + ", ".join(f"`{k}` x{v}" for k, v in r.rules.items())
            counts = f"{r.received} = {r.loaded} + {r.quarantined}"
        else:
            what = "loaded verbatim as data"
            counts = f"{r.received} = {r.loaded} + {r.quarantined}"
        if not r.ok:
            what += " **UNEXPECTED: " + "; ".join(r.problems) + "**"
        lines.append(f"| `{r.case.kind}` | {r.case.entity} | {r.case.defect} | {what} | {counts} |")
    kinds = len(results)
    refused = sum(r.outcome == "refused" for r in results)
    lines.append("")
    lines.append(
        f"{kinds} cases: {sum(r.outcome == 'quarantined' for r in results)} quarantined row by "
        f"row, {sum(r.outcome == 'loaded' for r in results)} loaded as data, {refused} refused; "
        f"{sum(not r.ok for r in results)} unexpected."
    )
    return "\n".join(lines)


def _one_line(text: str, limit: int = 140) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write every case's landing folder here")
    parser.add_argument("--summary", action="store_true", help="ingest every case, print a table")
    args = parser.parse_args(argv)
    if args.out:
        folders = build_corpus(args.out)
        print(f"wrote {len(folders)} cases under {args.out}")
    if args.summary:
        scratch = Path(tempfile.mkdtemp(prefix="affinity-corpus-"))
        try:
            results = run_corpus(scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(summary_table(results))
        print(json.dumps({"unexpected": [r.case.kind for r in results if not r.ok]}))
        return 1 if any(not r.ok for r in results) else 0
    if not args.out:
        parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
