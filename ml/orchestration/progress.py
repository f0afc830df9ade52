"""What ``affinity run`` shows while the DAG runs: one line per stage, a live bar on a terminal.

The figures come from Airflow's metadata (:mod:`ml.orchestration.airflow_db`): each stage's
task instances (a dbt stage is one Cosmos task per model, a Python stage one task) and the
summary a Python stage returns (its XCom). Nothing is parsed out of the run's log.

:func:`stage_progress` and :func:`describe` are pure; :class:`ProgressPrinter` prints a
line when a stage finishes and, attached to a terminal, redraws one status line for the
running stage (a bar over its tasks for dbt stages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from ml.orchestration.airflow_db import RunState, TaskState
from ml.pipeline import DAILY, Stage

FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
# The stage names' column: as wide as the longest declared name, plus a space.
NAME_WIDTH = max(len(stage.name) for stage in DAILY) + 1


@dataclass(frozen=True)
class StageProgress:
    """Where one declared stage stands in a run."""

    name: str
    is_dbt: bool
    total: int
    done: int
    failed: tuple[str, ...]
    blocked: bool
    running: bool
    start: datetime | None
    end: datetime | None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done == self.total

    @property
    def seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()


def _belongs(task: TaskState, stage: Stage) -> bool:
    return task.task_id == stage.name or task.task_id.startswith(stage.name + ".")


def stage_progress(run: RunState, stages: tuple[Stage, ...]) -> list[StageProgress]:
    """Group the run's task instances by declared stage (a task group is its dbt stage)."""
    result = []
    for stage in stages:
        tasks = [t for t in run.tasks if _belongs(t, stage)]
        starts = [t.start for t in tasks if t.start is not None]
        done = [t for t in tasks if t.state in FINISHED]
        ends = [t.end for t in done if t.end is not None]
        summary = run.returns.get(stage.name)
        result.append(
            StageProgress(
                name=stage.name,
                is_dbt=stage.is_dbt,
                total=len(tasks),
                done=len(done),
                failed=tuple(t.task_id for t in tasks if t.state == "failed"),
                blocked=bool(tasks) and all(t.state == "upstream_failed" for t in tasks),
                running=any(t.state == "running" for t in tasks),
                start=min(starts) if starts else None,
                end=max(ends) if ends and len(done) == len(tasks) else None,
                summary=summary if isinstance(summary, dict) else {},
            )
        )
    return result


