"""Write every message of a campaign arm: guardrails, one regeneration, fallback, cache.

For each brief the arm's writer drafts a message and the guardrails check it. A failing
draft is regenerated once, told what it broke; a second failure (or an endpoint that
fails after its retries) falls back to the built-in writer, whose drafts pass the same
checks (and whose last resort, a message naming no product, always does). Every failed
attempt counts its rules in :attr:`CopyReport.failure_reasons`, every fallback its
reason in :attr:`CopyReport.fallback_reasons`. After ``max_consecutive_failures``
endpoint failures in a row the endpoint is not called again in this run.

Final outcomes of cacheable writers go to the :class:`~ml.campaigns.copy.cache.CopyCache`
(except endpoint failures, which the next run retries).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ml.campaigns.copy.brief import CopyBrief
from ml.campaigns.copy.builtin import BuiltinWriter
from ml.campaigns.copy.cache import CopyCache
from ml.campaigns.copy.guardrails import Draft, Guardrails, Violation
from ml.campaigns.copy.llm import LLMError, UnparseableReply

log = logging.getLogger(__name__)


class Writer(Protocol):
    """What the runner needs of a writer."""

    name: str
    version: str
    model: str | None
    cacheable: bool

    def write(self, brief: CopyBrief, feedback: list[str] | None = None) -> Draft: ...


class CopyError(RuntimeError):
    """Not even the built-in fallback passes the guardrails (a misconfigured channel)."""


@dataclass(frozen=True)
class CopyOutcome:
    """The final message of one brief and how it came about."""

    draft: Draft
    produced_by: str
    first_attempt_passed: bool
    regenerated: bool = False
    fallback_reason: str | None = None
    cached: bool = False


@dataclass
class CopyReport:
    """Counts of one arm's copy run (what :mod:`ml.campaigns.copy.tracking` logs)."""

    writer: str
    version: str
    model: str | None
    messages: int = 0
    first_attempt_passed: int = 0
    regenerated: int = 0
    fallbacks: int = 0
    final_failures: int = 0
    cache_hits: int = 0
    endpoint_requests: int = 0
    endpoint_retries: int = 0
    seconds: float = 0.0
    failure_reasons: Counter = field(default_factory=Counter)
    fallback_reasons: Counter = field(default_factory=Counter)
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def guardrail_pass_rate(self) -> float | None:
        """Share of messages whose first draft passed every guardrail."""
        return self.first_attempt_passed / self.messages if self.messages else None

    def metrics(self) -> dict[str, float]:
        """Numeric figures for MLflow."""
        figures = {
            "messages": self.messages,
            "first_attempt_passed": self.first_attempt_passed,
            "regenerated": self.regenerated,
            "fallbacks": self.fallbacks,
            "final_failures": self.final_failures,
            "cache_hits": self.cache_hits,
            "endpoint_requests": self.endpoint_requests,
            "endpoint_retries": self.endpoint_retries,
            "seconds": round(self.seconds, 3),
        }
        if self.messages:
            figures["guardrail_pass_rate"] = self.first_attempt_passed / self.messages
            figures["fallback_rate"] = self.fallbacks / self.messages
        figures |= {f"failures_{k}": v for k, v in sorted(self.failure_reasons.items())}
        figures |= {f"fallbacks_{k}": v for k, v in sorted(self.fallback_reasons.items())}
        return figures


