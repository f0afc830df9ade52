"""Settings of the copy step and the writers a campaign may name."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ml.campaigns.copy.guardrails import DEFAULT_BANNED_PHRASES
from ml.campaigns.copy.llm import LLMSettings

WRITER_NAMES = ("builtin", "llm", "template")


@dataclass(frozen=True)
class CopyConfig:
    """How campaign copy is written.

    Parameters
    ----------
    seed : int
        Seed of the built-in writer's phrasing choices and of the A/B arm hash.
    currency : str
        Currency symbol of prices in copy (``AFFINITY_CURRENCY``, default ``£``).
    banned_phrases : tuple of str
        Phrases no message may contain.
    llm : LLMSettings or None
        The endpoint of the ``llm`` writer (default: from ``AFFINITY_LLM_*``).
    use_cache : bool
        Keep final drafts of cacheable writers in ``$AFFINITY_HOME/copy_cache.sqlite``.
    log_to_mlflow : bool
        Log each campaign arm's copy run to the MLflow experiment ``experiment``.
    samples : int
        Messages per run kept as samples (MLflow artifact, report).
    experiment : str
        MLflow experiment of copy runs.
    """

    seed: int = 0
    currency: str = field(default_factory=lambda: os.environ.get("AFFINITY_CURRENCY", "£"))
    banned_phrases: tuple[str, ...] = DEFAULT_BANNED_PHRASES
    llm: LLMSettings | None = field(default_factory=LLMSettings.from_env)
    use_cache: bool = True
    log_to_mlflow: bool = True
    samples: int = 5
    experiment: str = "affinity-campaign-copy"
