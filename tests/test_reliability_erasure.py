"""Erasure at publish time: ml outputs purged, snapshot guarded, no rollback to an erased customer.

The end-to-end erasure (marts, snapshot, audiences, the next model's index map, the audit
record) is ``test_reliability_privacy.py``'s slow scenario; these are the publish step's
own guarantees on a small staged warehouse.
"""

from __future__ import annotations

from datetime import date

import pytest
from test_publish import stage_outputs

from ml.ingest import ensure_raw_schema
from ml.publish import PublishError, list_snapshots, publish, query, rollback
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


def test_erasure_purges_the_ml_outputs_and_every_archived_snapshot_holding_the_customer():
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
    # Both archived snapshots held the customer: neither is left to roll back to.
    assert list_snapshots() == []
    with pytest.raises(FileNotFoundError):
        rollback()
