"""The Python stages' bodies: what :mod:`ml.pipeline` declares and the runner calls.

Each takes a :class:`~ml.pipeline.RunContext` and returns plain data (the Airflow task's
XCom). Each is idempotent for its logical date: running it again replaces its outputs.
Heavy imports happen inside the functions, so loading the DAG stays cheap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.config import paths
from ml.dates import to_date
from ml.pipeline import RunContext

if TYPE_CHECKING:  # pragma: no cover
    from ml.ingest.report import IngestReport

log = logging.getLogger(__name__)


def _logical_date(ctx: RunContext, stage: str) -> str:
    if not ctx.logical_date:
        raise ValueError(f"stage {stage} needs a logical date (--as-of YYYY-MM-DD)")
    return ctx.logical_date


def ingest_landing(landing: Path) -> tuple[IngestReport, dict[str, Any]]:
    """Ingest a landing folder on the home's engine, then apply erasure outside the
    warehouse (models and snapshots lose the requested customers).

    Returns the batch's report and what erasure changed
    (:func:`ml.orchestration.erasure.erase_outside_warehouse`).
    """
    from ml.engine import is_spark
    from ml.ingest import ingest
    from ml.orchestration.erasure import erase_outside_warehouse

    if is_spark():  # the same contract and tables, each file validated by Spark SQL
        from ml.spark.ingest import ingest_on_spark as ingest

    report = ingest(landing)
    return report, erase_outside_warehouse()


def ingest_stage(ctx: RunContext) -> dict[str, Any]:
    """Resolve the input (default: the inbox folder) and ingest it into ``raw``."""
    from ml.orchestration.landing import prepare_landing

    source = Path(ctx.input_path) if ctx.input_path else paths().inbox
    landing = prepare_landing(source) if source.is_file() else source
    report, erased = ingest_landing(landing)
    log.info("%s", report.summary())
    return {
        "erased_rows": report.erased_rows,
        **erased,
        "landing": str(landing),
        "batch_id": report.batch_id,
        "received_rows": report.received_rows,
        "loaded_rows": report.loaded_rows,
        "quarantined_rows": report.quarantined_rows,
        "rows": report.loaded_rows,
    }


def product_text_stage(ctx: RunContext) -> dict[str, Any]:
    """Embed new product texts and categorise every product (before the marts)."""
    from ml.text.products import understand_products

    report = understand_products(_logical_date(ctx, "product_text"))
    return {
        "products": report.products,
        "embedded": report.embedded,
        "reused": report.reused,
        "inferred": report.inferred,
        "categories": report.categories,
        "taxonomy": "built" if report.rebuilt else "carried forward",
        "rows": report.products,
    }


def review_insight_stage(ctx: RunContext) -> dict[str, Any]:
    """Sentiment of every review and aspects of every reviewed product (before the marts).

    ``retrain`` (the run's parameter) lets the sentiment model retrain when the reviews
    changed since the champion's training; ``retrain=false`` keeps the champion (a first
    run still trains one). The summary's ``run_id`` / ``experiment_id`` are the MLflow run
    that trained the serving version (the Airflow task links to it).
    """
    from ml.text.review_insight import understand_reviews

    day = _logical_date(ctx, "review_insight")
    return understand_reviews(day, retrain=None if ctx.retrain else False).summary()


def train_stage(ctx: RunContext) -> dict[str, Any]:
    """Train, review and gate the recommenders on the data up to the logical date.

    The training's ``as_of`` is the start of the next day: its test window ends where
    the logical date ends, like the dbt marts.
    """
    day = _logical_date(ctx, "train")
    if not ctx.retrain:
        return {"decision": "skipped", "reason": "retrain=false: scoring keeps the champion"}
    due = _retrain_due(day)
    if not due.retrain:
        log.info("train: champion kept: %s", due.reason)
        return {"decision": "kept", "reason": due.reason, "rows": 0}
    log.info("train: retraining: %s", due.reason)
    import ml.train  # MLflow and the trainers: only on nights that train
    from ml.dates import as_of_end
    from ml.train.retrain_rule import erasure_requests
    from ml.train.tracking import alias_version
    from ml.warehouse import connect

    with connect() as con:
        erased = erasure_requests(con)  # the next night compares: an erasure retrains
    result = ml.train.train(as_of_end(day))
    return {
        "erasure_requests": erased,
        "run_id": result.run_id,
        "experiment_id": result.experiment_id,
        "decision": result.decision,
        "reason": result.reason,
        "model_name": result.model_name,
        "model_version": result.model_version,
        "family": result.family,
        "reused": result.reused,
        "champion_version": alias_version(result.model_name, "champion"),
        "ndcg_at_10": {k: v.get("ndcg_at_10") for k, v in result.metrics.items()},
        "rows": 1,
    }


def _retrain_due(day: str):
    """The retrain rule's decision for ``day`` (:mod:`ml.train.retrain_rule`)."""
    from ml.train.retrain_rule import RetrainRule, observe, retrain_decision
    from ml.warehouse import connect

    with connect() as con:
        moved = observe(con, to_date(day))
    return retrain_decision(to_date(day), moved, RetrainRule.from_env())


