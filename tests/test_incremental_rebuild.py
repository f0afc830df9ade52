"""An incremental night publishes exactly what a full rebuild of the same data publishes.

One home runs the declared pipeline (every stage the DAG runs, through the same runner)
on every day of a generated shop but the last; the last day then lands as new files and
the next night runs incrementally (incremental dbt models, only changed customers
scored, the champion kept when the data moved little). The same date is then rebuilt in
full on that home (``full_refresh``: dbt rebuilds every incremental model from raw, every
customer is scored) with the same serving model. Every published table must be equal,
table by table, and so must every mart.

"Same serving model" is part of the contract: a rebuild in a fresh home would train
another model (its history differs), so the comparison holds the model fixed and checks
everything computed from the data.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from test_reliability_support import make_shop, published_fingerprint, run_stages

from ml.datagen.nightly import land_last_day, split_last_day
from ml.publish.query import table_checksum


def marts_checksums(home: Path) -> dict[str, tuple[int, str]]:
    """``{marts.table: (rows, checksum)}`` of every mart of the warehouse."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema = 'marts' and table_type = 'BASE TABLE' order by 1"
        ).fetchall()
        return {t: table_checksum(con, t) for (t,) in tables}
    finally:
        con.close()


def stage_detail(home: Path, day: str, stage: str) -> dict:
    """The ``detail`` the stage recorded for ``day`` in ``ml.stage_runs``."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        row = con.execute(
            "select detail from ml.stage_runs where logical_date = ?::date and stage = ?",
            [day, stage],
        ).fetchone()
    finally:
        con.close()
    assert row is not None, f"no {stage} row in ml.stage_runs for {day}"
    return json.loads(row[0]) if isinstance(row[0], str) else dict(row[0])


def differences(left: dict, right: dict) -> dict[str, tuple]:
    """Tables whose fingerprints differ (or that only one side has)."""
    return {
        name: (left.get(name), right.get(name))
        for name in sorted(set(left) | set(right))
        if left.get(name) != right.get(name)
    }


@pytest.mark.slow
def test_next_day_incremental_equals_full_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever weekday the shop ends on, the night is incremental and the rebuild is asked.
    monkeypatch.setenv("AFFINITY_FULL_REFRESH_WEEKDAY", "never")
    full = make_shop(tmp_path / "shop", customers=400, products=120, days=60)
    landing, last_day_dir = tmp_path / "landing", tmp_path / "last_day"
    last_day = split_last_day(full, landing, last_day_dir)
    day_before = last_day.fromordinal(last_day.toordinal() - 1).isoformat()
    home = tmp_path / "home"

    first = run_stages(home, landing, run_id="first", as_of=day_before)
    assert first.finished, first.tail()
    assert land_last_day(last_day_dir, landing) > 0

    night = run_stages(home, landing, run_id="next-day", as_of=last_day.isoformat())
    assert night.finished, night.tail()
    published_night, marts_night = published_fingerprint(home), marts_checksums(home)
    scored = stage_detail(home, last_day.isoformat(), "recommendations")

    rebuild = run_stages(
        home, landing, run_id="rebuild", as_of=last_day.isoformat(), full_refresh=True
    )
    assert rebuild.finished, rebuild.tail()
    published_full, marts_full = published_fingerprint(home), marts_checksums(home)
    rescored = stage_detail(home, last_day.isoformat(), "recommendations")

    assert len(published_full) >= 8, sorted(published_full)
    assert not differences(published_night, published_full), differences(
        published_night, published_full
    )
    assert not differences(marts_night, marts_full), differences(marts_night, marts_full)
    # The night was really incremental, and the rebuild really was not.
    assert 0 < scored["scored_customers"] < scored["customers"], scored
    assert rescored["scored_customers"] == rescored["customers"], rescored
    print(
        f"\nnext day: {len(published_full)} published tables and {len(marts_full)} marts equal "
        f"to the rebuild; scored {scored['scored_customers']} of {scored['customers']} customers "
        f"({scored['plan']})"
    )
