"""Learning from finished campaigns: lift by RFM segment, by cluster and by copy arm.

For every campaign measured (:func:`ml.campaigns.measurement.measure_campaigns`), its
audience is split by the customer's RFM segment and behavioural cluster *at launch*
(fixed before anyone was contacted, so each part is a randomized experiment of its own)
and, for an A/B of copy, by writer arm. Each part gets the statistics of
``campaign_results`` (same function), plus:

``p_value_holm``  the conversion p-value adjusted (Holm) over the parts of one campaign
                  and dimension: many segments give many chances of a fluke;
``targeting``     the rule below, as a word.

The rule (README, "Turning insights into targeting"):

* ``check assignment``  the part fails the sample-ratio test: its numbers are not trusted;
* ``too small``         ``sample_too_small``: nothing can be said either way;
* ``target``            conversion lift > 0 with ``p_value_holm < alpha``: the campaign
                        works there; next time target this segment/cluster;
* ``exclude``           conversion lift < 0 with ``p_value_holm < alpha``: it hurts there;
* ``keep testing``      otherwise (keep a control group there next time).

``copy_writer_ab`` rows compare the two arms' treated customers head to head (the second
arm as "treatment", the first as "control", expected split 50/50): the lift of one
writer's copy over the other's, measured rather than assumed.

Output: ``ml.campaign_insights``, one partition per as-of date (re-running replaces it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from ml.campaigns.assignment import CONTROL, TREATMENT
from ml.campaigns.comparison import COMPARISON_COLUMNS, CONCLUSION_COLUMNS, summarize_outcomes
from ml.campaigns.definitions import CampaignConfig
from ml.campaigns.experiment import EXPERIMENT_COLUMNS
from ml.campaigns.measurement import MeasurementReport
from ml.warehouse import connect
from ml.warehouse.stage_log import record_stage
from ml.warehouse.tables import rows_frame, write_partition

log = logging.getLogger(__name__)

INSIGHTS_TABLE = "campaign_insights"
DIMENSIONS = {"rfm_segment": "segment", "cluster": "cluster_name", "copy_writer": "copy_writer"}
AB_DIMENSION = "copy_writer_ab"
NO_VALUE = "(none)"
TARGET, EXCLUDE, KEEP_TESTING, TOO_SMALL, CHECK = (
    "target",
    "exclude",
    "keep testing",
    "too small",
    "check assignment",
)
INSIGHT_COLUMNS = {
    "logical_date": "DATE",
    "campaign_id": "VARCHAR",
    "campaign_name": "VARCHAR",
    "dimension": "VARCHAR",
    "dimension_value": "VARCHAR",
    **COMPARISON_COLUMNS,
    "p_value_holm": "DOUBLE",
    **CONCLUSION_COLUMNS,
    **EXPERIMENT_COLUMNS,
    "targeting": "VARCHAR",
}


def targeting(row: dict[str, Any], alpha: float) -> str:
    """The targeting rule of the module docstring for one part."""
    if row.get("srm_detected"):
        return CHECK
    if row.get("sample_too_small") or row.get("absolute_lift") is None:
        return TOO_SMALL
    p = row.get("p_value_holm")
    if p is not None and p < alpha:
        return TARGET if row["absolute_lift"] > 0 else EXCLUDE
    return KEEP_TESTING


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (``None`` stays ``None`` and does not count)."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running, m = 0.0, len(present)
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def campaign_parts(
    campaign_id: str,
    campaign_name: str,
    outcomes: pl.DataFrame,
    control_share: float | None,
    config: CampaignConfig,
) -> list[dict[str, Any]]:
    """Insight rows of one campaign: one per segment, cluster, arm (and arm vs arm)."""
    rows: list[dict[str, Any]] = []
    for dimension, column in DIMENSIONS.items():
        if column not in outcomes.columns:
            continue
        values = outcomes[column].fill_null(NO_VALUE)
        if dimension == "copy_writer" and values.n_unique() < 2:
            continue  # one writer: the whole campaign is its lift (campaign_results)
        part_rows = []
        for value in sorted(values.unique().to_list()):
            part = outcomes.filter(values == value)
            part_rows.append(
                {
                    "dimension": dimension,
                    "dimension_value": value,
                    **summarize_outcomes(part, config, control_share=control_share),
                }
            )
        for row, adjusted in zip(part_rows, holm([r["p_value"] for r in part_rows]), strict=True):
            row["p_value_holm"] = adjusted
        rows += part_rows
    if "copy_writer" in outcomes.columns:
        arms = sorted(outcomes["copy_writer"].drop_nulls().unique().to_list())
        if len(arms) == 2:
            rows.append(_arms_head_to_head(outcomes, arms, config))
    for row in rows:
        row["campaign_id"], row["campaign_name"] = campaign_id, campaign_name
        row["targeting"] = targeting(row, config.alpha)
    return rows


def _arms_head_to_head(outcomes: pl.DataFrame, arms: list[str], config: CampaignConfig) -> dict:
    first, second = arms
    treated = outcomes.filter(pl.col("assignment_group") == TREATMENT)
    compared = treated.filter(pl.col("copy_writer").is_in(arms)).with_columns(
        assignment_group=pl.when(pl.col("copy_writer") == second)
        .then(pl.lit(TREATMENT))
        .otherwise(pl.lit(CONTROL))
    )
    row = summarize_outcomes(compared, config, control_share=0.5)
    row.update(
        {"dimension": AB_DIMENSION, "dimension_value": f"{second} vs {first}"},
        p_value_holm=row["p_value"],
    )
    return row


@dataclass
class InsightsReport:
    """What one insights run wrote."""

    logical_date: date
    rows: int
    campaigns: list[str]
    targets: dict[str, list[str]]
    seconds: float

    def summary(self) -> str:
        if not self.campaigns:
            return f"campaign insights as of {self.logical_date}: no campaign measured"
        found = "; ".join(f"{c}: target {', '.join(v)}" for c, v in self.targets.items() if v)
        return (
            f"campaign insights as of {self.logical_date}: {self.rows} rows for "
            f"{len(self.campaigns)} campaigns" + (f" ({found})" if found else "")
        )


def build_insights(
    report: MeasurementReport, *, config: CampaignConfig | None = None
) -> InsightsReport:
    """Write ``ml.campaign_insights`` for the campaigns of a measurement run.

    Parameters
    ----------
    report : MeasurementReport
        From :func:`ml.campaigns.measurement.measure_campaigns` (its outcomes and
        results).
    config : CampaignConfig, optional
    """
    config = config or CampaignConfig()
    started = time.perf_counter()
    rows = []
    for result in report.results.iter_rows(named=True):
        outcomes = report.outcomes.get(result["campaign_id"])
        if outcomes is None:
            continue
        rows += campaign_parts(
            result["campaign_id"],
            result["campaign_name"],
            outcomes,
            result["expected_control_share"],
            config,
        )
    frame = rows_frame(rows, INSIGHT_COLUMNS)
    with connect() as con:
        written = write_partition(
            con,
            INSIGHTS_TABLE,
            frame,
            report.logical_date,
            columns=INSIGHT_COLUMNS,
            order_by="campaign_id, dimension, dimension_value",
        )
        seconds = time.perf_counter() - started
        targets = {
            c: frame.filter((pl.col("campaign_id") == c) & (pl.col("targeting") == TARGET))[
                "dimension_value"
            ].to_list()
            for c in report.measured
        }
        record_stage(
            con,
            report.logical_date,
            "campaign_insights",
            rows=written,
            seconds=seconds,
            detail={"targets": targets},
        )
    out = InsightsReport(report.logical_date, written, list(report.measured), targets, seconds)
    log.info("%s", out.summary())
    return out
