"""When a night retrains: the data moved enough since the last training, or a week passed.

Training every night re-fits on a history that grew by ~1 %, and a new champion makes every
customer's list change (every customer is re-scored). The pipeline's ``train`` stage
therefore trains only when one of these holds for its logical date ``L``:

1. there is no champion yet (a first run, or no model passed the gate so far: the last
   training recorded no ``champion_version``);
2. no training is recorded on or before ``L`` (a backfill before the first training, or a
   warehouse whose stage log was lost);
3. ``every_days`` or more days passed since the last training on or before ``L``
   (default 7: weekly, the cadence of the recipe search);
4. the interaction events grew by ``min_event_growth`` or more since that training
   (default 5 %: events dated after its logical date over the events up to it);
5. the catalogue grew by ``min_product_growth`` or more (default 5 %: products first seen
   after that training over the products known then); a product the model does not know
   gets only cold-start and text-based slots until the next training;
6. erasure requests arrived since that training (``raw.erasure_requests`` holds more
   than the training's summary recorded): the erased customers' rows are scrubbed from
   the served model at once (:mod:`ml.train.erasure`), and the retrain makes the next
   model one that never saw their data at all.

Otherwise the champion keeps serving and the stage says why (decision ``kept``). The DAG
param ``retrain=false`` skips training whatever the rule says. Settings come from
``AFFINITY_RETRAIN_EVERY_DAYS`` (0: every night), ``AFFINITY_RETRAIN_MIN_EVENT_GROWTH`` and
``AFFINITY_RETRAIN_MIN_PRODUCT_GROWTH``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from ml.dates import as_of_end, to_date
from ml.warehouse.tables import ML_SCHEMA, table_exists

# Train-stage decisions that did not train (the DAG's retrain=false; this rule).
NOT_TRAINED = frozenset({"skipped", "kept"})


@dataclass(frozen=True)
class RetrainRule:
    """Thresholds of the retrain rule (see the module docstring)."""

    every_days: int = 7
    min_event_growth: float = 0.05
    min_product_growth: float = 0.05

    @classmethod
    def from_env(cls) -> RetrainRule:
        """The rule with ``AFFINITY_RETRAIN_*`` overrides.

        Raises
        ------
        ValueError
            For a value that is not a number (the message names the variable).
        """
        values = {}
        for field, env, kind in (
            ("every_days", "AFFINITY_RETRAIN_EVERY_DAYS", int),
            ("min_event_growth", "AFFINITY_RETRAIN_MIN_EVENT_GROWTH", float),
            ("min_product_growth", "AFFINITY_RETRAIN_MIN_PRODUCT_GROWTH", float),
        ):
            text = os.environ.get(env, "").strip()
            if text:
                try:
                    values[field] = kind(text)
                except ValueError as error:
                    raise ValueError(f"{env}={text!r} is not a {kind.__name__}") from error
        return cls(**values)


@dataclass(frozen=True)
class DataMovement:
    """What moved since the last training (inputs of :func:`retrain_decision`).

    Attributes
    ----------
    last_trained : date or None
        Logical date of the last training on or before the run's date.
    champion_version : str or None
        The champion that training left (its stage summary); None: none passed the gate.
    events_before, events_since : int
        Interaction events dated up to the end of ``last_trained`` and after it (up to the
        end of the run's date).
    products_before, products_since : int
        Products first seen up to the end of ``last_trained`` and after it.
    erased_since : int
        Erasure requests loaded since that training.
    """

    last_trained: date | None
    champion_version: str | None = None
    events_before: int = 0
    events_since: int = 0
    products_before: int = 0
    products_since: int = 0
    erased_since: int = 0


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to train, and why (for the stage summary and the logs)."""

    retrain: bool
    reason: str


def _growth(since: int, before: int) -> float:
    return since / before if before else (float("inf") if since else 0.0)


def retrain_decision(
    day: date, moved: DataMovement, rule: RetrainRule | None = None
) -> RetrainDecision:
    """Apply the rule for logical date ``day`` (pure: no I/O)."""
    rule = rule or RetrainRule()
    if moved.last_trained is None:
        return RetrainDecision(True, f"no training recorded on or before {day}")
    if not moved.champion_version:
        return RetrainDecision(True, "no champion yet")
    if moved.erased_since > 0:
        return RetrainDecision(
            True,
            f"{moved.erased_since} erasure request(s) since {moved.last_trained}: the next "
            "model must not have seen their data",
        )
    age = (day - moved.last_trained).days
    if age >= rule.every_days:
        return RetrainDecision(
            True, f"last trained {age} day(s) ago (>= every_days {rule.every_days})"
        )
    events = _growth(moved.events_since, moved.events_before)
    if events >= rule.min_event_growth:
        return RetrainDecision(
            True,
            f"events grew {events:.1%} since {moved.last_trained} (>= {rule.min_event_growth:.0%})",
        )
    products = _growth(moved.products_since, moved.products_before)
    if products >= rule.min_product_growth:
        return RetrainDecision(
            True,
            f"catalogue grew {products:.1%} since {moved.last_trained} "
            f"(>= {rule.min_product_growth:.0%})",
        )
    return RetrainDecision(
        False,
        f"trained {age} day(s) ago on {moved.last_trained}; since then events +{events:.1%}, "
        f"products +{products:.1%} (retrain at {rule.min_event_growth:.0%} / "
        f"{rule.min_product_growth:.0%} or after {rule.every_days} days)",
    )


def last_training(con: duckdb.DuckDBPyConnection, day: date) -> tuple[date, dict] | None:
    """The latest logical date on or before ``day`` whose train stage trained, with the
    stage's summary (read from the stage log: a night that keeps the model never starts
    MLflow)."""
    if not table_exists(con, ML_SCHEMA, "stage_runs"):
        return None
    rows = con.execute(
        f"SELECT logical_date, detail FROM {ML_SCHEMA}.stage_runs "
        "WHERE stage = 'train' AND logical_date <= ? ORDER BY logical_date DESC",
        [day],
    ).fetchall()
    for logical_date, detail in rows:
        summary = json.loads(detail) if isinstance(detail, str) else dict(detail or {})
        if summary.get("decision") not in NOT_TRAINED:
            return to_date(logical_date), summary
    return None


def erasure_requests(con: duckdb.DuckDBPyConnection) -> int:
    """Erasure requests loaded so far (0 without the table)."""
    if not table_exists(con, "raw", "erasure_requests"):
        return 0
    return int(con.execute("SELECT count(*) FROM raw.erasure_requests").fetchall()[0][0])


def observe(con: duckdb.DuckDBPyConnection, day: date) -> DataMovement:
    """Measure in the warehouse marts what moved between the last training and ``day``."""
    found = last_training(con, day)
    if found is None:
        return DataMovement(None)
    trained, summary = found
    champion = summary.get("champion_version")
    cut, end = as_of_end(trained), as_of_end(day)
    events_before, events_since = con.execute(
        "SELECT count(*) FILTER (WHERE occurred_at < ?), "
        "count(*) FILTER (WHERE occurred_at >= ? AND occurred_at < ?) "
        "FROM marts.interaction_events",
        [cut, cut, end],
    ).fetchall()[0]
    products_before, products_since = con.execute(
        "SELECT count(*) FILTER (WHERE first_seen_at < ?), "
        "count(*) FILTER (WHERE first_seen_at >= ? AND first_seen_at < ?) "
        "FROM marts.dim_products",
        [cut, cut, end],
    ).fetchall()[0]
    return DataMovement(
        trained,
        str(champion) if champion else None,
        int(events_before),
        int(events_since),
        int(products_before),
        int(products_since),
        max(0, erasure_requests(con) - int(summary.get("erasure_requests") or 0)),
    )


def next_training_due(moved: DataMovement, rule: RetrainRule) -> date | None:
    """The date the weekly clause retrains at the latest (None: untrained)."""
    return moved.last_trained + timedelta(days=rule.every_days) if moved.last_trained else None
