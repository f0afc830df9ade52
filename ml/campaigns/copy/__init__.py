"""Campaign copy: a message per treated customer, written from a brief, guarded, cached.

Modules
-------
:mod:`.brief`       what a writer may know (no ids, no PII), channel limits, goals
:mod:`.builtin`     the built-in writer (phrase banks; nothing to install)
:mod:`.llm`         the optional writer behind an OpenAI-compatible endpoint (no model bundled)
:mod:`.template`    the campaign's own Jinja template, as a writer (for A/B against it)
:mod:`.guardrails`  the checks every message passes
:mod:`.runner`      guardrails, one regeneration, built-in fallback, counts
:mod:`.cache`       final drafts by hash of (brief, writer, version, model)
:mod:`.tracking`    the MLflow record of a copy run
:mod:`.settings`    :class:`CopyConfig`

The campaign step calls it through :func:`ml.campaigns.messaging.campaign_copy`.
"""

from ml.campaigns.copy.brief import (
    CHANNEL_LIMITS,
    FIRST_NAME,
    GOALS,
    BriefProduct,
    ChannelLimits,
    CopyBrief,
    brief_products,
    infer_goal,
    limits_for,
)
from ml.campaigns.copy.builtin import BuiltinWriter
from ml.campaigns.copy.cache import CopyCache
from ml.campaigns.copy.guardrails import Draft, Guardrails, Violation
from ml.campaigns.copy.llm import ChatClient, LLMError, LLMSettings, LLMWriter
from ml.campaigns.copy.runner import CopyError, CopyOutcome, CopyReport, CopyRunner
from ml.campaigns.copy.settings import WRITER_NAMES, CopyConfig
from ml.campaigns.copy.template import TemplateWriter

__all__ = [
    "CHANNEL_LIMITS",
    "FIRST_NAME",
    "GOALS",
    "WRITER_NAMES",
    "BriefProduct",
    "BuiltinWriter",
    "ChannelLimits",
    "ChatClient",
    "CopyBrief",
    "CopyCache",
    "CopyConfig",
    "CopyError",
    "CopyOutcome",
    "CopyReport",
    "CopyRunner",
    "Draft",
    "Guardrails",
    "LLMError",
    "LLMSettings",
    "LLMWriter",
    "TemplateWriter",
    "Violation",
    "brief_products",
    "infer_goal",
    "limits_for",
]
