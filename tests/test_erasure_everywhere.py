"""Erasure everywhere (issue 19, finding 2), step by step on small homes.

* raw: the customer's rows leave ``raw.customers``, ``raw.orders``, ``raw.order_lines`` (of
  their orders), ``raw.events``, ``raw.reviews`` and ``raw.quarantine`` (JSON rows and raw
  rejected lines alike); the request stays as the audit record; ``raw.erasure_audit``
  counts what went, so the manifest still reconciles;
* every other schema's tables (marts, incremental ones included, outputs, ml) lose them
  in the same ingest;
* MLflow: every logged bundle holding them is re-exported without their id, factors and
  purchases, the champion keeps serving (them as strangers).

The whole pipeline, searched end to end, is ``test_reliability_privacy.py``'s slow scenario.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
from test_train_support import AS_OF as TRAIN_AS_OF
from test_train_support import fast_config, synthetic_events, write_warehouse

from ml.config import paths
from ml.ingest import check_manifest, ingest

CUSTOMERS = (
    "customer_id,email,first_name,country,signed_up_at\n"
    "C1,ann@x.example,Ann,GB,2026-01-01 10:00:00\n"
    "C2,bob@x.example,Bob,FR,2026-01-02 10:00:00\n"
    "C3,cy@x.example,Cy,DE,2026-01-03 10:00:00,extra\n"  # rejected by the parser
    "C1,ann@x.example,Ann,GB,2026-01-01 10:00:00\n"  # duplicate_key, holds C1's PII
)
ORDERS = (
    "order_id,customer_id,ordered_at,status\n"
    "O1,C1,2026-02-01 10:00:00,placed\n"
    "O2,C2,2026-02-02 10:00:00,placed\n"
    "O3,C1,2026-02-03 10:00:00,lost\n"  # unknown_order_status: C1's order, quarantined
)
ORDER_LINES = (
    "order_id,line_no,product_id,quantity,unit_price\n"
    "O1,1,P1,2,3.5\n"
    "O2,1,P1,1,3.5\n"
    "O1,2,P1,0,3.5\n"  # zero_quantity on C1's order
    "O3,1,P1,1,3.5\n"  # orphan: C1's quarantined order
)
EVENTS = (
    "event_id,customer_id,session_id,product_id,event_type,occurred_at\n"
    "E1,C1,S1,P1,view,2026-02-01 09:00:00\n"
    "E2,C2,S2,P1,view,2026-02-01 09:00:00\n"
    "E3,,S3,P1,view,2026-02-01 09:00:00\n"
    "E4,C1,S1,P1,teleport,2026-02-01 09:01:00\n"
)
REVIEWS = (
    "review_id,customer_id,product_id,rating,title,body,created_at\n"
    "R1,C1,P1,5,Great,Lovely,2026-02-03\n"
    "R2,C2,P1,4,Good,Fine,2026-02-03\n"
)
PRODUCTS = "product_id,name,price\nP1,Mug,3.5\n"


def write_shop(landing: Path) -> Path:
    landing.mkdir(parents=True, exist_ok=True)
    for name, text in {
        "customers": CUSTOMERS,
        "products": PRODUCTS,
        "orders": ORDERS,
        "order_lines": ORDER_LINES,
        "events": EVENTS,
        "reviews": REVIEWS,
    }.items():
        (landing / f"{name}.csv").write_text(text)
    return landing


def request_erasure(landing: Path, *customer_ids: str) -> None:
    rows = "".join(f"{c},2026-03-01 08:00:00\n" for c in customer_ids)
    (landing / "erasure_requests.csv").write_text("customer_id,requested_at\n" + rows)


def warehouse() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(paths().warehouse), read_only=True)


def places_holding(con: duckdb.DuckDBPyConnection, needles: list[str]) -> dict[str, int]:
    """``{schema.table.column: rows}`` of every text value in the warehouse holding a needle."""
    found = {}
    columns = con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where data_type = 'VARCHAR' and table_catalog = current_database()"
    ).fetchall()
    for schema, table, column in columns:
        condition = " or ".join(f"contains(\"{column}\", '{n}')" for n in needles)
        hits = con.execute(
            f'select count(*) from "{schema}"."{table}" where {condition}'
        ).fetchone()[0]
        if hits:
            found[f"{schema}.{table}.{column}"] = hits
    return found


def test_erasure_removes_the_customer_from_raw_and_keeps_the_request(tmp_path: Path) -> None:
    landing = write_shop(tmp_path / "land")
    ingest(landing)
    con = warehouse()
    try:
        before = places_holding(con, ["C1", "O1", "O3", "ann@"])
        manifest_before = con.execute(
            "select source_file, received_rows, loaded_rows, quarantined_rows "
            "from raw.load_manifest where is_current order by 1"
        ).fetchall()
    finally:
        con.close()
    # C1 is in every raw table and in quarantined rows of four kinds.
    for place in ("customers", "orders", "order_lines", "events", "reviews", "quarantine"):
        assert any(key.startswith(f"raw.{place}.") for key in before), place

    request_erasure(landing, "C1")
    report = ingest(landing)

    assert report.erased_rows == {
        "raw.customers": 1,
        "raw.orders": 1,
        "raw.order_lines": 1,
        "raw.events": 1,
        "raw.reviews": 1,
        "raw.quarantine": 5,  # duplicate customer, order O3, its line, O1's 0-line, event E4
    }
    con = warehouse()
    try:
        # Only the request itself still names the customer: the audit record.
        assert places_holding(con, ["C1", "O1", "O3", "ann@"]) == {
            "raw.erasure_requests.customer_id": 1
        }
        assert [c for (c, *_) in con.execute("describe raw.erasure_requests").fetchall()] == [
            "customer_id",
            "requested_at",
            "_source_file",
            "_source_row",
            "_batch_id",
        ]
        # Everyone else is untouched, C3's rejected line included.
        assert con.execute("select customer_id from raw.customers").fetchall() == [("C2",)]
        assert con.execute(
            "select count(*) from raw.quarantine where contains(raw_values, 'C3')"
        ).fetchone() == (1,)
        # The manifest is as loaded, and still reconciles through the erasure audit.
        assert (
            con.execute(
                "select source_file, received_rows, loaded_rows, quarantined_rows "
                "from raw.load_manifest where is_current and entity <> 'erasure_requests' "
                "order by 1"
            ).fetchall()
            == manifest_before
        )
        check_manifest(con)
        audit = con.execute(
            "select place, sum(erased_rows) from raw.erasure_audit where is_current group by 1"
        ).fetchall()
        assert dict(audit) == {"loaded": 5, "quarantined": 5}
    finally:
        con.close()


def test_a_resent_file_loses_the_customer_again_and_still_reconciles(tmp_path: Path) -> None:
    landing = write_shop(tmp_path / "land")
    request_erasure(landing, "C1")
    ingest(landing)
    # The shop's next export still holds C1 (and one new customer).
    (landing / "customers.csv").write_text(CUSTOMERS + "C4,di@x.example,Di,US,2026-01-04\n")
    report = ingest(landing)
    assert report.erased_rows["raw.customers"] == 1
    con = warehouse()
    try:
        assert sorted(con.execute("select customer_id from raw.customers").fetchall()) == [
            ("C2",),
            ("C4",),
        ]
        check_manifest(con)  # the old version's erasure counts were retired with its rows
        retired = con.execute(
            "select count(*) from raw.erasure_audit where not is_current "
            "and source_file = 'customers.csv'"
        ).fetchone()[0]
        assert retired == 2  # its loaded row and its quarantined duplicate
    finally:
        con.close()


def test_every_schema_loses_the_customer_in_the_same_ingest(tmp_path: Path) -> None:
    landing = write_shop(tmp_path / "land")
    ingest(landing)
    con = duckdb.connect(str(paths().warehouse))
    try:
        for schema, table in (("marts", "fct_events"), ("outputs", "recommendations"), ("ml", "x")):
            con.execute(f"create schema if not exists {schema}")
            con.execute(
                f"create table {schema}.{table} as select * from "
                "(values ('C1', 1), ('C2', 2)) t(customer_id, n)"
            )
        con.execute("create view marts.v as select * from marts.fct_events")
    finally:
        con.close()
    request_erasure(landing, "C1")
    report = ingest(landing)
    assert {"marts.fct_events", "outputs.recommendations", "ml.x"} <= set(report.erased_rows)
    con = warehouse()
    try:
        for relation in ("marts.fct_events", "outputs.recommendations", "ml.x", "marts.v"):
            assert con.execute(f"select customer_id from {relation}").fetchall() == [("C2",)]
    finally:
        con.close()


def _artifact_files() -> list[Path]:
    return [p for p in (paths().mlartifacts).rglob("*") if p.is_file()]


def _files_holding(ids: list[str]) -> list[str]:
    """Model artifacts holding an id: as bytes (UTF-8 / UTF-32, NumPy's) or in a string array."""
    needles = [i.encode(e) for i in ids for e in ("utf-8", "utf-32-le")]
    found = []
    for path in _artifact_files():
        content = path.read_bytes()
        if any(n in content for n in needles):
            found.append(str(path))
        elif path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            if array.dtype.kind in "US" and set(array.astype(str)) & set(ids):
                found.append(str(path))
    return found


def test_registered_models_are_re_exported_without_the_customers(affinity_home: Path) -> None:
    from mlflow import MlflowClient

    from ml.ingest import ensure_raw_schema
    from ml.orchestration.erasure import erase_outside_warehouse
    from ml.serving.model import load_scoring_model
    from ml.train import train
    from ml.train.erasure import CHECKED_TAG, REMOVED_TAG, scrub_registered_models

    write_warehouse(affinity_home, synthetic_events())
    result = train(TRAIN_AS_OF, config=fast_config())
    assert result.decision == "champion"
    erased = ["C0000", "C0001", "C0002"]
    before = load_scoring_model()
    assert set(erased) <= set(before.customer_ids)
    assert _files_holding(erased)

    with duckdb.connect(str(paths().warehouse)) as con:
        ensure_raw_schema(con)
        for customer in erased:
            con.execute(
                "insert into raw.erasure_requests (customer_id, requested_at) values (?, ?)",
                [customer, "2026-06-30 08:00:00"],
            )
    summary = erase_outside_warehouse()

    assert summary["model_versions_scrubbed"] == [f"{result.model_name}/{result.model_version}"]
    assert _files_holding(erased) == []
    after = load_scoring_model()  # the champion, as the next scoring loads it
    assert after.version == before.version
    assert not set(erased) & set(after.customer_ids)
    assert len(after.customer_ids) == len(before.customer_ids) - 3 == after.user_factors.shape[0]
    # Everyone else keeps their factors row for row.
    kept = before.customer_rows(after.customer_ids)
    assert np.array_equal(before.user_factors[kept], after.user_factors)
    client = MlflowClient(paths().mlflow_tracking_uri)
    tags = client.get_model_version(result.model_name, result.model_version).tags
    assert tags[REMOVED_TAG] == "3"
    # Checked once per set of requests: a second call opens nothing.
    again = scrub_registered_models(erased)
    assert again.checked == 0 and again.skipped == 1
    logged = client.search_logged_models([result.experiment_id])
    assert all(m.tags.get(CHECKED_TAG) for m in logged)