class CopyRunner:
    """Writes messages for one arm (one writer) of one campaign.

    Parameters
    ----------
    writer : Writer or None
        The arm's writer; ``None`` for a writer that is not configured (an ``llm`` arm
        without ``AFFINITY_LLM_BASE_URL``): every message falls back, counted as
        ``not_configured``.
    guardrails : Guardrails
    fallback : BuiltinWriter
    cache : CopyCache, optional
    writer_name : str, optional
        The arm's name when ``writer`` is ``None``.
    samples : int
        Messages kept in the report as samples.
    max_consecutive_failures : int
        Endpoint failures in a row after which the endpoint is not called again.
    """

    def __init__(
        self,
        writer: Writer | None,
        guardrails: Guardrails,
        fallback: BuiltinWriter,
        *,
        cache: CopyCache | None = None,
        writer_name: str | None = None,
        samples: int = 5,
        max_consecutive_failures: int = 5,
    ) -> None:
        self.writer = writer
        self.guardrails = guardrails
        self.fallback = fallback
        self.cache = cache if writer is not None and writer.cacheable else None
        name = writer.name if writer is not None else (writer_name or "unknown")
        self.report = CopyReport(
            name,
            writer.version if writer is not None else "-",
            writer.model if writer is not None else None,
        )
        self._samples = samples
        self._max_failures = max_consecutive_failures
        self._failures_in_a_row = 0
        self._disabled_reason = None if writer is not None else "not_configured"

    def write_all(self, briefs: Iterable[CopyBrief]) -> list[CopyOutcome]:
        """Write every brief (in order); updates :attr:`report`."""
        started = time.perf_counter()
        outcomes = [self.write(brief) for brief in briefs]
        self.report.seconds += time.perf_counter() - started
        client = getattr(self.writer, "client", None)
        if client is not None:
            self.report.endpoint_requests = client.requests
            self.report.endpoint_retries = client.retries
        return outcomes

    def write(self, brief: CopyBrief) -> CopyOutcome:
        """The final, guardrail-passing message of one brief."""
        outcome = self._write(brief)
        report = self.report
        report.messages += 1
        report.first_attempt_passed += outcome.first_attempt_passed
        report.regenerated += outcome.regenerated
        report.cache_hits += outcome.cached
        if outcome.fallback_reason:
            report.fallbacks += 1
            report.fallback_reasons[outcome.fallback_reason] += 1
        if len(report.samples) < self._samples:
            report.samples.append(
                {
                    "subject": outcome.draft.subject,
                    "body": outcome.draft.body,
                    "produced_by": outcome.produced_by,
                    "segment": brief.segment,
                }
            )
        return outcome

    def _write(self, brief: CopyBrief) -> CopyOutcome:
        writer = self.writer
        key = (
            brief.key(writer.name, writer.version, writer.model) if self.cache is not None else None
        )
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                draft, produced_by = hit
                return CopyOutcome(draft, produced_by, produced_by == writer.name, cached=True)
        if self._disabled_reason:
            return self._fall_back(brief, self._disabled_reason, first_attempt_passed=False)
        feedback: list[str] | None = None
        reason = "guardrails"
        for attempt in (0, 1):
            try:
                draft = writer.write(brief, feedback)
            except LLMError as error:
                return self._endpoint_failed(brief, error)
            except UnparseableReply as error:
                self._failures_in_a_row = 0
                problems = [Violation("unparseable", str(error))]
            else:
                self._failures_in_a_row = 0
                problems = self.guardrails.check(draft, brief)
                if not problems:
                    outcome = CopyOutcome(
                        draft, writer.name, attempt == 0, regenerated=attempt == 1
                    )
                    if key is not None:
                        self.cache.put(key, writer.name, draft, writer.name)
                    return outcome
            self.report.failure_reasons.update(p.rule for p in problems)
            reason = problems[0].rule
            feedback = [str(p) for p in problems]
        outcome = self._fall_back(brief, reason, first_attempt_passed=False)
        if key is not None:
            self.cache.put(key, writer.name, outcome.draft, outcome.produced_by)
        return outcome

    def _endpoint_failed(self, brief: CopyBrief, error: LLMError) -> CopyOutcome:
        self._failures_in_a_row += 1
        if self._failures_in_a_row >= self._max_failures:
            log.warning(
                "%s writer: %d endpoint failures in a row (last: %s); the rest of this run "
                "uses the built-in writer",
                self.report.writer,
                self._failures_in_a_row,
                error,
            )
            self._disabled_reason = "endpoint_unavailable"
        else:
            log.info("%s writer failed (%s): built-in fallback", self.report.writer, error)
        return self._fall_back(brief, "endpoint_error", first_attempt_passed=False)

    def _fall_back(
        self, brief: CopyBrief, reason: str, *, first_attempt_passed: bool
    ) -> CopyOutcome:
        for draft in (self.fallback.write(brief), self.fallback.fallback(brief)):
            problems = self.guardrails.check(draft, brief)
            if not problems:
                return CopyOutcome(
                    draft, self.fallback.name, first_attempt_passed, fallback_reason=reason
                )
            self.report.failure_reasons.update(f"builtin_{p.rule}" for p in problems)
        self.report.final_failures += 1
        raise CopyError(
            f"no message for the {brief.campaign_name!r} campaign passes the guardrails, not "
            f"even the built-in fallback ({'; '.join(map(str, problems))}): check the "
            f"channel {brief.channel!r} and its limits"
        )