def score_stage(ctx: RunContext) -> dict[str, Any]:
    """Recommendations, similar products and segments from the serving model."""
    from ml.orchestration.erasure import erase_outside_warehouse
    from ml.serving.model import load_serving_model
    from ml.serving.recommend import ScoreConfig, score
    from ml.serving.scoring_run import log_scoring_run
    from ml.serving.segments import build_segments
    from ml.serving.similar import similar_products

    day = _logical_date(ctx, "score")
    erase_outside_warehouse()  # the champion never serves an erased customer
    model = load_serving_model(day)
    config = ScoreConfig(n=ctx.top_n)
    recommendations = score(day, config=config, model=model, full_refresh=ctx.full_refresh)
    # The rules these lists were served under (demotion included), in MLflow beside the
    # model's training runs; the task links to this run.
    mlflow_run = log_scoring_run(recommendations, config)
    similar = similar_products(day, model=model)
    segments = build_segments(day, model=model)
    return {
        **mlflow_run,
        "model_name": model.name,
        "model_version": model.version,
        "demote_turning_negative": config.demote_turning_negative,
        "demoted_products": recommendations.demoted_products,
        "recommendations": recommendations.rows,
        "catalog_coverage": recommendations.catalog_coverage,
        "cold_start_customers": recommendations.cold_start,
        "similar_products": similar.rows,
        "clusters": segments.cluster_names,
        "rows": recommendations.rows + similar.rows + segments.customers,
    }


def campaigns_stage(ctx: RunContext) -> dict[str, Any]:
    """Launch, measure, learn: the run's own snapshot carries the campaigns' results.

    (Optionally replay the launches of campaigns that ended unlaunched,
    :mod:`ml.campaigns.replay`), freeze the audiences of the campaigns launching after the
    logical date, then measure the campaigns whose window has ended and break their lift
    down by segment (``campaign_results``, ``campaign_insights``).
    """
    from ml.campaigns.audiences import build_audiences
    from ml.campaigns.insights import build_insights
    from ml.campaigns.measurement import measure_campaigns
    from ml.campaigns.replay import replay_missed_launches

    day = _logical_date(ctx, "campaigns")
    replayed = replay_missed_launches(day) if ctx.replay_campaigns else None
    report = build_audiences(day)
    measured = measure_campaigns(day)
    insights = build_insights(measured)
    return {
        "logical_date": report.logical_date.isoformat(),
        "launched": report.launched,
        "rows": report.rows,
        "sizes": report.sizes,
        "capped": report.capped,
        "model_version": report.model_version,
        "replayed": {str(d): ids for d, ids in replayed.launched.items()} if replayed else {},
        "measured": measured.measured,
        "insight_rows": insights.rows,
    }


