"""Run the dbt project (``dbt_project/``) in-process: raw.* -> staging -> intermediate -> marts.

:func:`run_dbt` is the one way Affinity calls dbt. It points dbt at the Affinity home:

* ``AFFINITY_HOME`` (absolute) -- ``profiles.yml`` puts the warehouse at
  ``$AFFINITY_HOME/warehouse.duckdb``;
* ``DBT_PROFILES_DIR`` / ``DBT_PROJECT_DIR`` -- the project directory, whose ``profiles.yml``
  holds the dev and prod targets;
* ``DBT_TARGET_PATH`` / ``DBT_LOG_PATH`` -- ``$AFFINITY_HOME/dbt/{target,logs}``, so nothing is
  written into the repository;

then calls :class:`dbt.cli.main.dbtRunner` and turns a failure into a :class:`RuntimeError`
naming the failed nodes. The environment is restored afterwards.

:func:`build_features` and :func:`build_outputs` are the pipeline's two dbt stages (their
selections are declared in :mod:`ml.pipeline`); :func:`parse_dbt_project` writes the manifest
the DAG renders its dbt tasks from.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ml.config import DBT_PROJECT_DIR, Paths, affinity_home
from ml.dates import normalize_as_of
from ml.engine import dbt_target
from ml.pipeline import FEATURE_SELECTION, OUTPUT_SELECTION

log = logging.getLogger(__name__)

# dbt commands that run SQL against the warehouse (parse, compile, ls, docs do not need it).
WAREHOUSE_COMMANDS = frozenset({"build", "run", "test", "seed", "snapshot", "run-operation"})

# Statuses of nodes that did not succeed (dbt's RunStatus / TestStatus values).
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})


class DbtError(RuntimeError):
    """A dbt command failed; ``failures`` lists ``(unique_id, status, message)``."""

    def __init__(self, message: str, failures: list[tuple[str, str, str]] | None = None):
        super().__init__(message)
        self.failures = failures or []


def dbt_env(home: Path) -> dict[str, str]:
    """Return the environment dbt runs with for an Affinity home (absolute paths)."""
    paths = Paths(home)
    return {
        "AFFINITY_HOME": str(home),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
        "DBT_TARGET_PATH": str(paths.dbt_target),
        "DBT_LOG_PATH": str(paths.dbt_logs),
        # The target follows the home's engine (dev: DuckDB, spark: Spark) unless set.
        "AFFINITY_DBT_TARGET": dbt_target(home),
        # No network, no user cookie (.user.yml) in the repository.
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
        # Colour codes only on a terminal (not in log files, pipes or Airflow task logs).
        "DBT_USE_COLORS": os.environ.get("DBT_USE_COLORS")
        or ("true" if _stdout_is_terminal() else "false"),
        "DBT_USE_COLORS_FILE": os.environ.get("DBT_USE_COLORS_FILE", "false"),
    }


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore the previous values."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _with_vars(args: list[str], extra: dict[str, Any]) -> list[str]:
    """Merge ``extra`` into the ``--vars`` of ``args`` (adding the option if absent)."""
    import yaml

    args = list(args)
    for i, arg in enumerate(args):
        if arg == "--vars" and i + 1 < len(args):
            merged = dict(yaml.safe_load(args[i + 1]) or {})
            merged.update(extra)
            args[i + 1] = json.dumps(merged)
            return args
        if arg.startswith("--vars="):
            merged = dict(yaml.safe_load(arg.split("=", 1)[1]) or {})
            merged.update(extra)
            args[i] = "--vars=" + json.dumps(merged)
            return args
    return [*args, "--vars", json.dumps(extra)]


def release_dbt_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a command.

    dbt-duckdb caches one DuckDB instance per process (``DuckDBConnectionManager._ENV``) and
    does not always close it when a command ends. While it is open, any other connection of
    this process with another configuration (e.g. ``read_only=True``) fails, and other
    processes cannot open the file at all. The next dbt command simply reopens it.
    :func:`run_dbt` calls it after every command; other in-process dbt invocations (e.g.
    Cosmos in ``DBT_RUNNER`` mode) can call it the same way.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is part of the stack
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        if env is not None:
            try:
                env.close()
            except Exception as exc:  # closing must not mask the command's outcome
                log.debug("closing the dbt-duckdb environment failed: %s", exc)
        DuckDBConnectionManager.close_all_connections()


def _node_results(result: Any) -> list[Any]:
    """The per-node results of a dbt invocation (empty for commands without any)."""
    return list(getattr(getattr(result, "result", None), "results", None) or [])


def _failures(result: Any) -> list[tuple[str, str, str]]:
    failures = []
    for node_result in _node_results(result):
        status = str(getattr(node_result.status, "value", node_result.status))
        if status in FAILED_STATUSES:
            message = (node_result.message or "").strip().replace("\n", " ")
            failures.append((node_result.node.unique_id, status, message[:500]))
    return failures


def _log_timings(command: str, result: Any, seconds: float) -> None:
    nodes = _node_results(result)
    counts: dict[str, int] = {}
    for node_result in nodes:
        status = str(getattr(node_result.status, "value", node_result.status))
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    log.info("dbt %s finished in %.1fs%s", command, seconds, f" ({summary})" if summary else "")
    slowest = sorted(nodes, key=lambda r: r.execution_time or 0.0, reverse=True)
    for node_result in slowest[:5]:
        log.info("  %6.2fs  %s", node_result.execution_time or 0.0, node_result.node.unique_id)
    for node_result in slowest[5:]:
        log.debug("  %6.2fs  %s", node_result.execution_time or 0.0, node_result.node.unique_id)


def run_dbt(
    args: Sequence[str],
    *,
    as_of: str | date | datetime | None = None,
    home: Path | str | None = None,
):
    """Invoke a dbt command in-process against the Affinity warehouse.

    Parameters
    ----------
    args : sequence of str
        dbt arguments, e.g. ``["build", "--select", "marts"]``.
    as_of : str, date or datetime, optional
        The run's logical date, given to dbt as ``AFFINITY_AS_OF`` (``macros/as_of.sql``;
        a ``--vars`` ``as_of`` in ``args`` wins). Without it: 2100-01-01, everything loaded.
    home : path-like, optional
        Affinity home; defaults to ``$AFFINITY_HOME`` (see :mod:`ml.config`).

    Returns
    -------
    dbt.cli.main.dbtRunnerResult
        The successful result (``.result`` holds the per-node results of run-like commands).

    Raises
    ------
    DbtError
        (a :class:`RuntimeError`) if dbt raised or any node failed; the message names the
        failed nodes and their errors.
    """
    from dbt.cli.main import dbtRunner

    from ml.spark import hooks as spark_hooks

    home = Path(home).expanduser().resolve() if home is not None else affinity_home()
    paths = Paths(home)
    for directory in (home, paths.dbt_target, paths.dbt_logs):
        directory.mkdir(parents=True, exist_ok=True)
    cli_args = [str(a) for a in args]
    # The date goes in the environment, not --vars: a var that changes every night
    # invalidates dbt's partial parse (macros/as_of.sql reads AFFINITY_AS_OF when executing).
    environment = {
        **dbt_env(home),
        "AFFINITY_AS_OF": normalize_as_of(as_of) if as_of is not None else "",
    }
    command = " ".join(a for a in cli_args[:2] if not a.startswith("-"))

    log.info("dbt %s", " ".join(cli_args))
    started = time.perf_counter()
    with _environment(environment):
        # Spark homes: the session and the sources dbt reads, for commands that run SQL
        # (a parse must not start Spark: its process would hold the Derby metastore).
        touches_warehouse = bool(cli_args) and cli_args[0] in WAREHOUSE_COMMANDS
        if touches_warehouse:
            spark_hooks.before_dbt()
        try:
            result = dbtRunner().invoke(cli_args)
        finally:
            release_dbt_warehouse()
        if touches_warehouse:
            spark_hooks.expose_to_duckdb()  # Spark homes: what dbt built, as DuckDB views
    seconds = time.perf_counter() - started

    if result.exception is not None:
        raise DbtError(f"dbt {command} failed: {result.exception}") from result.exception
    failures = _failures(result)
    if not result.success or failures:
        lines = [f"  {uid} [{status}]: {message}" for uid, status, message in failures]
        detail = "\n".join(lines) if lines else "  (no node failed; see the dbt log)"
        raise DbtError(
            f"dbt {command} failed after {seconds:.1f}s ({len(failures)} failed node(s); "
            f"log: {paths.dbt_logs / 'dbt.log'}):\n{detail}",
            failures,
        )
    _log_timings(command, result, seconds)
    return result


@dataclass
class FeatureBuild:
    """What :func:`build_features` did."""

    as_of: str
    seconds: float
    statuses: dict[str, int] = field(default_factory=dict)
    node_seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.statuses.items()))
        return f"dbt build as of {self.as_of}: {counts} in {self.seconds:.1f}s"


def build_features(
    as_of: str | date | datetime,
    *,
    full_refresh: bool = False,
    home: Path | str | None = None,
) -> FeatureBuild:
    """Build the seeds and the staging, intermediate and marts models as of ``as_of``.

    One ``dbt build`` loads the seeds, runs the unit tests, builds every model and runs its
    data tests in DAG order (a failing test stops its downstream models).

    Parameters
    ----------
    as_of : str, date or datetime
        The run's logical date; marts hold what was known at the end of that day.
    full_refresh : bool
        Rebuild the incremental facts (and seeds) from scratch instead of syncing them.
    home : path-like, optional
        Affinity home (default ``$AFFINITY_HOME``).

    Raises
    ------
    DbtError
        If a model, test or unit test fails.
    """
    as_of = normalize_as_of(as_of)
    args = ["build", "--select", *FEATURE_SELECTION]
    if full_refresh:
        args.append("--full-refresh")
    started = time.perf_counter()
    result = run_dbt(args, as_of=as_of, home=home)
    report = FeatureBuild(as_of=as_of, seconds=time.perf_counter() - started)
    for node_result in _node_results(result):
        status = str(getattr(node_result.status, "value", node_result.status))
        report.statuses[status] = report.statuses.get(status, 0) + 1
        report.node_seconds[node_result.node.unique_id] = node_result.execution_time or 0.0
    log.info("%s", report.summary())
    return report


def build_outputs(logical_date: str | date | datetime | None = None, *, home=None) -> None:
    """Build (and test) the output marts: the pipeline's ``dbt_outputs`` stage.

    Call it after the ML steps (score, campaigns) and before the publish.
    """
    as_of = normalize_as_of(logical_date) if logical_date is not None else None
    run_dbt(["build", "--select", *OUTPUT_SELECTION], as_of=as_of, home=home)


# The Cosmos task groups of affinity_daily, by their cache identifier (<dag>__<group>).
DBT_TASK_GROUPS = ("affinity_daily__dbt_features", "affinity_daily__dbt_outputs")


def parse_dbt_project(home: Path | str | None = None, as_of: str | None = None) -> Path:
    """Parse the dbt project and save the manifest the DAG renders its dbt tasks from.

    With ``as_of`` (the run's logical date) the parse uses the same ``--vars`` as the
    DAG's dbt tasks, and its partial-parse file seeds each task group's Cosmos cache: a
    changed var makes dbt re-parse the whole project, which the first task of each group
    would otherwise do (10-20 s each on a loaded machine).
    """
    where = Paths(Path(home).resolve()) if home else Paths(affinity_home())
    # dbt hashes the --profile and --target arguments with the vars: pass them as Cosmos does.
    target = dbt_target(where.home)
    args = ["parse", "--profile", "affinity", "--target", target]
    if as_of:  # Cosmos tasks pass the date as a var: parse with the same vars
        args = _with_vars(args, {"as_of": normalize_as_of(as_of)})
    run_dbt(args, home=where.home)
    where.dbt_manifest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(where.dbt_target / "manifest.json", where.dbt_manifest)
    partial_parse = where.dbt_target / "partial_parse.msgpack"
    if as_of and partial_parse.exists():
        for group in DBT_TASK_GROUPS:
            cache = where.cosmos_cache / group / "target"
            cache.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(partial_parse, cache / "partial_parse.msgpack")
    return where.dbt_manifest
