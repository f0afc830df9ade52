"""Run stages of the declared pipeline (:mod:`ml.pipeline`) in this process.

The Airflow tasks, ``affinity run``'s DAG, every ``affinity`` sub-command, the reliability
tests and the benchmarks all go through :func:`run_stage`, so a stage does the same thing
wherever it runs: it lets go of dbt's DuckDB handle, runs (a Python function or a dbt
build), and records its rows and seconds in ``ml.stage_runs`` under its declared name.
"""

from __future__ import annotations

import importlib
import logging
import math
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ml.dates import normalize_as_of, to_date
from ml.pipeline import DAILY, RunContext, Stage, stage, stages_between

log = logging.getLogger(__name__)


def stage_function(declared: Stage) -> Callable[[RunContext], dict[str, Any]]:
    """Import the ``module:function`` of a Python stage."""
    module, _, name = declared.run.partition(":")
    return getattr(importlib.import_module(module), name)


def _run_dbt_stage(declared: Stage, ctx: RunContext) -> dict[str, Any]:
    from ml.warehouse.dbt import run_dbt

    if not ctx.logical_date:
        raise ValueError(f"stage {declared.name} needs a logical date (--as-of YYYY-MM-DD)")
    args = ["build", "--select", *declared.dbt_select]
    if ctx.full_refresh:
        args.append("--full-refresh")
    result = run_dbt(args, as_of=normalize_as_of(ctx.logical_date))
    statuses: dict[str, int] = {}
    for node in getattr(getattr(result, "result", None), "results", None) or []:
        status = str(getattr(node.status, "value", node.status))
        statuses[status] = statuses.get(status, 0) + 1
    return {"rows": sum(statuses.values()), "nodes": statuses}


def _record(declared: Stage, ctx: RunContext, seconds: float, summary: dict[str, Any]) -> None:
    from ml.warehouse import connect
    from ml.warehouse.stage_log import record_stage

    rows = summary.get("rows", summary.get("loaded_rows", 0))
    with connect() as con:
        record_stage(
            con,
            to_date(ctx.logical_date),
            declared.name,
            rows=int(rows) if isinstance(rows, int | float) else 0,
            seconds=seconds,
            detail=summary,
        )


def run_stage(name: str, ctx: RunContext, pipeline: tuple[Stage, ...] = DAILY) -> dict[str, Any]:
    """Run one declared stage for ``ctx`` and return its summary (plain data).

    Every stage is idempotent for its logical date: running it again replaces its
    outputs. The stage's seconds land in ``ml.stage_runs`` (not for ``publish``, whose own
    timing is part of the snapshot it publishes, nor without a logical date).

    Raises
    ------
    LookupError
        For an unknown stage name.
    """
    from ml.locking import writer_lock

    declared = stage(name, pipeline)
    # A stage writes the home: under its run's lock (a no-op inside `affinity run`, whose
    # DAG inherits it, and inside a CLI command, which holds it), else taken for the stage.
    with writer_lock(purpose=f"stage {declared.name}"):
        return _run_declared(declared, ctx)


def _run_declared(declared: Stage, ctx: RunContext) -> dict[str, Any]:
    from ml.orchestration.nightly import night_context
    from ml.spark import hooks as spark_hooks
    from ml.warehouse.dbt import release_dbt_warehouse

    ctx = night_context(ctx)  # the week's full-refresh day rebuilds like full_refresh=True
    # dbt-duckdb keeps its DuckDB handle open in this process (in `airflow dags test`
    # every task shares one process); DuckDB refuses a second, differently configured one.
    release_dbt_warehouse()
    started = time.perf_counter()
    log.info("stage %s: %s", declared.name, declared.does)
    run = (lambda c: _run_dbt_stage(declared, c)) if declared.is_dbt else stage_function(declared)
    if not declared.is_dbt:
        spark_hooks.expose_to_duckdb()  # Spark homes: dbt's tables as DuckDB views
    # Plain JSON for Airflow's XCom: a metric of an undefined value (an AUC over a hold-out
    # with one class) is NaN, which strict JSON refuses; it is reported as null.
    summary = finite_values(run(ctx))
    if not declared.is_dbt:
        spark_hooks.after_python_stage(declared.writes)  # Spark homes: sources for dbt
    seconds = time.perf_counter() - started
    release_dbt_warehouse()
    if ctx.logical_date and not declared.emits_snapshot:
        _record(declared, ctx, seconds, summary)
    log.info(
        "stage %s done in %.1fs (peak RSS of this process so far: %.0f MiB)",
        declared.name,
        seconds,
        peak_rss_mib(),
    )
    return summary


def peak_rss_mib() -> float:
    """This process's resident-memory high-water mark, in MiB: which stage sizes the machine.

    Linux's ``VmHWM``, not ``ru_maxrss``: a child stage started from the DAG's process
    inherits the parent's ``ru_maxrss`` across fork and exec, ``VmHWM`` starts afresh.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def finite_values(value: Any) -> Any:
    """``value`` with every NaN or infinite float (at any depth) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_values(item) for item in value]
    return value


def run_stages(
    ctx: RunContext,
    first: str | None = None,
    last: str | None = None,
    pipeline: tuple[Stage, ...] = DAILY,
    *,
    after_each: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the stages from ``first`` to ``last`` (inclusive, in declared order).

    ``after_each(name, summary)`` is called after every stage (tests use it to stop a
    run at a chosen point).
    """
    from ml.locking import writer_lock

    summaries: dict[str, dict[str, Any]] = {}
    selected = stages_between(first, last, pipeline)
    # One lock for all of them: no other writer slips in between two stages.
    with writer_lock(purpose=f"stages {selected[0].name}..{selected[-1].name}"):
        for declared in selected:
            summaries[declared.name] = run_stage(declared.name, ctx, pipeline)
            if after_each is not None:
                after_each(declared.name, summaries[declared.name])
    return summaries