def publish_stage(ctx: RunContext) -> dict[str, Any]:
    """Build, verify and swap in the analyst snapshot (default date: the latest scored)."""
    from ml.publish import publish
    from ml.warehouse import connect
    from ml.warehouse.stage_log import run_started

    day = to_date(ctx.logical_date) if ctx.logical_date else None  # None: the latest scored
    with connect() as con:
        started_at = run_started(con, day) if day else None
    report = publish(day, run_id=ctx.run_id, started_at=started_at, keep=ctx.keep_snapshots)
    return {
        "logical_date": report.logical_date.isoformat(),
        "snapshot": str(report.snapshot),
        "row_counts": report.row_counts,
    }


# --------------------------------------------------------------------------- campaign DAG


def published_logical_date() -> str:
    """The logical date of the latest published run (what the snapshot shows).

    Raises
    ------
    LookupError
        Nothing was published yet.
    """
    from ml.warehouse import connect
    from ml.warehouse.tables import ML_SCHEMA, table_exists

    with connect() as con:
        if table_exists(con, ML_SCHEMA, "pipeline_runs"):
            rows = con.execute(
                f"SELECT logical_date FROM {ML_SCHEMA}.pipeline_runs "
                "ORDER BY finished_at DESC LIMIT 1"
            ).fetchall()
            if rows:
                return rows[0][0].isoformat()
    raise LookupError("nothing was published yet: run `affinity run` (or the daily DAG) first")


def measure_stage(ctx: RunContext) -> dict[str, Any]:
    """Measure the campaigns whose window has ended (default date: the published one)."""
    from ml.campaigns.insights import build_insights
    from ml.campaigns.measurement import measure_campaigns

    day = to_date(ctx.logical_date or published_logical_date())
    report = measure_campaigns(day)
    insights = build_insights(report)
    return {
        "as_of": day.isoformat(),
        "measured": report.measured,
        "skipped": report.skipped,
        "insight_rows": insights.rows,
        "rows": len(report.measured),
        "results": [
            {
                k: r[k]
                for k in (
                    "campaign_id",
                    "absolute_lift",
                    "lift_ci_low",
                    "lift_ci_high",
                    "p_value",
                    "conclusion",
                )
            }
            for r in report.results.iter_rows(named=True)
        ],
    }


def publish_results_stage(ctx: RunContext) -> dict[str, Any]:
    """Build the campaign output marts and publish a refreshed snapshot for the date.

    Skipped when a newer date has been scored since: that run's own publish carries the
    results (its output marts read the latest results up to its date), and publishing
    this date now could mix its outputs with the newer run's.
    """
    from ml.publish import publish
    from ml.warehouse import connect
    from ml.warehouse.dbt import run_dbt
    from ml.warehouse.tables import ML_SCHEMA, table_exists

    day = to_date(_logical_date(ctx, "publish_results"))
    with connect() as con:
        newest = (
            con.execute(f"SELECT max(logical_date) FROM {ML_SCHEMA}.recommendations").fetchall()[0][
                0
            ]
            if table_exists(con, ML_SCHEMA, "recommendations")
            else None
        )
    if newest is not None and newest > day:
        log.info("not publishing campaign results for %s: %s was scored since", day, newest)
        return {"published": False, "reason": f"a newer run ({newest}) publishes them"}
    # The staging views first: they see the campaign tables only once rebuilt after them.
    tables = ("campaign_results", "campaign_insights", "campaign_audiences")
    models = [f"stg_ml__{t}" for t in tables] + [f"pub_{t}" for t in tables]
    run_dbt(["build", "--select", *models], as_of=day)
    report = publish(day, run_id=ctx.run_id)
    return {"published": True, "snapshot": str(report.snapshot), "row_counts": report.row_counts}
