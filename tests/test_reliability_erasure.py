"""Erasure at publish time: ml outputs purged, snapshot guarded, no rollback to an erased customer.

Archived snapshots are rewritten without the customer, not deleted (issue 19, finding 2):
there is still something to roll back to, and it does not hold them.

The end-to-end erasure (marts, snapshot, audiences, the next model's index map, the audit
record) is ``test_reliability_privacy.py``'s slow scenario; these are the publish step's
own guarantees on a small staged warehouse.
"""

from __future__ import annotations

from datetime import date

import pytest
from test_publish import stage_outputs

from ml.config import paths
from ml.ingest import ensure_raw_schema
from ml.publish import PublishError, list_snapshots, publish, query, rollback
from ml.publish.erasure import rewrite_snapshots
from ml.warehouse import connect
from ml.warehouse.erasure import erase_customers, erased_rows

DAY = date(2026, 10, 31)
ERASED = "C000003"


def request_erasure(customer_id: str) -> None:
    with connect() as con:
        ensure_raw_schema(con)
        con.execute(
            "INSERT INTO raw.erasure_requests (customer_id, requested_at) VALUES (?, ?)",
            [customer_id, "2026-10-30 09:00:00"],
        )


def test_a_snapshot_holding_an_erased_customer_is_refused():
    stage_outputs("before", 10)
    publish(DAY, run_id="before")
    request_erasure(ERASED)
    # The outputs were built before the request reached them: publishing them would leak.
    with pytest.raises(PublishError, match="erased customers"):
        publish(DAY, run_id="leaky")
    assert query("SELECT count(*) FROM recommendations WHERE customer_id = ?", [ERASED]) == [
        (10,)
    ]  # the current snapshot stays as it was until a clean one replaces it


def test_erasure_purges_the_ml_outputs_and_rewrites_every_archived_snapshot_holding_them():
    for run in ("one", "two"):
        stage_outputs(run, 10)
        publish(DAY, run_id=run)
    with connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS ml")
        con.execute(
            "CREATE TABLE ml.old_scores AS SELECT * FROM (VALUES (?, 1), ('C000004', 2)) "
            "t(customer_id, score)",
            [ERASED],
        )
    assert len(list_snapshots()) == 1
    request_erasure(ERASED)
    with connect() as con:  # what the score stage does first, before the output marts
        assert erase_customers(con, [ERASED]) == {"old_scores": 1}
        con.execute("DELETE FROM outputs.recommendations WHERE customer_id = ?", [ERASED])
        con.execute("DELETE FROM outputs.customer_segments WHERE customer_id = ?", [ERASED])

    publish(DAY, run_id="after")

    with connect() as con:
        assert erased_rows(con, [ERASED], "ml") == {}
        assert con.execute("SELECT count(*) FROM ml.old_scores").fetchone()[0] == 1
    assert query("SELECT count(*) FROM recommendations WHERE customer_id = ?", [ERASED]) == [(0,)]
    # Both archived snapshots held the customer: both are kept, rewritten without them.
    archived = list_snapshots()
    assert len(archived) == 2
    for snapshot in archived:
        with connect(snapshot, read_only=True) as snap:
            assert erased_rows(snap, [ERASED]) == {}
            # Everyone else is still there: 9 of the 10 customers, 10 recommendations each.
            assert snap.execute("SELECT count(*) FROM recommendations").fetchone()[0] == 90
            assert snap.execute("SELECT count(*) FROM pipeline_runs").fetchone()[0] >= 1
    # So a rollback works, and does not bring the customer back.
    rolled_to = rollback()
    assert rolled_to in archived
    assert query("SELECT count(*) FROM recommendations WHERE customer_id = ?", [ERASED]) == [(0,)]
    assert query("SELECT count(DISTINCT customer_id) FROM recommendations") == [(9,)]


def test_the_live_snapshot_and_a_rolled_back_archive_are_rewritten_by_name():
    """A rollback hard-links an archive to the live name: each name loses the customer."""
    for run in ("one", "two"):
        stage_outputs(run, 10)
        publish(DAY, run_id=run)
    rollback()  # live and the newest archive are now one file under two names
    rewritten = rewrite_snapshots([ERASED])
    assert paths().snapshot in rewritten and len(rewritten) == 3
    for snapshot in [*list_snapshots(), paths().snapshot]:
        with connect(snapshot, read_only=True) as snap:
            assert erased_rows(snap, [ERASED]) == {}, snapshot
    assert query("SELECT count(*) FROM recommendations") == [(90,)]
    # Built outside the analysts' folder: nothing but snapshots in published/.
    assert {p.name for p in paths().published.iterdir()} == {"affinity.duckdb", "history"}
    assert rewrite_snapshots([ERASED]) == {}  # idempotent
