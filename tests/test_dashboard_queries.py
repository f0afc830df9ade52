"""The dashboard's figures, without a browser: each page's queries on a known snapshot,
reading while a publish swaps the file, and the model history from a real MLflow store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest
from snapshot_support import write_snapshot

from ml.config import paths
from ml.dashboard import queries
from ml.dashboard.model_history import (
    EXPERIMENT_NAME,
    MODEL_NAME,
    metrics_long,
    model_history,
)
from ml.dashboard.server import streamlit_command
from ml.dashboard.snapshot import open_snapshot, snapshot_version


@pytest.fixture
def snapshot(affinity_home: Path) -> Path:
    return write_snapshot(paths().snapshot)


def test_latest_run_and_the_serving_model(snapshot: Path) -> None:
    with open_snapshot() as con:
        run = queries.latest_run(con)
    assert (run.run_id, str(run.logical_date)) == ("run-2", "2026-10-31")
    assert (run.serving_model, run.serving_version) == ("affinity-recommender", "2")


def test_health_page(snapshot: Path) -> None:
    with open_snapshot() as con:
        page = queries.health_page(con)
    assert page.runs["run_id"].tolist() == ["run-2", "run-1"]  # newest first
    # Rows per table of the latest run only (run-1 also had old_table).
    assert dict(zip(page.table_rows["table_name"], page.table_rows["rows"], strict=True)) == {
        "customer_segments": 30,
        "recommendations": 90,
    }
    stages = page.stage_seconds.groupby("run_id")["seconds"].sum().to_dict()
    assert stages == {"run-1": 12.0, "run-2": 23.0}
    assert page.quarantine is None  # the table is optional


def test_quarantine_by_rule_when_the_snapshot_has_it(affinity_home: Path) -> None:
    write_snapshot(paths().snapshot, quarantine=True)
    with open_snapshot() as con:
        quarantine = queries.health_page(con).quarantine
    assert quarantine.to_dict("records") == [
        {"entity": "orders", "rule": "bad_number", "rows": 5},
        {"entity": "events", "rule": "unknown_event_type", "rows": 4},
    ]


def test_segments_page(snapshot: Path) -> None:
    with open_snapshot() as con:
        page = queries.segments_page(con)
    assert page.customers == 30
    assert dict(zip(page.rfm_sizes["rfm_segment"], page.rfm_sizes["customers"], strict=True)) == {
        "no purchases yet": 10,
        "Champions": 10,
        "At Risk": 10,
    }
    grid = {(r.r_score, r.f_score): r.customers for r in page.rfm_grid.itertuples()}
    # Customers 11-20: r 5; 21-30: r 1; f = (c % 2) + 1.
    assert grid == {(5, 1): 5, (5, 2): 5, (1, 1): 5, (1, 2): 5}
    assert page.clusters["cluster_name"].tolist() == ["regular spenders", "no purchases yet"]
    assert page.clusters["customers"].isna().tolist() == [False, True]  # withheld figures
    assert page.clusters["description"].iloc[1].startswith("Customers without any order")


def test_customer_page(snapshot: Path) -> None:
    with open_snapshot() as con:
        assert queries.default_customer(con) == "C0000001"
        page = queries.customer_page(con, " C0000004 ")
        missing = queries.customer_page(con, "C9999999")
    assert page.found and page.customer_id == "C0000004"
    assert page.recommendations["rank"].tolist() == [1, 2, 3]
    assert page.recommendations["product_name"].tolist() == ["Product 4", "Product 5", "Product 6"]
    assert page.segment["rfm_segment"] is None and page.segment["cluster_name"] == (
        "no purchases yet"
    )
    assert page.campaigns.to_dict("records")[0]["group"] == "treatment"
    assert page.campaigns["campaign_name"].tolist() == ["Autumn picks"]
    assert not missing.found


def test_products_page(snapshot: Path) -> None:
    with open_snapshot() as con:
        default = queries.products_page(con)
        chosen = queries.products_page(con, "P000003")
        unknown = queries.products_page(con, "P999999")
    # Each product is recommended to 15 customers: ties break on the product id.
    assert default.most_recommended["customers"].tolist()[:2] == [15, 15]
    assert default.product_id == "P000001"
    assert chosen.product_id == "P000003"
    assert chosen.similar["similar_product_name"].tolist() == ["Product 4", "Product 5"]
    assert unknown.product_id == "P000001"
    assert chosen.review_insights is None


def test_campaigns_page(snapshot: Path) -> None:
    with open_snapshot() as con:
        page = queries.campaigns_page(con)
    audience = page.audiences.to_dict("records")[0]
    assert (audience["treatment"], audience["control"], audience["audience"]) == (8, 4, 12)
    assert page.messages["sample_message"].tolist() == ["Hi {{first_name}}, look at #1"]
    assert page.results["conclusion"].tolist() == ["sample too small"]


def test_reading_never_holds_the_file_and_follows_a_swap(snapshot: Path) -> None:
    """A publish replaces the file (os.replace): the next read sees the new one."""
    before = snapshot_version()
    with open_snapshot() as con:
        assert queries.latest_run(con).run_id == "run-2"
    held = [os.readlink(fd) for fd in Path("/proc/self/fd").iterdir() if fd.exists()]
    assert str(snapshot) not in held  # closed after the page's queries

    building = snapshot.with_name(".building.duckdb")
    shutil.copyfile(snapshot, building)
    with duckdb.connect(str(building)) as con:
        con.execute(
            "INSERT INTO pipeline_runs SELECT 'run-3', logical_date + 1, model_name, "
            "model_version, recommendations_rows, customer_segments_rows, row_counts, "
            "stage_seconds, total_seconds, started_at, finished_at + INTERVAL 1 DAY "
            "FROM pipeline_runs WHERE run_id = 'run-2'"
        )
    os.replace(building, snapshot)
    after = snapshot_version()
    assert after.key != before.key  # the cache key changes with the swap
    with open_snapshot() as con:
        assert queries.latest_run(con).run_id == "run-3"


def test_nothing_published_yet(affinity_home: Path) -> None:
    assert snapshot_version() is None
    with pytest.raises(FileNotFoundError, match="affinity run"), open_snapshot():
        pass


def test_model_history_reads_mlflow_and_never_creates_it(affinity_home: Path) -> None:
    uri = f"sqlite:///{affinity_home / 'mlflow.db'}"
    assert model_history(uri) is None
    assert not (affinity_home / "mlflow.db").exists()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(
        EXPERIMENT_NAME, artifact_location=(affinity_home / "mlartifacts").as_uri()
    )
    run_ids = []
    for as_of, ndcg, decision in (("2026-10-30", 0.2, "promoted"), ("2026-10-31", 0.25, "kept")):
        run = client.create_run(
            experiment,
            run_name=f"train {as_of}",
            tags={"pipeline": "affinity-train", "as_of": as_of, "gate.decision": decision},
        )
        client.log_metric(run.info.run_id, "ndcg_at_10", ndcg)
        client.log_metric(run.info.run_id, "catalog_coverage", 0.5)
        client.set_terminated(run.info.run_id)
        run_ids.append(run.info.run_id)
    client.create_registered_model(MODEL_NAME)
    version = client.create_model_version(MODEL_NAME, f"runs:/{run_ids[0]}/model", run_ids[0])
    client.set_registered_model_alias(MODEL_NAME, "champion", version.version)

    history = model_history(uri)
    assert history.experiment_id == experiment
    assert (history.champion, history.challenger) == (str(version.version), None)
    assert history.runs["as_of"].tolist() == ["2026-10-30", "2026-10-31"]
    assert history.runs["decision"].tolist() == ["promoted", "kept"]
    assert history.runs["url"].tolist() == [
        f"http://localhost:5000/#/experiments/{experiment}/runs/{run_id}" for run_id in run_ids
    ]
    long = metrics_long(history.runs)
    assert set(long["metric"]) == {"ndcg_at_10", "catalog_coverage"}
    assert long[long["metric"] == "ndcg_at_10"]["value"].tolist() == [0.2, 0.25]


def test_model_history_names_match_the_trainer() -> None:
    from ml.train.config import TrainConfig

    config = TrainConfig()
    assert (config.experiment_name, config.registered_model_name) == (EXPERIMENT_NAME, MODEL_NAME)


def test_the_server_is_local_offline_and_does_not_watch_files() -> None:
    cmd = streamlit_command(8555)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and Path(cmd[4]).name == "app.py"
    for option in (
        "--server.address=127.0.0.1",
        "--server.port=8555",
        "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none",
        "--server.headless=true",
    ):
        assert option in cmd
