"""Campaigns: targeted audiences with a control group, personalized messages, measured lift.

Modules
-------
:mod:`.definitions`  campaign definitions (input entity + seed), settings, validation
:mod:`.rules`        the SQL-free rule language of ``target_type = 'rule'``
:mod:`.assignment`   the seeded treatment/control hash
:mod:`.messages`     sandboxed Jinja templates, PII placeholders, validation
:mod:`.audiences`    eligibility, targeting, ranking, frequency cap -> ``ml.campaign_audiences``
:mod:`.messaging`    per-customer copy from the writers of :mod:`.copy`, through guardrails
:mod:`.measurement`  conversion lift, CI, p-value -> ``ml.campaign_results``
:mod:`.comparison`   treatment vs control: lift, CI, p-value, conclusion
:mod:`.stats`        SRM, CUPED, always-valid intervals, MDE (:mod:`.experiment` assembles them)
:mod:`.insights`     lift by RFM segment, cluster and copy arm -> ``ml.campaign_insights``
:mod:`.replay`       launch campaigns that ended before a first run, as of their launch dates

Entry points: :func:`build_audiences` (the daily ``campaigns`` stage, after scoring) and
:func:`measure_campaigns` (the ``measure`` stage of the ``affinity_campaigns`` DAG); the
stage bodies are in :mod:`ml.orchestration.stages`.
"""

from ml.campaigns.assignment import CONTROL, TREATMENT, assign_groups, is_control
from ml.campaigns.audiences import AudienceReport, build_audiences
from ml.campaigns.comparison import lift_statistics
from ml.campaigns.definitions import (
    Campaign,
    CampaignConfig,
    CampaignError,
    load_campaigns,
    validate_campaigns,
)
from ml.campaigns.insights import InsightsReport, build_insights
from ml.campaigns.measurement import MeasurementReport, measure_campaigns
from ml.campaigns.messages import TemplateError, validate_template
from ml.campaigns.replay import ReplayReport, replay_missed_launches
from ml.campaigns.rules import RuleError, parse_rule

__all__ = [
    "CONTROL",
    "TREATMENT",
    "AudienceReport",
    "Campaign",
    "CampaignConfig",
    "CampaignError",
    "InsightsReport",
    "MeasurementReport",
    "ReplayReport",
    "RuleError",
    "TemplateError",
    "assign_groups",
    "build_audiences",
    "build_insights",
    "is_control",
    "lift_statistics",
    "load_campaigns",
    "measure_campaigns",
    "parse_rule",
    "replay_missed_launches",
    "validate_campaigns",
    "validate_template",
]
