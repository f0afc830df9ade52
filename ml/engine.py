"""Which engine builds a home's warehouse: DuckDB (the default) or Apache Spark.

``AFFINITY_ENGINE=duckdb|spark`` (or ``affinity run --engine spark``) chooses it. A home is
built by one engine for its whole life: the first run records the choice in
``$AFFINITY_HOME/engine`` and every later run must ask for the same one (a DuckDB
warehouse and a Spark lake do not hold the same tables, so a silent switch would publish
a mix). Switching means a new home, or deleting the record together with the old
warehouse on purpose.

The dbt target follows the engine (``dev`` for DuckDB, ``spark`` for Spark) unless
``AFFINITY_DBT_TARGET`` names another one (``prod``, or a cluster target such as
``spark_thrift``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[Engine, ...] = ("duckdb", "spark")
DEFAULT_ENGINE: Engine = "duckdb"
ENGINE_FILE = "engine"
# The dbt target each engine builds with when AFFINITY_DBT_TARGET is not set.
DEFAULT_TARGETS: dict[str, str] = {"duckdb": "dev", "spark": "spark"}


class EngineMismatch(RuntimeError):
    """The home was built by one engine and a run asked for the other."""


def _home(home: Path | str | None) -> Path:
    from ml.config import affinity_home

    return Path(home).expanduser().resolve() if home is not None else affinity_home()


def validate_engine(name: str) -> Engine:
    """Return ``name`` as an :data:`Engine`; raise ``ValueError`` naming the choices."""
    value = (name or "").strip().lower()
    if value not in ENGINES:
        raise ValueError(f"engine {name!r} is not one of {', '.join(ENGINES)} (AFFINITY_ENGINE)")
    return value  # type: ignore[return-value]


def requested_engine() -> Engine:
    """The engine this process asks for: ``AFFINITY_ENGINE``, else the default (duckdb)."""
    return validate_engine(os.environ.get("AFFINITY_ENGINE") or DEFAULT_ENGINE)


def recorded_engine(home: Path | str | None = None) -> Engine | None:
    """The engine recorded in the home, ``None`` for a home no run has recorded yet.

    A home with a warehouse but no record predates the setting: DuckDB built it.
    """
    root = _home(home)
    record = root / ENGINE_FILE
    if record.exists():
        return validate_engine(record.read_text().strip())
    if (root / "warehouse.duckdb").exists():
        return "duckdb"
    return None


def record_engine(engine: str | None = None, home: Path | str | None = None) -> Engine:
    """Check ``engine`` (default: the requested one) against the home and record it.

    Returns
    -------
    Engine
        The home's engine.

    Raises
    ------
    EngineMismatch
        The home was built by the other engine.
    """
    chosen = validate_engine(engine) if engine else requested_engine()
    root = _home(home)
    existing = recorded_engine(root)
    if existing is not None and existing != chosen:
        raise EngineMismatch(
            f"{root} was built with the {existing} engine and this run asks for {chosen}: "
            f"a home keeps one engine. Use another AFFINITY_HOME for {chosen} (or unset "
            f"AFFINITY_ENGINE / pass --engine {existing} to keep using this one)."
        )
    root.mkdir(parents=True, exist_ok=True)
    record = root / ENGINE_FILE
    if not record.exists() or record.read_text().strip() != chosen:
        record.write_text(chosen + "\n")
    return chosen


def active_engine(home: Path | str | None = None) -> Engine:
    """The engine of this process's work on the home: the recorded one, checked against
    an explicit ``AFFINITY_ENGINE``; the requested one for a home not recorded yet."""
    existing = recorded_engine(home)
    if existing is None:
        return requested_engine()
    if os.environ.get("AFFINITY_ENGINE") and requested_engine() != existing:
        return record_engine(home=home)  # raises EngineMismatch with the explanation
    return existing


def is_spark(home: Path | str | None = None) -> bool:
    """Whether the home is (or will be) built by Spark."""
    return active_engine(home) == "spark"


def dbt_target(home: Path | str | None = None) -> str:
    """The dbt target of this process: ``AFFINITY_DBT_TARGET``, else the engine's default."""
    return os.environ.get("AFFINITY_DBT_TARGET") or DEFAULT_TARGETS[active_engine(home)]


def dbt_tasks_per_model(home: Path | str | None = None) -> bool:
    """Whether the DAG runs a dbt stage as a Cosmos task per model or as one task.

    One ``dbt build`` task per stage by default, on both engines: a Cosmos task per model
    costs about 1 s of start-up each on DuckDB (47 a night) and a session handshake and a
    project load on Spark (about 10 s each in local mode). ``AFFINITY_DBT_TASKS=models``
    renders a task per model (a failed model retries alone; needs the parsed manifest).
    """
    choice = (os.environ.get("AFFINITY_DBT_TASKS") or "stage").strip().lower()
    if choice in ("model", "models"):
        return True
    if choice == "stage":
        return False
    raise ValueError(f"AFFINITY_DBT_TASKS={choice!r}: use stage (default) or models")
