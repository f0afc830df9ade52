"""End to end through the declared pipeline (ingest -> dbt features -> train -> score ->
campaigns -> dbt outputs -> publish). Checks the published contract, PII, determinism."""

from __future__ import annotations

import polars as pl
import pytest

from ml.config import paths

pytestmark = pytest.mark.slow

AS_OF = "2026-10-31"
PUBLISHED_COLUMNS = {
    "recommendations": [
        "customer_id",
        "rank",
        "product_id",
        "product_name",
        "score",
        "reason",
        "reason_product_id",
        "model_name",
        "model_version",
    ],
    "similar_products": ["product_id", "rank", "similar_product_id", "score", "reason"],
    "customer_segments": ["customer_id", "rfm_segment", "cluster_id", "cluster_name"],
    "pipeline_runs": ["run_id", "logical_date", "model_version"],
}


def _run_stages(run_id: str, first: str, last: str = "publish") -> dict:
    """The declared pipeline from ``first`` to ``last`` (what the DAG's tasks run)."""
    from ml.orchestration.runner import run_stages
    from ml.pipeline import RunContext

    ctx = RunContext(AS_OF, run_id=run_id, input_path=str(paths().landing / "shop"), top_n=10)
    return run_stages(ctx, first, last)


def test_generated_shop_end_to_end_publishes_the_analyst_contract(monkeypatch):
    import functools

    import ml.train
    from ml.datagen import generate_shop
    from ml.publish import query, snapshot_checksums
    from ml.train.config import TrainConfig

    # The pipeline's own train stage, without BPR and plots (this test is about publishing).
    fast = functools.partial(ml.train.train, config=TrainConfig(bpr_enabled=False, log_plots=False))
    monkeypatch.setattr(ml.train, "train", fast)
    landing = paths().ensure().landing / "shop"
    generate_shop(landing, customers=300, products=120, days=120, seed=5)
    summaries = _run_stages("e2e-1", "ingest")
    row_counts = summaries["publish"]["row_counts"]
    for table, columns in PUBLISHED_COLUMNS.items():
        names = [row[0] for row in query(f"DESCRIBE {table}")]
        assert names[: len(columns)] == columns, table
    # Every customer gets 10 recommendations; each named reason product is in their history.
    per_customer = query("SELECT count(*) FROM recommendations GROUP BY customer_id")
    assert {n for (n,) in per_customer} == {10}
    assert len(per_customer) == query("SELECT count(*) FROM customer_segments")[0][0]
    assert query("SELECT count(*) FROM similar_products WHERE product_id = similar_product_id") == [
        (0,)
    ]
    run = query("SELECT run_id, model_version, recommendations_rows FROM pipeline_runs")
    version = summaries["score"]["model_version"]
    assert run == [("e2e-1", version, row_counts["recommendations"])]
    assert row_counts["campaign_audiences"] > 0  # the campaigns stage ran too

    # No raw PII: no input e-mail or first name anywhere in any published table.
    customers = pl.read_parquet(landing / "customers.parquet")
    secrets = {
        str(v).lower()
        for v in customers["email"].to_list() + customers["first_name"].to_list()
        if v
    }
    tables = [name for (name,) in query("SELECT table_name FROM information_schema.tables")]
    for table in tables:
        for column, dtype, *_ in query(f"DESCRIBE {table}"):
            assert column.lower() not in {"email", "first_name"}
            if dtype == "VARCHAR":
                values = {
                    str(v).lower() for (v,) in query(f'SELECT DISTINCT "{column}" FROM {table}')
                }
                assert not values & secrets, f"{table}.{column} carries input PII"

    # Re-running the ML steps and publishing the same date gives identical tables.
    first = snapshot_checksums()
    _run_stages("e2e-2", "score")
    second = snapshot_checksums()
    first.pop("pipeline_runs"), second.pop("pipeline_runs")
    assert first == second
