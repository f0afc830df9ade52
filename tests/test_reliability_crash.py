"""Crash safety: SIGKILL at every stage boundary, inside the ingest batch and inside publish.

The pipeline's task bodies run in a child process that SIGKILLs itself at a named point
(see ``test_reliability_support.DRIVER``). After every kill the analyst snapshot must be
the previous complete one (same file, opens and reads), except after the rename of a
publish, where it is the new complete one; a re-run resumes where the run died (as an
Airflow retry of the killed task does) and the final published tables are identical to
those of an uninterrupted run. A kill of a real ``affinity run`` (the Airflow DAG) is in
``test_reliability_concurrency.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest
from corpus.build import raw_state
from test_reliability_support import (
    AS_OF,
    last_run_id,
    make_shop,
    published_fingerprint,
    run_stages,
    snapshot_opens_and_reads,
    snapshot_path,
)

# (stage the run starts at, where it is killed). Each run resumes at the stage the
# previous one died in or after, so every kill point is also a recovery point.
KILL_SEQUENCE = (
    ("ingest", "after:ingest"),
    ("ingest", "after:dbt_features"),
    ("dbt_features", "after:train"),
    ("train", "after:score"),
    ("score", "after:campaigns"),
    ("campaigns", "after:dbt_outputs"),
    ("dbt_outputs", "publish:mid_copy"),
    ("publish", "publish:before_swap"),
    ("publish", "publish:after_swap"),
)


def test_sigkill_inside_the_ingest_transaction_leaves_the_warehouse_as_before(
    tmp_path: Path,
) -> None:
    from ml.datagen import generate_shop

    home, landing = tmp_path / "home", tmp_path / "landing"
    generate_shop(landing, customers=150, products=60, days=30, seed=3)
    first = run_stages(home, landing, run_id="v1", stop_after="ingest")
    assert first.finished, first.tail()
    before = raw_state(home / "warehouse.duckdb")

    # New versions of every file (with bad rows), killed after 3 files of the batch.
    generate_shop(landing, customers=160, products=60, days=30, seed=4, defect_rate=0.02)
    killed = run_stages(home, landing, run_id="v2", stop_after="ingest", kill_at="ingest:mid_batch")
    assert killed.killed and "KILLED-AT ingest:mid_batch" in killed.stdout, killed.tail()
    assert raw_state(home / "warehouse.duckdb") == before  # nothing of the batch remains

    again = run_stages(home, landing, run_id="v2", stop_after="ingest")
    assert again.finished, again.tail()
    fresh = tmp_path / "fresh"
    clean = run_stages(fresh, landing, run_id="v2", stop_after="ingest")
    assert clean.finished, clean.tail()
    assert _raw_content(home) == _raw_content(fresh)


def test_publish_removes_what_a_killed_publish_left_and_records_its_live_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The publish-side repairs the slow test relies on, on a small staged warehouse."""
    from test_publish import DAY, stage_outputs

    import ml.publish.snapshot
    from ml.config import paths
    from ml.publish import publish, query
    from ml.publish.runs import PIPELINE_RUNS

    stage_outputs("one", 10)
    publish(DAY, run_id="one")
    # A publish killed while copying leaves its half-built file (and WAL) behind.
    for leftover in (".building-x-1.duckdb", ".building-x-1.duckdb.wal", ".rollback-1.duckdb"):
        (paths().published / leftover).write_bytes(b"half a snapshot")

    # A publish killed after its rename: live for analysts, missing from the run history.
    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed after the swap")

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(ml.publish.snapshot, "append_run", crash)
        publish(DAY, run_id="two")
    assert query(f"SELECT max_by(run_id, finished_at) FROM {PIPELINE_RUNS}") == [("two",)]

    publish(DAY, run_id="three")
    assert {p.name for p in paths().published.iterdir()} == {"affinity.duckdb", "history"}
    runs = query(f"SELECT run_id FROM {PIPELINE_RUNS} ORDER BY finished_at")
    assert [r for (r,) in runs] == ["one", "two", "three"]


