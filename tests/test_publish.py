"""The analyst snapshot: atomic swap under concurrent readers, history, rollback, PII guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from ml.config import paths
from ml.publish import PublishError, list_snapshots, publish, query, rollback, snapshot_checksums
from ml.publish.runs import PIPELINE_RUNS
from ml.warehouse import connect

DAY = date(2026, 10, 31)


def stage_outputs(run: str, customers: int) -> None:
    """Fill the warehouse `outputs` schema the way the dbt output marts would."""
    with connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS outputs")
        con.execute(
            "CREATE OR REPLACE TABLE outputs.recommendations AS SELECT "
            "'C' || lpad(CAST(c AS VARCHAR), 6, '0') AS customer_id, CAST(r AS INTEGER) AS rank, "
            "'P' || CAST((c * 7 + r) % 500 AS VARCHAR) AS product_id, 'a product' AS product_name, "
            "1.0 / r AS score, 'because you bought P1' AS reason, 'P1' AS reason_product_id, "
            "'als' AS model_name, '3' AS model_version, ? AS batch "
            "FROM range(?) AS c(c), range(1, 11) AS r(r)",
            [run, customers],
        )
        con.execute(
            "CREATE OR REPLACE TABLE outputs.customer_segments AS SELECT "
            "'C' || lpad(CAST(c AS VARCHAR), 6, '0') AS customer_id, 'Champions' AS rfm_segment, "
            "CAST(c % 4 AS INTEGER) AS cluster_id, 'recent frequent high spenders' AS cluster_name, "
            "? AS batch FROM range(?) AS c(c)",
            [run, customers],
        )


READER = r"""
import json, sys, time
from pathlib import Path
from ml.warehouse import connect

snapshot, stop = sys.argv[1], Path(sys.argv[2])
reads = errors = inconsistent = 0
messages, runs = [], set()
deadline = time.monotonic() + 120
while (not stop.exists() or reads < 3) and time.monotonic() < deadline:
    try:
        with connect(snapshot, read_only=True) as con:
            run_id, counts = con.execute(
                "SELECT run_id, row_counts FROM pipeline_runs ORDER BY finished_at DESC LIMIT 1"
            ).fetchone()
            time.sleep(0.005)  # widen the window for a swap during the read
            for table, expected in sorted(dict(counts).items()):
                actual, batches = con.execute(
                    f"SELECT count(*), list(DISTINCT batch) FROM {table}"
                ).fetchone()
                if actual != expected or batches != [run_id]:
                    inconsistent += 1
                    messages.append(f"{table}: {actual} vs {expected}, {batches} vs {run_id}")
            runs.add(run_id)
        reads += 1
    except Exception as exc:
        errors += 1
        messages.append(repr(exc)[:300])
print(json.dumps({"reads": reads, "errors": errors, "inconsistent": inconsistent,
                  "runs": sorted(runs), "messages": messages[:5]}))
"""


def test_publish_writes_a_consistent_snapshot_and_query_reads_it():
    stage_outputs("run-1", 30)
    report = publish(DAY, run_id="run-1", stage_seconds={"ingest": 1.5})
    assert report.snapshot == paths().snapshot and report.snapshot.exists()
    assert report.row_counts == {"customer_segments": 30, "recommendations": 300}
    rows = query(
        f"SELECT run_id, logical_date, recommendations_rows, row_counts['customer_segments'], "
        f"stage_seconds['ingest'], finished_at IS NOT NULL FROM {PIPELINE_RUNS}"
    )
    assert rows == [("run-1", DAY, 300, 30, 1.5, True)]
    assert query("SELECT count(*) FROM recommendations") == [(300,)]
    # Nothing but the snapshot (no building file, no WAL) is left in published/.
    leftovers = {p.name for p in paths().published.iterdir()} - {"affinity.duckdb", "history"}
    assert leftovers == set()


def test_republishing_the_same_data_gives_identical_checksums():
    stage_outputs("same", 40)
    publish(DAY, run_id="first")
    first = snapshot_checksums()
    publish(DAY, run_id="second")
    second = snapshot_checksums()
    first.pop(PIPELINE_RUNS), second.pop(PIPELINE_RUNS)  # run ids and times differ
    assert first == second
    assert query(f"SELECT run_id FROM {PIPELINE_RUNS} ORDER BY finished_at") == [
        ("first",),
        ("second",),
    ]


def test_previous_snapshots_are_kept_and_rollback_restores_one():
    for i in range(4):
        stage_outputs(f"run-{i}", 10 + i)
        publish(DAY, run_id=f"run-{i}", keep=2)
    assert len(list_snapshots()) == 2
    assert query("SELECT count(*) FROM customer_segments") == [(13,)]
    restored = rollback()
    assert query("SELECT count(*) FROM customer_segments") == [(12,)]
    assert query(f"SELECT max_by(run_id, finished_at) FROM {PIPELINE_RUNS}") == [("run-2",)]
    assert restored in list_snapshots()


def test_a_snapshot_with_pii_is_refused_and_the_current_one_stays():
    stage_outputs("clean", 10)
    publish(DAY, run_id="clean")
    before = snapshot_checksums()
    with connect() as con:
        con.execute(
            "CREATE TABLE outputs.leaky AS SELECT 'C1' AS customer_id, 'ann@example.com' AS contact"
        )
    with pytest.raises(PublishError, match="e-mail-like"):
        publish(DAY, run_id="leaky")
    with connect() as con:
        con.execute("DROP TABLE outputs.leaky")
        con.execute("CREATE TABLE outputs.leaky AS SELECT 'C1' AS customer_id, 'Ann' AS first_name")
    with pytest.raises(PublishError, match="PII column"):
        publish(DAY, run_id="leaky")
    assert snapshot_checksums() == before
    assert not list(paths().published.glob(".building-*"))


def test_query_without_a_snapshot_says_what_to_do():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        query("SELECT 1")


def test_readers_see_whole_snapshots_during_publishes(tmp_path: Path):
    stage_outputs("run-0", 200)
    publish(DAY, run_id="run-0")
    stop = tmp_path / "stop"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(paths().snapshot), str(stop)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
        )
        for _ in range(2)
    ]
    try:
        time.sleep(1.0)  # readers connected before the first swap
        for i in range(1, 7):
            # Sizes differ between runs, so a mixed read would show in the counts.
            stage_outputs(f"run-{i}", 200 + 150 * (i % 2))
            publish(DAY, run_id=f"run-{i}")
            time.sleep(0.1)
    finally:
        stop.touch()
        outputs = [reader.communicate(timeout=150) for reader in readers]
    for (stdout, stderr), reader in zip(outputs, readers, strict=True):
        assert reader.returncode == 0, stderr
        result = json.loads(stdout.strip().splitlines()[-1])
        assert result["errors"] == 0, result["messages"]
        assert result["inconsistent"] == 0, result["messages"]
        assert result["reads"] >= 3
        assert len(result["runs"]) >= 2, result  # the readers saw more than one snapshot
