"""Bad input, systematically: every defect of the generated corpus (``tests/corpus``).

Each case is either quarantined row by row with its rule, loaded verbatim as data, or
refused as a whole file with a message naming the file and the problem; a refusal rolls
the whole batch back. For every accepted file ``received = loaded + quarantined``, where
*received* is the number of records the corpus wrote, counted outside the ingest.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest
from corpus.build import (
    CASES,
    INGEST_NOW,
    SAME_BATCH_GOOD_ID,
    Case,
    run_case,
    run_corpus,
    summary_table,
    write_baseline,
    write_case,
)

from ml.ingest import ingest
from ml.ingest.contract import ENTITIES

# The defect kinds issue 8 names; the corpus must cover each of them.
REQUIRED_KINDS = {
    "wrong_column_count_short",
    "invalid_utf8",
    "unparseable_timestamp",
    "future_timestamp",
    "null_key",
    "duplicate_key",
    "negative_price",
    "zero_quantity",
    "orphan_product",
    "unknown_event_type",
    "rating_out_of_range",
    "text_1mb",
    "sql_text",
    "empty_file",
    "missing_column",
    "renamed_column",
    "truncated_gz",
    "binary_named_csv",
}
# The kinds issue 19 adds: values that used to load and break the night, lost time zones,
# uncounted lines, NUL bytes past the first 64 KiB, a renamed optional column.
ISSUE_19_KINDS = {
    "non_finite_number",
    "value_out_of_range",
    "timestamp_out_of_range",
    "unparseable_time_zone",
    "offset_timestamps",
    "blank_lines",
    "multiline_value",
    "nul_byte_early",
    "nul_byte_late",
    "nul_in_header",
    "renamed_optional_column",
    "padded_key",
}


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_defect_is_quarantined_loaded_or_refused_as_declared(case: Case, tmp_path: Path) -> None:
    result = run_case(case, tmp_path)
    assert result.ok, result.problems
    assert result.outcome == case.outcome
    if case.outcome == "refused":
        assert case.file in result.message  # names the file (relative to the landing folder)
    else:
        assert result.received == case.received == result.loaded + result.quarantined


def test_corpus_covers_every_required_kind_and_every_entity() -> None:
    kinds = {c.kind for c in CASES}
    assert kinds >= REQUIRED_KINDS | ISSUE_19_KINDS, (REQUIRED_KINDS | ISSUE_19_KINDS) - kinds
    assert len(kinds) == len(CASES) >= 12
    assert {c.entity for c in CASES} == set(ENTITIES)
    assert {c.outcome for c in CASES} == {"quarantined", "loaded", "refused"}


def test_all_accepted_defects_in_one_batch_reconcile(tmp_path: Path) -> None:
    """The whole corpus at once: one batch, every file reconciled, every rule where expected."""
    landing = write_baseline(tmp_path / "landing")
    accepted = [c for c in CASES if c.outcome != "refused"]
    for case in accepted:
        write_case(case, landing)
    warehouse = tmp_path / "warehouse.duckdb"
    report = ingest(landing, warehouse=warehouse, now=INGEST_NOW)
    by_file = {f.source_file: f for f in report.files}
    for case in accepted:
        got = by_file[case.file]
        assert got.received_rows == case.received, case.kind
        assert got.quarantined_rows == len(case.quarantined), case.kind
    assert all(f.received_rows == f.loaded_rows + f.quarantined_rows for f in report.files)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        quarantined = set(
            con.execute("select source_file, source_row, rule from raw.quarantine").fetchall()
        )
    finally:
        con.close()
    expected = {(c.file, row, rule) for c in accepted for row, rule in c.quarantined}
    assert quarantined == expected


def test_a_refused_file_rolls_back_a_good_file_of_the_same_batch(tmp_path: Path) -> None:
    """Spelled out for one refusal (every refused case checks the same through run_case)."""
    (case,) = [c for c in CASES if c.kind == "truncated_gz"]
    result = run_case(case, tmp_path)
    assert result.ok, result.problems
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        good = con.execute(
            "select count(*) from raw.customers where customer_id = ?", [SAME_BATCH_GOOD_ID]
        ).fetchone()[0]
        manifest = con.execute("select count(*) from raw.load_manifest").fetchone()[0]
    finally:
        con.close()
    assert good == 0
    assert manifest == len(list((tmp_path / "landing").rglob("00_baseline.csv")))


def test_columns_outside_the_contract_are_reported_not_dropped_silently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (case,) = [c for c in CASES if c.kind == "sql_identifiers"]
    with caplog.at_level(logging.WARNING, logger="ml.ingest"):
        result = run_case(case, tmp_path)
    assert result.ok, result.problems
    assert any(
        "not in the products contract ignored" in r.getMessage() and "DROP TABLE" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.slow
def test_corpus_summary_for_the_note(tmp_path: Path) -> None:
    """The table the reliability note quotes (``python tests/corpus/build.py --summary``)."""
    results = run_corpus(tmp_path)
    table = summary_table(results)
    print("\n" + table)
    assert all(r.ok for r in results), [(r.case.kind, r.problems) for r in results if not r.ok]
    assert "UNEXPECTED" not in table
