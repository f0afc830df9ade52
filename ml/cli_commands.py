"""The ``affinity`` sub-commands' handlers: each takes the parsed arguments, does the work,
prints the outcome and returns the exit status.

The pipeline commands run stages declared in :mod:`ml.pipeline` through
:func:`ml.orchestration.runner.run_stage`: the same bodies the Airflow DAG runs.
:mod:`ml.cli` parses the command line and dispatches to them.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

log = logging.getLogger("affinity")


def cmd_generate(args: argparse.Namespace) -> int:
    from ml.datagen import generate_shop

    counts = generate_shop(
        args.out, **_shop_shape(args), defect_rate=args.defect_rate, end_date=args.end_date
    )
    return _print_written(counts, args.out, width=12, unit=" rows")


def _shop_shape(args: argparse.Namespace) -> dict:
    """The generated shop's size, seed and campaign uplift (``generate`` and ``run``)."""
    return {
        "customers": args.customers,
        "products": args.products,
        "days": args.days,
        "seed": args.seed,
        "campaign_uplift": args.campaign_uplift,
    }


def cmd_import_online_retail(args: argparse.Namespace) -> int:
    from ml.ingest.importers.online_retail import import_online_retail

    counts = import_online_retail(args.path, args.out)
    return _print_written(counts, args.out, width=12)


def _print_written(counts: dict[str, int], out: Path, *, width: int, unit: str = "") -> int:
    """Print the rows written per entity and the folder they went to (exit status 0)."""
    for entity, rows in counts.items():
        print(f"{entity:>{width}}: {rows:,}{unit}")
    print(f"wrote {Path(out).resolve()}")
    return 0


def _run(names: list[str], ctx, pipeline=None) -> dict:
    """Run declared stages in order (the same bodies the DAG runs); return the last summary."""
    from ml.orchestration.runner import run_stage
    from ml.pipeline import DAILY

    summary: dict = {}
    for name in names:
        summary = run_stage(name, ctx, pipeline or DAILY)
    return summary


def _context(args: argparse.Namespace, **overrides):
    from ml.pipeline import RunContext

    values = {"logical_date": getattr(args, "as_of", None), **overrides}
    return RunContext(**values)


def _latest_logical_date() -> str:
    """The last day with an interaction in the marts: the default logical date."""
    from ml.serving.inputs import latest_logical_date
    from ml.warehouse import connect

    with connect(read_only=True) as con:
        return latest_logical_date(con).isoformat()


def cmd_import_amazon_reviews(args: argparse.Namespace) -> int:
    from ml.ingest.importers.amazon_reviews import import_amazon_reviews

    counts = import_amazon_reviews(args.path, args.out, meta_path=args.meta)
    return _print_written(counts, args.out, width=18)


def cmd_import_womens_clothing(args: argparse.Namespace) -> int:
    from ml.ingest.importers.womens_clothing import import_womens_clothing

    counts = import_womens_clothing(args.path, args.out, reviewed_at=args.reviewed_at)
    return _print_written(counts, args.out, width=18)


