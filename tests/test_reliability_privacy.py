"""Privacy: no input PII past staging, erasure everywhere, opt-out, small-group suppression.

The slow scenario runs the pipeline's task bodies twice on a shop whose customers carry
canary PII (first names ``Zqfn*``, e-mails ``*@pii-canary.test``): once as is, then after an
``erasure_requests`` file names three customers who were everywhere (recommendations,
affinity audiences, the model's index map). Everything the home holds besides the raw
input is then scanned for the canaries.

Related checks elsewhere (not repeated here): ``tests/test_dbt_project.py`` (no PII column
past staging, salted e-mail hash, the prod target refusing to run without
``AFFINITY_PII_SALT``), ``tests/test_train.py`` (no PII in the artifacts of a training).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from test_reliability_support import (
    AS_OF,
    index_map_files,
    index_map_ids,
    make_shop,
    run_stages,
    scan_duckdb,
    scan_file,
    scan_sqlite,
    search_home,
    snapshot_path,
)
from test_score_support import LOGICAL_DATE, build_marts, fit_model

from ml.serving.clusters import suppress_small_groups
from ml.serving.config import SegmentConfig
from ml.serving.segments import build_segments
from ml.warehouse import connect
from ml.warehouse.erasure import erased_rows
from ml.warehouse.tables import read_frame

# --------------------------------------------------------------------------- fast checks


@pytest.fixture
def marts_and_model():
    frames = build_marts()  # every second customer opted in to marketing
    return frames, fit_model(frames)


def test_affinity_audiences_hold_only_opted_in_customers(marts_and_model):
    frames, model = marts_and_model
    build_segments(LOGICAL_DATE, config=SegmentConfig(k_max=4, audience_size=40), model=model)
    with connect() as con:
        audiences = read_frame(con, "SELECT DISTINCT customer_id FROM ml.affinity_audiences")
        best = read_frame(con, "SELECT customer_id FROM ml.customer_affinity")
    customers = frames["dim_customers"]
    opted_out = set(customers.filter(~pl.col("marketing_opt_in"))["customer_id"])
    assert audiences.height > 0
    assert not set(audiences["customer_id"]) & opted_out
    # The top category is analysis, not contact: opted-out customers keep theirs.
    assert set(best["customer_id"]) & opted_out


def test_cluster_profiles_suppress_groups_below_the_minimum(marts_and_model):
    frames, model = marts_and_model
    minimum = 70  # of 240 customers: some clusters fall below, some do not
    build_segments(
        LOGICAL_DATE,
        config=SegmentConfig(k_min=3, k_max=5, min_group_size=minimum),
        model=model,
    )
    with connect() as con:
        profiles = read_frame(con, "SELECT * FROM ml.cluster_profiles")
        sizes = dict(
            con.execute(
                "SELECT cluster_id, count(*) FROM ml.customer_clusters GROUP BY 1"
            ).fetchall()
        )
    suppressed = profiles.filter(pl.col("customers").is_null())
    shown = profiles.filter(pl.col("customers").is_not_null())
    assert suppressed.height and shown.height, sizes
    assert all(sizes[c] < minimum for c in suppressed["cluster_id"])
    assert all(sizes[c] >= minimum for c in shown["cluster_id"])
    for column in ("share", "mean_recency_days", "mean_monetary", "top_categories"):
        assert suppressed[column].null_count() == suppressed.height, column
    assert suppressed["cluster_name"].null_count() == 0  # customers can still be told apart


def test_suppression_default_is_fifty():
    assert SegmentConfig().min_group_size == 50
    profiles = pl.DataFrame(
        {
            "cluster_id": [0, 1],
            "cluster_name": ["a", "b"],
            "customers": [50, 49],
            "share": [0.5, 0.49],
            "mean_monetary": [10.0, 20.0],
            "top_categories": ["x", "y"],
        }
    )
    out = suppress_small_groups(profiles, SegmentConfig().min_group_size)
    assert out.row(0) == profiles.row(0)
    assert out.row(1) == (1, "b", None, None, None, None)


def test_the_pii_scanners_find_a_planted_canary(tmp_path: Path):
    # NumPy stores strings as UTF-32: a byte search for ASCII alone would miss them.
    np.save(tmp_path / "ids.npy", np.array(["C1", "Zqfn00042"]))
    (tmp_path / "params.json").write_text('{"owner": "zq.00042@pii-canary.test"}')
    (tmp_path / "clean.json").write_text('{"owner": "C1"}')
    assert scan_file(tmp_path / "ids.npy")
    assert scan_file(tmp_path / "params.json")
    assert scan_file(tmp_path / "clean.json") == []
    db = tmp_path / "tags.db"
    con = sqlite3.connect(db)
    con.execute("create table tags (key text, value text)")
    con.execute("insert into tags values ('note', 'for ZQFN00042')")
    con.commit()
    con.close()
    assert scan_sqlite(db)


# --------------------------------------------------------------------------- the scenario


@dataclass
class ErasureScenario:
    home: Path
    landing: Path
    erased: list[str]
    snapshot_before: dict[str, int]  # rows of the erased customers per table, before
    index_maps_before: set[Path]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ErasureScenario:
    root = tmp_path_factory.mktemp("privacy")
    home, landing = root / "home", make_shop(root / "landing")
    first = run_stages(home, landing, run_id="before-erasure")
    assert first.finished, first.tail()

    con = duckdb.connect(str(snapshot_path(home)), read_only=True)
    try:
        in_audiences = {
            r[0] for r in con.execute("select customer_id from affinity_audiences").fetchall()
        }
        recommended = {
            r[0] for r in con.execute("select customer_id from recommendations").fetchall()
        }
    finally:
        con.close()
    maps_before = index_map_files(home)
    in_model = set.union(*(index_map_ids(p) for p in maps_before))
    # Customers who are everywhere: the erasure has something to remove in every place.
    erased = sorted(in_audiences & recommended & in_model)[:3]
    assert len(erased) == 3
    con = duckdb.connect(str(snapshot_path(home)), read_only=True)
    try:
        before = erased_rows(con, erased)
    finally:
        con.close()

    (landing / "erasure_requests.csv").write_text(
        "customer_id,requested_at\n" + "".join(f"{c},{AS_OF} 08:00:00\n" for c in erased)
    )
    second = run_stages(home, landing, run_id="after-erasure")
    assert second.finished, second.tail()
    return ErasureScenario(home, landing, erased, before, maps_before)


@pytest.mark.slow
def test_erased_customers_leave_marts_snapshot_audiences_and_the_next_model(
    scenario: ErasureScenario,
):
    s = scenario
    # They were in recommendations, audiences, segments, features before...
    assert {"recommendations", "affinity_audiences", "customer_segments"} <= set(s.snapshot_before)

    # ... and are in no published table now.
    con = duckdb.connect(str(snapshot_path(s.home)), read_only=True)
    try:
        assert erased_rows(con, s.erased) == {}
    finally:
        con.close()
    # Nor in any mart, dbt output or Python output of the warehouse; the request is kept.
    con = duckdb.connect(str(s.home / "warehouse.duckdb"), read_only=True)
    try:
        for schema in ("intermediate", "marts", "outputs", "ml"):
            assert erased_rows(con, s.erased, schema) == {}, schema
        requests = con.execute(
            "select customer_id, requested_at::varchar from raw.erasure_requests order by 1"
        ).fetchall()
    finally:
        con.close()
    assert requests == [(c, f"{AS_OF} 08:00:00") for c in s.erased]

    # The next model never saw them: absent from every index map it logged.
    new_maps = index_map_files(s.home) - s.index_maps_before
    assert new_maps, "the second run logged no model"
    for path in new_maps:
        assert not index_map_ids(path) & set(s.erased), path

    # A rollback cannot bring them back: no archived snapshot holds them any more.
    for archived in sorted((s.home / "published" / "history").glob("*.duckdb")):
        con = duckdb.connect(str(archived), read_only=True)
        try:
            assert erased_rows(con, s.erased) == {}, archived
        finally:
            con.close()


def erased_needles(s: ErasureScenario) -> list[str]:
    """What identifies the erased customers: ids, e-mails, names, their order ids."""
    customers = pl.read_parquet(s.landing / "customers.parquet").filter(
        pl.col("customer_id").is_in(s.erased)
    )
    orders = pl.read_parquet(s.landing / "orders.parquet").filter(
        pl.col("customer_id").is_in(s.erased)
    )
    return sorted({*s.erased, *customers["email"], *customers["first_name"], *orders["order_id"]})


@pytest.mark.slow
def test_the_erased_customers_are_nowhere_but_in_their_requests(scenario: ErasureScenario):
    """Every table of every schema, every snapshot, every model artifact: 0 hits (issue 19)."""
    s = scenario
    needles = erased_needles(s)
    assert len(needles) > 3 * 3  # ids, e-mails, names and at least one order each
    found = search_home(s.home, needles)
    # The search is not blind: a customer who was not erased is found in the same places.
    kept = sorted(set(index_map_ids(next(iter(index_map_files(s.home))))) - set(s.erased))[:1]
    control = search_home(s.home, kept)
    for store in ("warehouse", "snapshot affinity.duckdb", "mlartifacts"):
        assert sum(control[store].values()) > 0, store

    lines = ["| store | places searched | places holding an erased customer |", "|---|---|---|"]
    for store, places in found.items():
        holding = sorted(place for place, hits in places.items() if hits)
        lines.append(f"| {store} | {len(places)} | {len(holding)} {holding or ''} |")
    print("\n".join(["", f"erased: {len(s.erased)} customers, {len(needles)} needles", *lines]))
    leaks = {store: {p: n for p, n in places.items() if n} for store, places in found.items()}
    assert {store: places for store, places in leaks.items() if places} == {}
    # The request itself is kept: the audit record.
    con = duckdb.connect(str(s.home / "warehouse.duckdb"), read_only=True)
    try:
        kept_requests = con.execute("select count(*) from raw.erasure_requests").fetchone()[0]
    finally:
        con.close()
    assert kept_requests == len(s.erased)


@pytest.mark.slow
def test_no_input_pii_in_any_published_table_mart_or_mlflow_artifact(scenario: ErasureScenario):
    home = scenario.home
    # The scanner is not blind: the raw input does hold the canaries.
    assert any("raw.customers.email" in hit for hit in scan_duckdb(home / "warehouse.duckdb"))

    leaks = scan_duckdb(snapshot_path(home))
    # Every schema past staging (raw and staging hold PII by contract).
    leaks += scan_duckdb(home / "warehouse.duckdb", skip_schemas=("raw", "staging"))
    artifacts = [p for p in (home / "mlartifacts").rglob("*") if p.is_file()]
    assert any(p.name == "customer_ids.npy" for p in artifacts)
    others = [home / "mlflow.db"] + [
        p
        for folder in ("published", "dbt")
        for p in (home / folder).rglob("*")
        if p.is_file() and p.suffix != ".lock"
    ]
    for path in artifacts + others:
        leaks += scan_file(path)
    leaks += scan_sqlite(home / "mlflow.db")  # params, tags, inputs, model versions...
    assert leaks == []


@pytest.mark.slow
def test_opted_out_customers_are_in_no_published_audience(scenario: ErasureScenario):
    customers = pl.read_parquet(scenario.landing / "customers.parquet")
    opted_out = set(customers.filter(~pl.col("marketing_opt_in"))["customer_id"])
    con = duckdb.connect(str(snapshot_path(scenario.home)), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute("select table_name from duckdb_tables()").fetchall()
            if "audience" in r[0]
        ]
        # The pipeline's campaigns stage launched the shop's campaigns due after the date.
        assert {"affinity_audiences", "campaign_audiences"} <= set(tables)
        for table in tables:
            members = {
                r[0] for r in con.execute(f"select distinct customer_id from {table}").fetchall()
            }
            assert members, f"{table} is empty: the opt-out check below would prove nothing"
            assert opted_out, "the shop has no opted-out customer: nothing to check"
            assert not members & opted_out, table
    finally:
        con.close()


@pytest.mark.slow
def test_published_cluster_profiles_suppress_groups_under_fifty(scenario: ErasureScenario):
    con = duckdb.connect(str(snapshot_path(scenario.home)), read_only=True)
    try:
        rows = con.execute(
            "select p.cluster_id, p.customers, p.mean_monetary, s.n from cluster_profiles p "
            "join (select cluster_id, count(*) n from customer_segments group by 1) s "
            "using (cluster_id)"
        ).fetchall()
    finally:
        con.close()
    assert rows
    for cluster_id, customers, mean_monetary, size in rows:
        if size < 50:
            assert customers is None and mean_monetary is None, cluster_id
        else:
            assert customers == size, cluster_id
