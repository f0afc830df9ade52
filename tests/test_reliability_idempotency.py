"""Idempotency and determinism of the whole pipeline, with the production training config.

Home A runs the logical date twice; home B runs it once on a shop generated separately
with the same seed. Every published table (``pipeline_runs``: its last row without run id
and timings) and every table of the warehouse's ``marts`` and ``ml`` schemas (without the
stage log) must have the same checksum in all three states.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest
from test_reliability_support import make_shop, published_fingerprint, run_stages

from ml.publish.query import table_checksum

# Run logs, not results: they hold timings and run ids by nature (ml.score_state: one row
# of scoring settings and when they were saved; its per-customer and per-product tables
# are compared).
RUN_LOGS = {"ml.stage_runs", "ml.pipeline_runs", "ml.score_state"}


def warehouse_checksums(home: Path) -> dict[str, tuple[int, str]]:
    """``{schema.table: (rows, checksum)}`` of the marts and the Python steps' outputs."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ('marts', 'ml') and table_type = 'BASE TABLE' order by 1"
        ).fetchall()
        return {t: table_checksum(con, t) for (t,) in tables if t not in RUN_LOGS}
    finally:
        con.close()


@pytest.mark.slow
def test_same_date_twice_and_two_fresh_homes_give_identical_tables(tmp_path: Path) -> None:
    # Two shops generated apart with the same seed: the inputs are equal byte for byte.
    landing_a = make_shop(tmp_path / "landing-a")
    landing_b = make_shop(tmp_path / "landing-b")
    for path in landing_a.iterdir():
        assert path.read_bytes() == (landing_b / path.name).read_bytes(), path.name
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    seconds = {}

    for name, home, landing in (
        ("a-1", home_a, landing_a),
        ("a-2", home_a, landing_a),
        ("b-1", home_b, landing_b),
    ):
        began = time.perf_counter()
        run = run_stages(home, landing, run_id=name, fast_train=False)
        assert run.finished, run.tail()
        seconds[name] = round(time.perf_counter() - began)
        if name == "a-1":
            published_first, warehouse_first = (
                published_fingerprint(home_a),
                warehouse_checksums(home_a),
            )

    published_again, warehouse_again = published_fingerprint(home_a), warehouse_checksums(home_a)
    published_fresh, warehouse_fresh = published_fingerprint(home_b), warehouse_checksums(home_b)
    assert published_again == published_first  # same date twice
    assert published_fresh == published_first  # another home, same inputs and seed
    assert warehouse_again == warehouse_first
    assert warehouse_fresh == warehouse_first
    assert len(published_first) >= 7 and len(warehouse_first) >= 10
    print(
        f"\nidempotency: {len(published_first)} published tables and {len(warehouse_first)} "
        f"warehouse tables identical across runs a-1, a-2 (same home) and b-1 (fresh home); "
        f"run seconds {seconds}"
    )
