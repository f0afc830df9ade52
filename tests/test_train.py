"""The training step end to end on a synthetic warehouse: MLflow record, registry, gate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
from mlflow import MlflowClient
from test_train_support import (
    AS_OF,
    PII_EMAIL_DOMAIN,
    fast_config,
    pii_values,
    synthetic_events,
    weak_config,
    write_warehouse,
)

from ml.config import paths
from ml.train import TrainConfig, load_champion, train
from ml.train.config import SearchConfig
from ml.train.interactions import MissingWarehouseTable
from ml.train.tracking import CHALLENGER, CHAMPION, DEFAULT_MODEL_NAME, alias_version

# The last day of data a training as of AS_OF (exclusive end) sees: the label of its runs.
LAST_DAY = (datetime.fromisoformat(AS_OF) - timedelta(days=1)).date().isoformat()
RANKING_METRICS = [
    f"{metric}_at_{k}" for metric in ("precision", "recall", "ndcg", "map") for k in (10, 20)
]


@pytest.fixture
def shop(affinity_home: Path) -> pl.DataFrame:
    """A synthetic warehouse in this test's AFFINITY_HOME; returns its events."""
    events = synthetic_events()
    write_warehouse(affinity_home, events)
    return events


def client() -> MlflowClient:
    mlflow.set_tracking_uri(paths().mlflow_tracking_uri)
    return MlflowClient()