def cmd_ingest(args: argparse.Namespace) -> int:
    from ml.orchestration.stages import ingest_landing

    report, erased = ingest_landing(args.dir)
    print(report.summary())
    if any(erased.values()):
        print(f"erasure outside the warehouse: {erased}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ml.orchestration.run import run_pipeline

    if args.engine:
        # The DAG process inherits it; run_pipeline checks it against the home's record.
        os.environ["AFFINITY_ENGINE"] = args.engine
    summary = run_pipeline(
        data=args.data,
        as_of=args.as_of,
        **_shop_shape(args),
        retrain=not args.no_retrain,
        top_n=args.top_n,
        replay_campaigns=args.replay_campaigns,
        verbose=args.verbose or args.run_verbose,
        replace=args.replace,
        command=_rerun_command(),
    )
    print(summary)
    return 0


def _rerun_command() -> str:
    """This command as the user typed it, ``{extra}`` where more arguments would go.

    Under ``make run`` (make sets ``MAKELEVEL``) that is ``make run ARGS="..."``.
    """
    args = " ".join(shlex.quote(a) for a in sys.argv[2:])
    if os.environ.get("MAKELEVEL") and sys.argv[1:2] == ["run"]:
        return f'make run ARGS="{args}{{extra}}"'
    program = Path(sys.argv[0])
    name = str(program) if program.parent != Path() else program.name
    return f"{name} run {args}".rstrip() + "{extra}"


def cmd_build_features(args: argparse.Namespace) -> int:
    from ml.pipeline import stage_names

    # Every stage after the ingest up to the feature marts, in the declared order.
    names = stage_names()
    features = names[names.index("ingest") + 1 : names.index("dbt_features") + 1]
    summary = _run(features, _context(args, full_refresh=args.full_refresh))
    print(f"dbt features built as of {args.as_of}: {summary['nodes']}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    summary = _run(["train"], _context(args, logical_date=args.as_of or _latest_logical_date()))
    print(f"decision: {summary['decision']} ({summary['reason']})")
    print(f"model:    {summary['model_name']} version {summary['model_version']}")
    for family, ndcg in sorted(summary["ndcg_at_10"].items()):
        print(f"  {family:>10}: ndcg_at_10 {ndcg if ndcg is not None else float('nan'):.4f}")
    print(
        f"mlflow run {summary['run_id']} (experiment {summary['experiment_id']}); "
        "`make mlflow` to review"
    )
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    summary = _run(
        ["score", "dbt_outputs"][: 1 if args.no_outputs else 2], _context(args, top_n=args.top_n)
    )
    for key, value in summary.items():
        print(f"{key:>22}: {value}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    summary = _run(["publish"], _context(args, run_id=args.run_id, keep_snapshots=args.keep))
    counts = ", ".join(f"{table} {rows:,}" for table, rows in sorted(summary["row_counts"].items()))
    print(f"published {summary['logical_date']} to {summary['snapshot']}: {counts}")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from ml.publish.query_output import print_query

    fmt = "csv" if args.csv else "json" if args.json else "table"
    try:
        print_query(args.sql, sys.stdout, fmt=fmt, limit=args.limit)
    except duckdb.Error as exc:
        log.error("query failed: %s", exc)
        return 1
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    from ml.orchestration.airflow import serve_airflow

    return serve_airflow(args.port)  # until Ctrl-C / SIGINT / SIGTERM


def cmd_mlflow(args: argparse.Namespace) -> int:
    from ml.orchestration.airflow import serve_mlflow

    serve_mlflow(args.port)  # replaces this process; returns only on failure to start
    return 1


def cmd_dashboard(args: argparse.Namespace) -> int:
    from ml.dashboard.server import serve_dashboard

    return serve_dashboard(args.port, args.host)  # until Ctrl-C / SIGINT / SIGTERM


def cmd_campaigns(args: argparse.Namespace) -> int:
    summary = _run(["campaigns"], _context(args))
    _run(["dbt_outputs"], _context(args))
    print(f"campaigns launched after {args.as_of}: {summary['launched'] or 'none'}")
    for campaign, sizes in summary["sizes"].items():
        print(f"  {campaign}: {sizes}")
    return 0


def cmd_measure(args: argparse.Namespace) -> int:
    from ml.pipeline import CAMPAIGN_MEASUREMENT

    summary = _run(["measure"], _context(args), CAMPAIGN_MEASUREMENT)
    print(f"measured as of {summary['as_of']}: {summary['measured'] or 'nothing'}")
    for result in summary["results"]:
        print(f"  {result}")
    print(f"campaign insights: {summary['insight_rows']} rows")
    if args.publish:
        _run(
            ["publish_results"],
            _context(args, run_id=f"measure-{args.as_of}"),
            CAMPAIGN_MEASUREMENT,
        )
    return 0


def cmd_parse(args: argparse.Namespace) -> int:
    from ml.warehouse.dbt import parse_dbt_project

    print(f"wrote {parse_dbt_project()}")
    return 0
