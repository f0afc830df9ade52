"""Campaigns: targeted audiences with a control group, personalized messages, measured lift.

Modules
-------
:mod:`.definitions`  campaign definitions (input entity + seed), settings, validation
:mod:`.rules`        the SQL-free rule language of ``target_type = 'rule'``
:mod:`.assignment`   the seeded treatment/control hash
:mod:`.messages`     sandboxed Jinja templates, PII placeholders, validation
:mod:`.audiences`    eligibility, targeting, ranking, frequency cap -> ``ml.campaign_audiences``
:mod:`.measurement`  conversion lift, CI, p-value -> ``ml.campaign_results``
:mod:`.stage`        task bodies for Airflow and the CLI

Entry points: :func:`build_audiences` (daily, after scoring; task body
:func:`campaigns_stage`) and :func:`measure_campaigns` (after each publish; task bodies
:func:`measure_stage` and :func:`publish_results` of the ``affinity_campaigns`` DAG).
"""

from ml.campaigns.assignment import CONTROL, TREATMENT, assign_groups, is_control
from ml.campaigns.audiences import AudienceReport, build_audiences
from ml.campaigns.definitions import (
    Campaign,
    CampaignConfig,
    CampaignError,
    load_campaigns,
    validate_campaigns,
)
from ml.campaigns.measurement import MeasurementReport, lift_statistics, measure_campaigns
from ml.campaigns.messages import TemplateError, validate_template
from ml.campaigns.rules import RuleError, parse_rule
from ml.campaigns.stage import campaigns_stage, measure_stage, publish_results

__all__ = [
    "CONTROL",
    "TREATMENT",
    "AudienceReport",
    "Campaign",
    "CampaignConfig",
    "CampaignError",
    "MeasurementReport",
    "RuleError",
    "TemplateError",
    "assign_groups",
    "build_audiences",
    "campaigns_stage",
    "is_control",
    "lift_statistics",
    "load_campaigns",
    "measure_campaigns",
    "measure_stage",
    "parse_rule",
    "publish_results",
    "validate_campaigns",
    "validate_template",
]
