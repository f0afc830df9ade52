"""Warehouse connections: DuckDB's memory cap comes from AFFINITY_DUCKDB_MEMORY_LIMIT."""

from __future__ import annotations

import pytest

from ml.warehouse import connect


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
