"""Task bodies of the campaign steps (what the Airflow tasks and CLI commands call).

``campaigns_stage``  daily, after ``score`` and before the dbt output marts: (optionally
                     replay missed launches, :mod:`ml.campaigns.replay`), launch the
                     campaigns due after the logical date (:func:`build_audiences`), then
                     measure the campaigns whose window has ended and learn from them
                     (``campaign_results``, ``campaign_insights``), so the run's own
                     snapshot carries the results.
``measure_stage``    the ``affinity_campaigns`` DAG, on every published snapshot:
                     measure the campaigns whose window has ended.
``publish_results``  the same DAG: build the campaign output marts and refresh the snapshot.

Each returns plain data (an XCom) and is idempotent for its date.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from ml.campaigns.audiences import build_audiences
from ml.campaigns.definitions import relation_exists
from ml.campaigns.measurement import measure_campaigns
from ml.publish import ML_SCHEMA, to_date
from ml.warehouse import connect

log = logging.getLogger(__name__)


def _release_dbt() -> None:
    # In `airflow dags test` every task shares one process with dbt's DuckDB handle.
    from ml.transform import release_dbt_warehouse

    release_dbt_warehouse()


def campaigns_stage(logical_date: date | str, replay: bool = False) -> dict[str, Any]:
    """Daily task body: launch, measure, learn (see the module docstring).

    Parameters
    ----------
    logical_date : date or str
    replay : bool
        First replay the launches of campaigns that ended unlaunched
        (:func:`ml.campaigns.replay.replay_missed_launches`).
    """
    from ml.campaigns.insights import build_insights
    from ml.campaigns.replay import replay_missed_launches

    _release_dbt()
    replayed = replay_missed_launches(logical_date) if replay else None
    report = build_audiences(logical_date)
    measured = measure_campaigns(logical_date)
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


def published_logical_date() -> date:
    """The logical date of the latest published run (what the snapshot shows).

    Raises
    ------
    LookupError
        Nothing was published yet.
    """
    with connect() as con:
        if relation_exists(con, ML_SCHEMA, "pipeline_runs"):
            rows = con.execute(
                f"SELECT logical_date FROM {ML_SCHEMA}.pipeline_runs "
                "ORDER BY finished_at DESC LIMIT 1"
            ).fetchall()
            if rows:
                return rows[0][0]
    raise LookupError("nothing was published yet: run `affinity run` (or the daily DAG) first")


def measure_stage(as_of: date | str | None = None) -> dict[str, Any]:
    """Campaigns-DAG task body: measure as of ``as_of`` (default: the published date)."""
    _release_dbt()
    from ml.campaigns.insights import build_insights

    day = to_date(as_of) if as_of else published_logical_date()
    report = measure_campaigns(day)
    build_insights(report)
    return {
        "as_of": day.isoformat(),
        "measured": report.measured,
        "skipped": report.skipped,
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


def publish_results(as_of: date | str, run_id: str) -> dict[str, Any]:
    """Build the campaign output marts and publish a refreshed snapshot for ``as_of``.

    Skipped when a newer date has been scored since: that run's own publish carries the
    results (its dbt output marts read the latest results up to its date), and publishing
    ``as_of`` now could mix its outputs with the newer run's.
    """
    from ml.publish import publish
    from ml.transform import run_dbt

    _release_dbt()
    day = to_date(as_of)
    with connect() as con:
        newest = (
            con.execute(f"SELECT max(logical_date) FROM {ML_SCHEMA}.recommendations").fetchall()[0][
                0
            ]
            if relation_exists(con, ML_SCHEMA, "recommendations")
            else None
        )
    if newest is not None and newest > day:
        log.info("not publishing campaign results for %s: %s was scored since", day, newest)
        return {"published": False, "reason": f"a newer run ({newest}) publishes them"}
    run_dbt(
        [
            "build",
            "--select",
            "pub_campaign_results",
            "pub_campaign_insights",
            "pub_campaign_audiences",
        ],
        as_of=day,
    )
    report = publish(day, run_id=run_id)
    return {"published": True, "snapshot": str(report.snapshot), "row_counts": report.row_counts}