def child_runs(result) -> dict[str, mlflow.entities.Run]:
    runs = client().search_runs(
        [result.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    return {run.data.tags["model_family"]: run for run in runs}


def test_first_model_beats_popularity_and_everything_is_recorded(shop, affinity_home):
    result = train(AS_OF, config=fast_config(log_plots=True))

    assert result.decision == "champion" and result.promoted
    assert result.model_version == "1"
    assert alias_version(DEFAULT_MODEL_NAME, CHAMPION) == "1"
    assert result.metrics["als"]["ndcg_at_10"] > result.metrics["popularity"]["ndcg_at_10"]

    mlflow_client = client()
    parent = mlflow_client.get_run(result.run_id)
    experiment = mlflow_client.get_experiment(result.experiment_id)
    assert experiment.name == "affinity-recommenders"
    assert experiment.artifact_location == paths().mlartifacts.as_uri()
    assert parent.data.tags["gate.decision"] == "champion"
    assert parent.data.tags["gate.champion_ndcg_at_10"] == "none"
    assert float(parent.data.tags["gate.candidate_ndcg_at_10"]) == pytest.approx(
        result.metrics["als"]["ndcg_at_10"], abs=1e-6
    )
    for name in [*RANKING_METRICS, "catalog_coverage", "popularity_bias"]:
        assert name in parent.data.metrics, name
    # A training as of AS_OF (its test window ends at AS_OF's midnight) sees data up to and
    # including the day before: that day labels its run, params and tags.
    assert parent.data.params["as_of"] == LAST_DAY == parent.data.tags["as_of"]
    assert parent.info.run_name == f"train {LAST_DAY}"
    assert "chosen.als.factors" in parent.data.params
    assert parent.data.metrics["search_fits"] <= 3

    children = child_runs(result)
    assert set(children) == {"als", "bpr", "popularity"}
    assert {run.data.tags["as_of"] for run in children.values()} == {LAST_DAY}
    for family, run in children.items():
        for name in [*RANKING_METRICS, "catalog_coverage", "popularity_bias"]:
            assert name in run.data.metrics, (family, name)
        assert "ndcg_at_10__segment_champions" in run.data.metrics
        assert "ndcg_at_10__segment_at_risk" in run.data.metrics

    # The input dataset, with its row count and as_of.
    inputs = parent.inputs.dataset_inputs
    contexts = {
        tag.value for dataset in inputs for tag in dataset.tags if tag.key == "mlflow.data.context"
    }
    assert contexts == {"training", "evaluation"}
    training_input = next(
        d
        for d in inputs
        if any(t.key == "mlflow.data.context" and t.value == "training" for t in d.tags)
    )
    tags = {tag.key: tag.value for tag in training_input.tags}
    assert tags["as_of"] == LAST_DAY and int(tags["rows"]) > 0

    artifacts = {a.path for a in mlflow_client.list_artifacts(result.run_id, "plots")}
    assert artifacts == {
        "plots/metrics_by_model.png",
        "plots/recall_at_k.png",
        "plots/recommendation_frequency_vs_popularity.png",
        "plots/ndcg_by_segment.png",
    }
    version = mlflow_client.get_model_version(DEFAULT_MODEL_NAME, "1")
    assert version.tags["gate.decision"] == "champion"
    assert version.run_id == children["als"].info.run_id


def test_weak_model_is_not_promoted_over_a_good_champion(shop):
    good = train(AS_OF, config=fast_config())
    assert good.promoted

    weak = train(AS_OF, config=weak_config())

    assert weak.decision == "challenger" and not weak.promoted
    assert alias_version(DEFAULT_MODEL_NAME, CHAMPION) == good.model_version
    assert alias_version(DEFAULT_MODEL_NAME, CHALLENGER) == weak.model_version
    assert weak.metrics["champion"]["ndcg_at_10"] == pytest.approx(
        good.metrics["als"]["ndcg_at_10"]
    )
    tags = client().get_model_version(DEFAULT_MODEL_NAME, weak.model_version).tags
    assert tags["gate.decision"] == "challenger"
    assert "does not beat champion" in tags["gate.reason"]
    assert float(tags["gate.champion_ndcg_at_10"]) > float(tags["gate.candidate_ndcg_at_10"])
    parent = client().get_run(weak.run_id)
    assert parent.data.tags["gate.decision"] == "challenger"
    assert parent.data.tags["gate.champion_evaluation"] == "stored_model"


def test_champion_loads_in_a_fresh_process_and_recommends_new_products(shop, affinity_home):
    result = train(AS_OF, config=fast_config())
    assert result.promoted
    customer = shop["customer_id"][0]
    script = textwrap.dedent(
        f"""
        import json, mlflow, pandas as pd
        from ml.config import paths
        mlflow.set_tracking_uri(paths().mlflow_tracking_uri)
        model = mlflow.pyfunc.load_model("models:/{DEFAULT_MODEL_NAME}@champion")
        # The customer twice (lists are per customer, at the largest n) and a stranger.
        request = pd.DataFrame(
            {{"customer_id": ["{customer}", "stranger", "{customer}"], "n": [6, 3, 2]}}
        )
        frame = model.predict(request)
        print(json.dumps(frame.to_dict(orient="records")))
        """
    )
    env = {**os.environ, "AFFINITY_HOME": str(affinity_home), "OPENBLAS_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = json.loads(completed.stdout.strip().splitlines()[-1])
    mine = [row for row in rows if row["customer_id"] == customer]
    assert [row["rank"] for row in mine] == [1, 2, 3, 4, 5, 6]
    assert {row["source"] for row in mine} == {"model"}
    history_end = datetime.fromisoformat(AS_OF) + timedelta(days=1)
    bought = set(
        shop.filter(
            (pl.col("customer_id") == customer)
            & (pl.col("event_kind") == "purchase")
            & (pl.col("occurred_at") < history_end)
        )["product_id"]
    )
    assert bought and not {row["product_id"] for row in mine} & bought
    stranger = [row for row in rows if row["customer_id"] == "stranger"]
    assert len(stranger) == 3 and {row["source"] for row in stranger} == {"popular"}

    # In-process, for scoring: the serving model with its maps and version.
    champion = load_champion()
    assert champion.version == "1"
    assert champion.family == "als"
    assert customer in set(champion.maps.customer_ids)
    assert champion.recommend([customer], 6)["product_id"].to_list() == [
        row["product_id"] for row in mine
    ]


def test_training_is_deterministic_for_a_seed(tmp_path, monkeypatch):
    events = synthetic_events()
    results, factors = [], []
    for name in ("first", "second"):
        home = tmp_path / name
        monkeypatch.setenv("AFFINITY_HOME", str(home))
        write_warehouse(home, events)
        results.append(train(AS_OF, config=fast_config()))
        champion = load_champion()
        factors.append((champion.model.user_factors, champion.model.item_factors))
    assert results[0].metrics == results[1].metrics
    assert results[0].recipe == results[1].recipe
    np.testing.assert_array_equal(factors[0][0], factors[1][0])
    np.testing.assert_array_equal(factors[0][1], factors[1][1])


def test_no_email_or_name_in_any_logged_artifact(shop, affinity_home):
    train(AS_OF, config=fast_config(log_plots=True))
    secrets = pii_values(affinity_home)
    assert secrets
    needles = [s.encode() for s in secrets] + [PII_EMAIL_DOMAIN.encode()]
    files = [p for p in (affinity_home / "mlartifacts").rglob("*") if p.is_file()]
    files.append(affinity_home / "mlflow.db")
    assert any(p.name == "customer_ids.npy" for p in files)
    for path in files:
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"{needle!r} found in {path}"


def test_degenerate_data_on_one_product_is_recorded_and_not_promoted(affinity_home):
    events = synthetic_events(n_customers=80).with_columns(pl.lit("P000").alias("product_id"))
    write_warehouse(affinity_home, events)

    result = train(AS_OF, config=fast_config())

    assert not result.promoted
    assert alias_version(DEFAULT_MODEL_NAME, CHAMPION) is None
    run = client().get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["gate.decision"] == result.decision
    assert "evaluated" in run.data.tags["gate.reason"]


def test_a_tiny_sample_is_recorded_and_not_promoted(affinity_home):
    events = synthetic_events(n_customers=8, n_products=12)
    write_warehouse(affinity_home, events)

    result = train(AS_OF, config=fast_config())

    assert result.decision == "challenger"
    assert "too little evidence" in result.reason
    assert alias_version(DEFAULT_MODEL_NAME, CHAMPION) is None
    assert alias_version(DEFAULT_MODEL_NAME, CHALLENGER) == result.model_version


def test_no_history_before_the_test_window_is_rejected_and_recorded(affinity_home):
    recent = datetime.fromisoformat(AS_OF) - timedelta(days=5)
    events = synthetic_events(n_customers=20).filter(pl.col("occurred_at") >= recent)
    write_warehouse(affinity_home, events)

    result = train(AS_OF, config=fast_config())

    assert result.decision == "rejected" and result.model_version is None
    run = client().get_run(result.run_id)
    assert run.data.tags["gate.decision"] == "rejected"
    assert "nothing to train on" in run.data.tags["gate.reason"]


def test_a_backfill_is_gated_against_the_champion_of_its_own_date(shop):
    from ml.train.registry import champion_as_of

    later = train(AS_OF, config=fast_config())
    assert later.promoted
    earlier = (datetime.fromisoformat(AS_OF) - timedelta(days=20)).date()

    backfill = train(earlier.isoformat(), config=fast_config())

    # No model was champion as of the earlier date: the backfill's model becomes its
    # champion, but the alias (today's champion) stays with the later model.
    tags = client().get_run(backfill.run_id).data.tags
    assert "gate.champion_evaluation" not in tags
    assert backfill.promoted, backfill.reason
    assert tags["gate.alias_moved"] == "false"
    assert alias_version(DEFAULT_MODEL_NAME, CHAMPION) == later.model_version
    assert champion_as_of(DEFAULT_MODEL_NAME, earlier) == backfill.model_version
    assert champion_as_of(DEFAULT_MODEL_NAME, later.as_of) == later.model_version
    assert champion_as_of(DEFAULT_MODEL_NAME, earlier - timedelta(days=1)) is None


def test_a_champion_fit_after_the_window_is_compared_by_refitting_its_recipe(shop):
    """A champion as of this date whose evaluated model saw this run's test window."""
    from ml.train.gate import evaluate_champion
    from ml.train.history import build_training_data
    from ml.train.registry import load_version
    from ml.train.split import build_evaluation_window

    later = train(AS_OF, config=fast_config())
    champion = load_version(DEFAULT_MODEL_NAME, later.model_version).evaluated
    cutoff = champion.trained_until - timedelta(days=15)
    training = build_training_data(shop, cutoff, champion.recipe.weighting)
    window = build_evaluation_window(shop, training, cutoff + timedelta(days=30))

    evaluation, method = evaluate_champion(champion, shop, training, window, (10,), seed=42)

    assert method == "recipe_refit"
    assert evaluation.ndcg_at_10 > 0


def test_default_as_of_is_the_day_after_the_latest_event(shop):
    result = train(config=fast_config(bpr_enabled=False))
    latest = shop["occurred_at"].max()
    assert result.as_of == latest.date() + timedelta(days=1)


def test_load_champion_without_a_champion_says_what_to_do():
    with pytest.raises(LookupError, match="affinity train"):
        load_champion()


def test_missing_marts_say_what_to_do(affinity_home):
    write_warehouse(affinity_home, synthetic_events(n_customers=5))
    import duckdb

    with duckdb.connect(str(affinity_home / "warehouse.duckdb")) as con:
        con.execute("DROP TABLE marts.interaction_events")
    with pytest.raises(MissingWarehouseTable, match="build the marts"):
        train(AS_OF, config=TrainConfig())


def test_a_champion_that_cannot_be_evaluated_blocks_promotion(shop, affinity_home):
    first = train(AS_OF, config=fast_config(bpr_enabled=False))
    assert first.promoted
    for meta in (affinity_home / "mlartifacts" / "models").rglob("meta.json"):
        meta.write_text("{ broken")

    # Another seed: the same inputs would reuse the first run (idempotent retries).
    second = train(AS_OF, config=fast_config(bpr_enabled=False, seed=7))

    assert second.decision == "challenger"
    assert "could not be evaluated" in second.reason
    assert alias_version(DEFAULT_MODEL_NAME, CHAMPION) == first.model_version
    assert client().get_run(second.run_id).data.tags["gate.champion_evaluation"] == "failed"


def test_invalid_configurations_say_what_to_fix():
    with pytest.raises(ValueError, match="eval_days"):
        TrainConfig(eval_days=0)
    with pytest.raises(ValueError, match="include 10"):
        TrainConfig(ks=(5,))
    with pytest.raises(ValueError, match="budget"):
        fast_config(search=SearchConfig(budget=-1))
    with pytest.raises(ValueError, match="min_gain_se"):
        fast_config(search=SearchConfig(min_gain_se=-1.0))


def test_nightly_run_reuses_a_recently_tuned_recipe_and_weekly_run_searches(shop):
    """The search (and BPR) runs when the champion's recipe is older than reuse_days."""
    first = train(AS_OF, config=fast_config())
    assert first.promoted
    tags = client().get_model_version(DEFAULT_MODEL_NAME, first.model_version).tags
    assert tags["recipe.tuned_as_of"] == AS_OF
    assert json.loads(tags["recipe.json"]) == first.recipe.to_dict()

    next_day = (datetime.fromisoformat(AS_OF) + timedelta(days=1)).date().isoformat()
    nightly = train(next_day, config=fast_config())
    parent = client().get_run(nightly.run_id)
    assert parent.data.tags["search"] == (
        f"reused the champion's recipe tuned on data up to {LAST_DAY}"
    )
    assert "search_fits" not in parent.data.metrics
    assert parent.data.params["recipe_tuned_as_of"] == AS_OF
    assert nightly.recipe == first.recipe
    nightly_children = child_runs(nightly)
    assert set(nightly_children) == {"als", "popularity"}
    # Same recipe, champion fit on an earlier history: the candidate starts from it.
    assert nightly_children["als"].data.tags["warm_start"] == (
        f"champion v{first.model_version} (evaluated model)"
    )
    assert "warm_start" not in child_runs(first)["als"].data.tags
    assert "reuses the champion's recipe" in parent.data.tags["bpr.skipped"]

    # reuse_days=0 (or a recipe tuned too long ago) searches again, with BPR.
    weekly = train(next_day, config=fast_config(search=SearchConfig(budget=1, reuse_days=0)))
    weekly_parent = client().get_run(weekly.run_id)
    assert weekly_parent.data.metrics["search_fits"] == 1
    assert weekly_parent.data.params["recipe_tuned_as_of"] == next_day
    assert set(child_runs(weekly)) == {"als", "bpr", "popularity"}


def test_bpr_is_skipped_above_its_pair_limit(shop):
    result = train(AS_OF, config=fast_config(bpr_max_pairs=10))

    parent = client().get_run(result.run_id)
    assert set(child_runs(result)) == {"als", "popularity"}
    assert "TrainConfig.bpr_max_pairs 10" in parent.data.tags["bpr.skipped"]
    assert result.promoted


def test_search_fits_on_a_seeded_customer_sample(shop):
    from ml.train.tuning import sample_customers

    sample = sample_customers(shop, 50, seed=7)
    again = sample_customers(shop, 50, seed=7)
    assert sample["customer_id"].n_unique() == 50
    assert sample.equals(again)
    chosen = sample["customer_id"].unique()
    # Every event of a chosen customer is kept, none of the others.
    assert sample.height == shop.filter(pl.col("customer_id").is_in(chosen.implode())).height
    assert sample_customers(shop, 0, seed=7).height == shop.height

    result = train(AS_OF, config=fast_config(search=SearchConfig(budget=1, max_customers=50)))
    assert client().get_run(result.run_id).data.metrics["search_customers"] == 50