def published_counts(home: Path) -> dict[str, int]:
    """Rows of every published table as an analyst reads them (the run history aside)."""
    counts = snapshot_opens_and_reads(home)
    counts.pop("pipeline_runs")
    return counts


def _raw_content(home: Path) -> dict[str, object]:
    """Entity tables and quarantine as checksums, and the current manifest entries."""
    state = raw_state(home / "warehouse.duckdb")
    state.pop("load_manifest")  # its history differs by design (v1 entries are kept)
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        state["current manifest"] = con.execute(
            "select source_file, checksum, received_rows, loaded_rows, quarantined_rows "
            "from raw.load_manifest where is_current order by 1"
        ).fetchall()
    finally:
        con.close()
    return state


@pytest.mark.slow
def test_sigkill_at_every_stage_boundary_and_mid_publish(tmp_path: Path) -> None:
    home, landing = tmp_path / "home", make_shop(tmp_path / "landing")
    started = time.perf_counter()
    uninterrupted = run_stages(home, landing, run_id="uninterrupted")
    assert uninterrupted.finished, uninterrupted.tail()
    reference = published_fingerprint(home)
    reference_counts = published_counts(home)
    figures = [f"uninterrupted run {time.perf_counter() - started:.0f}s"]

    for number, (start, kill_at) in enumerate(KILL_SEQUENCE, 1):
        previous_inode = snapshot_path(home).stat().st_ino
        previous_run = last_run_id(home)
        run_id = f"killed-{number}"
        began = time.perf_counter()
        run = run_stages(home, landing, run_id=run_id, start=start, kill_at=kill_at)
        assert run.killed and f"KILLED-AT {kill_at}" in run.stdout, (kill_at, run.tail())

        # A publish builds outside the analysts' folder: whatever a kill leaves is there.
        leftovers = sorted(p.name for p in (home / "publish-work").glob(".building-*"))
        assert {p.name for p in (home / "published").iterdir()} == {"affinity.duckdb", "history"}
        if kill_at == "publish:after_swap":
            # Renamed into place before the kill: the new snapshot is complete and live.
            assert last_run_id(home) == run_id
        else:
            assert snapshot_path(home).stat().st_ino == previous_inode, kill_at
            assert last_run_id(home) == previous_run, kill_at
        if kill_at in ("publish:mid_copy", "publish:before_swap"):
            assert leftovers, "the kill did not land inside the publish"
        # Whatever the kill point, analysts read a whole snapshot with the reference content.
        assert published_counts(home) == reference_counts, kill_at
        assert published_fingerprint(home) == reference, kill_at
        figures.append(
            f"kill {number} at {kill_at} (started at {start}, "
            f"{time.perf_counter() - began:.0f}s): snapshot "
            f"{'new complete' if kill_at == 'publish:after_swap' else 'previous complete'}"
        )

    # The last run resumes in publish and completes: same tables as without any crash.
    resumed = run_stages(home, landing, run_id="resumed", start="publish")
    assert resumed.finished, resumed.tail()
    assert published_fingerprint(home) == reference
    # The leftovers of the killed publishes were cleaned up; analysts see snapshots only.
    assert {p.name for p in (home / "published").iterdir()} == {"affinity.duckdb", "history"}
    assert list((home / "publish-work").iterdir()) == []

    # Re-running the whole date after all that completes with the same tables again.
    rerun = run_stages(home, landing, run_id="rerun")
    assert rerun.finished, rerun.tail()
    assert published_fingerprint(home) == reference
    con = duckdb.connect(str(snapshot_path(home)), read_only=True)
    try:
        runs = con.execute("select run_id from pipeline_runs order by finished_at").fetchall()
    finally:
        con.close()
    assert [r for (r,) in runs] == [
        "uninterrupted",
        f"killed-{len(KILL_SEQUENCE)}",
        "resumed",
        "rerun",
    ]
    figures.append(f"{len(KILL_SEQUENCE)} kills, resume and full re-run identical; as of {AS_OF}")
    figures.append(f"total {time.perf_counter() - started:.0f}s")
    print("\n" + "\n".join(figures))
