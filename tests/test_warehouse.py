"""Warehouse connections (DuckDB's memory cap comes from AFFINITY_DUCKDB_MEMORY_LIMIT) and
the dated ``ml`` partitions."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from ml.warehouse import connect
from ml.warehouse.tables import read_frame, write_partition


def memory_limit_bytes(monkeypatch, limit: str | None) -> int:
    if limit is None:
        monkeypatch.delenv("AFFINITY_DUCKDB_MEMORY_LIMIT", raising=False)
    else:
        monkeypatch.setenv("AFFINITY_DUCKDB_MEMORY_LIMIT", limit)
    with connect() as con:
        # duckdb_settings() reports e.g. '1.8 GiB' (one decimal): compare within 5%.
        value = con.execute(
            "select value from duckdb_settings() where name = 'memory_limit'"
        ).fetchall()[0][0]
    number, unit = value.split()
    scale = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]
    return int(float(number) * scale)


def test_every_connection_is_capped(affinity_home, monkeypatch):
    assert memory_limit_bytes(monkeypatch, "512MB") == pytest.approx(512e6, rel=0.05)
    assert memory_limit_bytes(monkeypatch, "2GB") == pytest.approx(2e9, rel=0.05)
    # The default keeps a whole DAG run (one process) well under the 6 GB budget.
    assert memory_limit_bytes(monkeypatch, None) == pytest.approx(3e9, rel=0.05)


def test_a_bad_limit_is_refused_with_the_variable_named(affinity_home, monkeypatch):
    monkeypatch.setenv("AFFINITY_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="AFFINITY_DUCKDB_MEMORY_LIMIT='lots'"), connect():
        pass


COLUMNS = {"logical_date": "DATE", "customer_id": "VARCHAR", "rank": "INTEGER"}


def _stored(con, day) -> list[tuple]:
    # rowid: the physical order the rows were written in.
    frame = read_frame(
        con, "SELECT customer_id, rank FROM ml.t WHERE logical_date = ? ORDER BY rowid", [day]
    )
    return frame.rows()


def test_a_partition_is_replaced_in_order_from_one_frame_or_presorted_frames(affinity_home):
    day = date(2026, 3, 1)
    rows = pl.DataFrame({"customer_id": ["b", "a", "b", "a"], "rank": [2, 1, 1, 2]})
    ordered = sorted(rows.rows())
    with connect() as con:
        # One frame, sorted by the insert.
        written = write_partition(
            con, "t", rows, day, columns=COLUMNS, order_by="customer_id, rank"
        )
        assert written == 4 and _stored(con, day) == ordered
        # Presorted frames one after another (a generator), sliced 1 row at a time: the
        # same partition, replaced and not appended.
        pieces = (
            pl.DataFrame(ordered[i : i + 3], schema=rows.schema, orient="row") for i in (0, 3)
        )
        written = write_partition(
            con, "t", pieces, day, columns=COLUMNS, order_by="x", presorted=True, chunk_rows=1
        )
        assert written == 4 and _stored(con, day) == ordered
        with pytest.raises(ValueError, match="presorted"):
            write_partition(con, "t", iter([rows]), day, columns=COLUMNS, order_by="rank")
        assert _stored(con, day) == ordered


def _staged_tables(con) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '\\_staged\\_%' ESCAPE '\\'"
        ).fetchall()
    ]


def test_presorted_frames_are_staged_then_moved_and_a_failed_write_keeps_the_old_partition(
    affinity_home,
):
    day = date(2026, 3, 1)
    ordered = [("a", 1), ("a", 2), ("b", 1)]
    schema = {"customer_id": pl.String, "rank": pl.Int64}

    def frames(rows, fail_after: int | None = None):
        for index, row in enumerate(rows):
            if fail_after is not None and index == fail_after:
                raise RuntimeError("scoring failed half way")
            yield pl.DataFrame([row], schema=schema, orient="row")

    with connect() as con:
        # A scratch table left by a killed run (other rows, other columns) is replaced.
        con.execute("CREATE SCHEMA IF NOT EXISTS ml")
        con.execute("CREATE TABLE ml._staged_t AS SELECT 'stale' AS junk")
        write_partition(
            con, "t", frames(ordered), day, columns=COLUMNS, order_by="x", presorted=True
        )
        assert _stored(con, day) == ordered
        assert _staged_tables(con) == []
        # A generator that fails half way: the old partition stays whole, nothing is staged.
        with pytest.raises(RuntimeError, match="half way"):
            write_partition(
                con,
                "t",
                frames([("c", 1), ("c", 2)], fail_after=1),
                day,
                columns=COLUMNS,
                order_by="x",
                presorted=True,
            )
        assert _stored(con, day) == ordered
        assert _staged_tables(con) == []
