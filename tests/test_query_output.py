"""`affinity query`: a readable table, --limit honoured, --csv / --json for scripts."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from snapshot_support import CUSTOMERS, RECS_PER_CUSTOMER, write_snapshot

from ml.cli import main
from ml.config import paths
from ml.publish.query_output import DEFAULT_TABLE_ROWS, print_query, resolve_limit

AFFINITY = str(Path(sys.executable).with_name("affinity"))
ALL_RECS = "SELECT * FROM recommendations ORDER BY customer_id, rank"
TOTAL = len(CUSTOMERS) * RECS_PER_CUSTOMER  # 90


@pytest.fixture
def snapshot(affinity_home: Path) -> Path:
    return write_snapshot(paths().snapshot)


def _data_lines(table: str) -> list[str]:
    """The body rows of DuckDB's box rendering (between the header rule and the bottom)."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("├"))
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    return lines[start + 1 : end]


def test_limit_is_honoured_and_says_more_rows_exist(snapshot: Path) -> None:
    out = io.StringIO()
    shown = print_query(ALL_RECS, out, limit=3, width=120)
    text = out.getvalue()
    assert shown == 3
    rows = _data_lines(text)
    assert len(rows) == 3
    assert [r.split("│")[1].strip() for r in rows] == ["C0000001"] * 3
    assert "first 3 rows shown; more exist" in text


def test_default_table_shows_twenty_rows_and_no_note_when_all_fit(snapshot: Path) -> None:
    out = io.StringIO()
    assert print_query(ALL_RECS, out, width=120) == DEFAULT_TABLE_ROWS
    assert len(_data_lines(out.getvalue())) == DEFAULT_TABLE_ROWS

    out = io.StringIO()
    assert print_query(ALL_RECS, out, limit=500, width=120) == TOTAL
    assert len(_data_lines(out.getvalue())) == TOTAL  # no "·" elision of middle rows
    assert "more exist" not in out.getvalue()


@pytest.mark.parametrize("width", [80, 120, 160])
def test_the_table_fits_the_width_instead_of_wrapping(snapshot: Path, width: int) -> None:
    out = io.StringIO()
    print_query(ALL_RECS, out, limit=5, width=width)
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    # One line per row: wide tables elide columns (…), they never wrap cells.
    assert len(_data_lines(out.getvalue())) == 5
    assert "customer_id" in lines[1]


def test_csv_prints_every_row_with_nested_values_as_json(snapshot: Path) -> None:
    out = io.StringIO()
    assert print_query(ALL_RECS, out, fmt="csv") == TOTAL
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == TOTAL
    first = rows[0]
    assert first["customer_id"] == "C0000001" and first["rank"] == "1"
    assert json.loads(first["tags"]) == ["x", "y"]
    assert first["logical_date"] == "2026-10-31"
    by_key = {(r["customer_id"], r["rank"]): r for r in rows}
    assert by_key[("C0000002", "1")]["score"] == ""  # NaN -> empty, like NULL
    assert by_key[("C0000003", "1")]["price"] == ""


def test_json_is_an_array_of_objects_and_limit_applies(snapshot: Path) -> None:
    out = io.StringIO()
    assert print_query("SELECT * FROM pipeline_runs ORDER BY run_id", out, fmt="json") == 2
    runs = json.loads(out.getvalue())
    assert [r["run_id"] for r in runs] == ["run-1", "run-2"]
    assert runs[1]["stage_seconds"] == {"ingest": 2.0, "publish": 1.0, "train": 20.0}
    assert runs[1]["finished_at"] == "2026-11-01T01:00:23"

    out = io.StringIO()
    print_query(ALL_RECS, out, fmt="json", limit=4)
    assert len(json.loads(out.getvalue())) == 4
    out = io.StringIO()
    print_query("SELECT 1 AS x WHERE false", out, fmt="json")
    assert json.loads(out.getvalue()) == []


def test_limit_defaults_and_validation() -> None:
    assert resolve_limit(None, "table") == DEFAULT_TABLE_ROWS
    assert resolve_limit(None, "csv") is None
    assert resolve_limit(0, "table") is None
    assert resolve_limit(7, "json") == 7
    with pytest.raises(ValueError, match="--limit"):
        resolve_limit(-1, "table")
    with pytest.raises(ValueError, match="format"):
        resolve_limit(None, "xml")


def test_the_command_is_read_only_and_reports_errors(
    snapshot: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = snapshot.read_bytes()
    assert main(["query", "DROP TABLE recommendations"]) == 1
    assert "read-only" in caplog.text
    assert snapshot.read_bytes() == before
    caplog.clear()
    assert main(["query", "SELECT * FROM no_such_table"]) == 1
    assert "no_such_table" in caplog.text


def test_nothing_published_says_what_to_run(
    affinity_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert main(["query", "SELECT 1"]) == 1
    assert "affinity run" in caplog.text


def test_the_command_through_a_pipe(snapshot: Path) -> None:
    """No terminal: the table is DEFAULT_WIDTH wide; --csv and --limit work end to end."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    table = subprocess.run(
        [AFFINITY, "query", ALL_RECS, "--limit", "3"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert len(_data_lines(table)) == 3
    assert max(len(line) for line in table.splitlines()) <= 120
    rows = subprocess.run(
        [AFFINITY, "query", ALL_RECS, "--csv", "--limit", "10"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(rows) == 11  # header + 10
