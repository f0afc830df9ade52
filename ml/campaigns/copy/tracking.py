"""MLflow record of a campaign's copy run: one run per campaign arm (arm = writer).

Experiment ``affinity-campaign-copy``; params: campaign, channel, logical date, writer,
its version and model, the campaign's arms; metrics: messages, guardrail pass rate (first
drafts), regenerations, fallbacks (and per reason), cache hits, endpoint requests;
artifacts: ``samples.json`` (a few messages, placeholders unfilled: no PII) and
``reasons.json``. The lift of each arm is measured in ``campaign_insights``
(``dimension = 'copy_writer'``), not assumed here.
"""

from __future__ import annotations

import json
import logging
from datetime import date

from ml.campaigns.copy.runner import CopyReport

log = logging.getLogger(__name__)


def log_copy_run(
    report: CopyReport,
    *,
    experiment: str,
    campaign_id: str,
    campaign_name: str,
    channel: str,
    logical_date: date,
    arms: tuple[str, ...],
) -> str:
    """Log one arm's copy run; return its MLflow run id."""
    import mlflow

    from ml.train.tracking import configure

    configure(experiment)
    with mlflow.start_run(run_name=f"{campaign_id} {report.writer}") as run:
        mlflow.set_tags(
            {"campaign_id": campaign_id, "arm": report.writer, "ab_test": str(len(arms) > 1)}
        )
        mlflow.log_params(
            {
                "campaign_id": campaign_id,
                "campaign_name": campaign_name,
                "channel": channel,
                "logical_date": logical_date.isoformat(),
                "writer": report.writer,
                "writer_version": report.version,
                "model": report.model or "none",
                "arms": "|".join(arms),
            }
        )
        mlflow.log_metrics({k: float(v) for k, v in report.metrics().items()})
        mlflow.log_text(json.dumps(report.samples, indent=1, ensure_ascii=False), "samples.json")
        mlflow.log_text(
            json.dumps(
                {
                    "failure_reasons": dict(report.failure_reasons),
                    "fallback_reasons": dict(report.fallback_reasons),
                },
                indent=1,
            ),
            "reasons.json",
        )
        return run.info.run_id
