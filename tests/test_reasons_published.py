"""The reason audit on published snapshots (slow): a generated shop and the real data.

Every row of the published ``recommendations`` table is checked against the customer's
history in the warehouse (:mod:`ml.serving.reason_audit`): a "bought" reason names a
product they bought, on the day they last bought it; a "viewed" reason a product they
viewed; a popularity reason their own segment or country. None may contradict it.
"""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from conftest import ONLINE_RETAIL_AS_OF

from ml.config import paths

pytestmark = pytest.mark.slow

GENERATED_AS_OF = "2026-10-31"


def audit(logical_date: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    from ml.publish import query_frame
    from ml.serving.reason_audit import load_customers, load_history, reason_contradictions
    from ml.warehouse import connect

    published = query_frame(
        "SELECT customer_id, product_id, reason, reason_code, reason_product_id "
        "FROM recommendations"
    )
    with connect(read_only=True) as con:
        history = load_history(con, date.fromisoformat(logical_date))
        customers = load_customers(con)
    return published, reason_contradictions(published, history, customers)


def test_no_published_reason_contradicts_a_generated_shops_history(monkeypatch):
    import ml.train
    from ml.datagen import generate_shop
    from ml.orchestration.runner import run_stages
    from ml.pipeline import RunContext
    from ml.train.config import TrainConfig

    fast = functools.partial(ml.train.train, config=TrainConfig(bpr_enabled=False, log_plots=False))
    monkeypatch.setattr(ml.train, "train", fast)
    landing = paths().ensure().landing / "shop"
    generate_shop(landing, customers=400, products=150, days=120, seed=8)
    run_stages(RunContext(GENERATED_AS_OF, input_path=str(landing), top_n=10), "ingest")

    published, problems = audit(GENERATED_AS_OF)
    assert problems.height == 0, problems.select("customer_id", "reason", "problem").head()
    codes = set(published["reason_code"])
    assert {"bought_similar", "viewed_similar"} <= codes  # buyers and browsers both checked
    dated = published.filter(pl.col("reason_code") == "bought_similar")["reason"]
    assert dated.str.contains(r" on \d{4}-\d{2}-\d{2}$").all()


def test_no_published_reason_contradicts_the_online_retail_history(
    online_retail_home: Path, monkeypatch: pytest.MonkeyPatch
):
    from ml.orchestration.runner import run_stages
    from ml.pipeline import RunContext

    monkeypatch.setenv("AFFINITY_HOME", str(online_retail_home))
    # Train (or reuse the session's identical training), then score through publish.
    run_stages(RunContext(ONLINE_RETAIL_AS_OF), "train", "publish")

    published, problems = audit(ONLINE_RETAIL_AS_OF)
    assert published.height > 40_000
    assert problems.height == 0, problems.select("customer_id", "reason", "problem").head()