def duration(seconds: float | None) -> str:
    """``9.4s``, ``2m05s``, ``1h02m``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _rate(count: float, seconds: float | None) -> str:
    return f"{count / seconds:,.0f}/s" if seconds else "-"


def _ingest(s: dict[str, Any], seconds: float | None) -> str:
    received = s.get("received_rows", 0)
    return (
        f"{received:,} rows received = {s.get('loaded_rows', 0):,} loaded + "
        f"{s.get('quarantined_rows', 0):,} quarantined ({_rate(received, seconds)})"
    )


def _product_text(s: dict[str, Any], seconds: float | None) -> str:
    return (
        f"{s.get('products', 0):,} products: {s.get('embedded', 0):,} embedded, "
        f"{s.get('reused', 0):,} reused; {s.get('inferred', 0):,} given an inferred category "
        f"({s.get('categories', 0):,} categories); taxonomy {s.get('taxonomy', '?')}"
    )


def _review_insight(s: dict[str, Any], seconds: float | None) -> str:
    if not s.get("reviews"):
        return "no reviews"
    model = f"sentiment model v{s.get('model_version', '?')}"
    if s.get("trained"):
        model += f" trained ({s.get('decision', '?')})"
    auc = (s.get("metrics") or {}).get("roc_auc")
    if auc is not None:
        model += f", ROC AUC {auc:.3f}"
    return (
        f"{s['reviews']:,} reviews scored ({_rate(s['reviews'], seconds)}), aspects of "
        f"{s.get('products', 0):,} products; {model}"
    )


def _train(s: dict[str, Any], seconds: float | None) -> str:
    if s.get("decision") in ("skipped", "kept"):
        return f"{s['decision']} ({s.get('reason', '')})"
    ndcg = s.get("ndcg_at_10") or {}
    figures = ", ".join(
        f"{family} {value:.3f}" for family, value in sorted(ndcg.items()) if value is not None
    )
    version = s.get("model_version")
    return f"{s.get('decision', '?')} v{version}; NDCG@10 {figures}" if figures else str(s)


def _score(s: dict[str, Any], seconds: float | None) -> str:
    clusters = s.get("clusters") or []
    return (
        f"{s.get('recommendations', 0):,} recommendations "
        f"({_rate(s.get('recommendations', 0), seconds)}), "
        f"{s.get('similar_products', 0):,} similar products, {len(clusters)} clusters "
        f"(model {s.get('model_name', '?')} v{s.get('model_version', '?')})"
    )


def _campaigns(s: dict[str, Any], seconds: float | None) -> str:
    launched, measured = s.get("launched") or [], s.get("measured") or []
    replayed = sum(len(ids) for ids in (s.get("replayed") or {}).values())
    text = f"{len(launched)} launched, {len(measured)} measured"
    if replayed:
        text += f" ({replayed} missed launches replayed)"
    return text + f", {s.get('rows', 0):,} audience rows"


def _publish(s: dict[str, Any], seconds: float | None) -> str:
    counts = s.get("row_counts") or {}
    return f"{sum(counts.values()):,} rows in {len(counts)} tables"


_DESCRIBE: dict[str, Callable[[dict[str, Any], float | None], str]] = {
    "ingest": _ingest,
    "product_text": _product_text,
    "review_insight": _review_insight,
    "train": _train,
    "score": _score,
    "campaigns": _campaigns,
    "publish": _publish,
}


def describe(progress: StageProgress) -> str:
    """One line for a finished (or failed) stage: name, time, what it did."""
    head = f"  {progress.name:<{NAME_WIDTH}}{duration(progress.seconds):>7}  "
    if progress.failed:
        return head + f"FAILED: {', '.join(progress.failed)}"
    if progress.blocked:
        return head + "not run: an earlier stage failed"
    if progress.is_dbt:
        if progress.total == 1:  # one `dbt build` task (the default)
            return head + "dbt build (models, seeds, tests) passed"
        return head + f"{progress.total} dbt tasks (models, seeds, tests) passed"
    text = _DESCRIBE.get(progress.name)
    if text is not None and progress.summary:
        try:
            return head + text(progress.summary, progress.seconds)
        except (TypeError, ValueError, AttributeError):  # an unexpected summary: say it plainly
            pass
    rows = progress.summary.get("rows")
    return head + (f"{rows:,} rows" if isinstance(rows, int) else "done")


def bar(done: int, total: int, width: int = 24) -> str:
    """``[#########---------------]``."""
    filled = 0 if total <= 0 else int(width * done / total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def status_line(progress: StageProgress, now: datetime) -> str:
    """The live line of a running stage (terminal only)."""
    elapsed = duration((now - progress.start).total_seconds() if progress.start else None)
    head = f"  {progress.name:<{NAME_WIDTH}}"
    if progress.total > 1:
        return (
            head
            + f"{bar(progress.done, progress.total)} {progress.done}/{progress.total} tasks  {elapsed}"
        )
    return head + f"running  {elapsed}"


class ProgressPrinter:
    """Print stage lines as stages finish; on a terminal, keep one live status line.

    Parameters
    ----------
    stream : text stream
        Where to print (``sys.stdout``).
    stages : tuple of Stage
        The declared pipeline (its order is the print order).
    live : bool
        Redraw a status line for the running stage (only on a terminal).
    clock : callable
        Naive-UTC "now" (tests pass a fixed one).
    """

    def __init__(
        self,
        stream: TextIO,
        stages: tuple[Stage, ...],
        *,
        live: bool,
        clock: Callable[[], datetime],
    ):
        self.stream = stream
        self.stages = stages
        self.live = live
        self.clock = clock
        self.reported: set[str] = set()
        self._status = False

    def line(self, text: str) -> None:
        """Print a whole line (clearing the live status line first)."""
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, run: RunState) -> None:
        """Print the lines of stages finished since the last call; redraw the live line."""
        running = None
        for progress in stage_progress(run, self.stages):
            if progress.name in self.reported:
                continue
            if progress.finished:
                self.reported.add(progress.name)
                self.line(describe(progress))
                continue
            if running is None and (progress.running or progress.done):
                running = progress
        if running is not None:
            self.status(status_line(running, self.clock()))

    def status(self, text: str) -> None:
        """Redraw the live status line (nothing when not live)."""
        if not self.live:
            return
        self._clear()
        self.stream.write(text)
        self.stream.flush()
        self._status = True

    def close(self) -> None:
        """Clear the live line (before the summary)."""
        self._clear()

    def _clear(self) -> None:
        if self._status:
            self.stream.write("\r\033[K")
            self._status = False
