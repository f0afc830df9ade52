"""The ``affinity`` command line.

Each pipeline sub-command runs stages declared in :mod:`ml.pipeline` through
:func:`ml.orchestration.runner.run_stage`: the same bodies the Airflow DAG runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from ml.config import DEFAULT_SHOP_END, paths

log = logging.getLogger("affinity")

# Commands that write the home: each holds the run lock for its duration (`affinity run`
# takes it itself, for the whole run and its DAG).
WRITER_COMMANDS = frozenset(
    {"ingest", "build-features", "train", "score", "campaigns", "publish", "measure"}
)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Third-party chatter that drowns the progress lines.
    for noisy in ("alembic", "urllib3", "matplotlib", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _cmd_generate(args: argparse.Namespace) -> int:
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


def _cmd_import_online_retail(args: argparse.Namespace) -> int:
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


def _cmd_import_amazon_reviews(args: argparse.Namespace) -> int:
    from ml.ingest.importers.amazon_reviews import import_amazon_reviews

    counts = import_amazon_reviews(args.path, args.out, meta_path=args.meta)
    return _print_written(counts, args.out, width=18)


def _cmd_import_womens_clothing(args: argparse.Namespace) -> int:
    from ml.ingest.importers.womens_clothing import import_womens_clothing

    counts = import_womens_clothing(args.path, args.out, reviewed_at=args.reviewed_at)
    return _print_written(counts, args.out, width=18)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ml.orchestration.stages import ingest_landing

    report, erased = ingest_landing(args.dir)
    print(report.summary())
    if any(erased.values()):
        print(f"erasure outside the warehouse: {erased}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
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


def _cmd_build_features(args: argparse.Namespace) -> int:
    from ml.pipeline import stage_names

    # Every stage after the ingest up to the feature marts, in the declared order.
    names = stage_names()
    features = names[names.index("ingest") + 1 : names.index("dbt_features") + 1]
    summary = _run(features, _context(args, full_refresh=args.full_refresh))
    print(f"dbt features built as of {args.as_of}: {summary['nodes']}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
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


def _cmd_score(args: argparse.Namespace) -> int:
    summary = _run(
        ["score", "dbt_outputs"][: 1 if args.no_outputs else 2], _context(args, top_n=args.top_n)
    )
    for key, value in summary.items():
        print(f"{key:>22}: {value}")
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    summary = _run(["publish"], _context(args, run_id=args.run_id, keep_snapshots=args.keep))
    counts = ", ".join(f"{table} {rows:,}" for table, rows in sorted(summary["row_counts"].items()))
    print(f"published {summary['logical_date']} to {summary['snapshot']}: {counts}")
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from ml.publish.query_output import print_query

    fmt = "csv" if args.csv else "json" if args.json else "table"
    try:
        print_query(args.sql, sys.stdout, fmt=fmt, limit=args.limit)
    except duckdb.Error as exc:
        log.error("query failed: %s", exc)
        return 1
    return 0


def _cmd_airflow(args: argparse.Namespace) -> int:
    from ml.orchestration.airflow import serve_airflow

    return serve_airflow(args.port)  # until Ctrl-C / SIGINT / SIGTERM


def _cmd_mlflow(args: argparse.Namespace) -> int:
    from ml.orchestration.airflow import serve_mlflow

    serve_mlflow(args.port)  # replaces this process; returns only on failure to start
    return 1


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from ml.dashboard.server import serve_dashboard

    return serve_dashboard(args.port, args.host)  # until Ctrl-C / SIGINT / SIGTERM


def _cmd_campaigns(args: argparse.Namespace) -> int:
    summary = _run(["campaigns"], _context(args))
    _run(["dbt_outputs"], _context(args))
    print(f"campaigns launched after {args.as_of}: {summary['launched'] or 'none'}")
    for campaign, sizes in summary["sizes"].items():
        print(f"  {campaign}: {sizes}")
    return 0


def _cmd_measure(args: argparse.Namespace) -> int:
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


def _cmd_parse(args: argparse.Namespace) -> int:
    from ml.warehouse.dbt import parse_dbt_project

    print(f"wrote {parse_dbt_project()}")
    return 0


# The ``import-*`` sub-commands: name -> (what it converts, its path's help, handler).
_IMPORTERS = {
    "import-online-retail": (
        "a UCI Online Retail (II) CSV",
        "the CSV or CSV.gz export",
        _cmd_import_online_retail,
    ),
    "import-amazon-reviews": (
        "an Amazon review export (JSON lines, 2014/2018)",
        "reviews JSON lines (.json or .json.gz)",
        _cmd_import_amazon_reviews,
    ),
    "import-womens-clothing": (
        "the Women's E-Commerce Clothing Reviews CSV",
        "the CSV or CSV.gz",
        _cmd_import_womens_clothing,
    ),
}


def _add_importer(sub, name: str, source: str, path_help: str, func) -> argparse.ArgumentParser:
    """Add an ``import-*`` sub-command: it converts ``source`` (its ``path`` argument)
    into the input contract under ``--out``; the caller adds its own options."""
    parser = sub.add_parser(name, help=f"convert {source} into the input contract")
    parser.add_argument("path", type=Path, help=path_help)
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """Return the ``affinity`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="affinity",
        description="Affinity: personalized-marketing warehouse. State lives in "
        f"$AFFINITY_HOME (now {paths().home}).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a synthetic shop (the input contract) as Parquet")
    gen.add_argument("--out", required=True, type=Path, help="output folder")
    gen.add_argument("--customers", type=int, default=2_000)
    gen.add_argument("--products", type=int, default=500)
    gen.add_argument("--days", type=int, default=90)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument(
        "--defect-rate", type=float, default=0.0, help="share of bad rows to inject (0-1)"
    )
    gen.add_argument(
        "--end-date", default=DEFAULT_SHOP_END, help="last day of the shop (YYYY-MM-DD)"
    )
    gen.add_argument(
        "--campaign-uplift",
        type=float,
        help="simulate a campaign with this true uplift plus a placebo (truth: _campaign_truth.parquet)",
    )
    gen.set_defaults(func=_cmd_generate)

    importers = {
        name: _add_importer(sub, name, source, path_help, func)
        for name, (source, path_help, func) in _IMPORTERS.items()
    }
    importers["import-amazon-reviews"].add_argument(
        "--meta", type=Path, help="product metadata JSON lines (titles, prices)"
    )
    importers["import-womens-clothing"].add_argument(
        "--reviewed-at",
        default="2018-01-01",
        help="placeholder review date for the undated reviews (YYYY-MM-DD)",
    )

    ing = sub.add_parser("ingest", help="load a landing folder into the warehouse raw schema")
    ing.add_argument("dir", type=Path, help="folder with <entity>.parquet|.csv|.csv.gz files")
    ing.set_defaults(func=_cmd_ingest)

    run = sub.add_parser("run", help="run the whole pipeline end to end (the main job)")
    run.add_argument(
        "--data",
        type=Path,
        help="a landing folder of contract files, or an Online Retail CSV(.gz); "
        "default: generate a shop",
    )
    run.add_argument("--as-of", help="logical date YYYY-MM-DD (default: the last day in the data)")
    run.add_argument("--customers", type=int, default=2_000, help="generated shop size")
    run.add_argument("--products", type=int, default=500, help="generated shop size")
    run.add_argument("--days", type=int, default=90, help="generated shop length")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        help="engine of the warehouse (default: AFFINITY_ENGINE, else duckdb); a home keeps "
        "the engine of its first run",
    )
    run.add_argument("--no-retrain", action="store_true", help="score with the current champion")
    run.add_argument("--top-n", type=int, default=20, help="recommendations per customer")
    run.add_argument(
        "--campaign-uplift",
        type=float,
        default=0.1,
        help="generated shop: true uplift of its ground-truth campaign (plus a placebo)",
    )
    run.add_argument(
        "--replay-campaigns",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="launch campaigns that ended unlaunched as of their launch dates, so this run "
        "measures them (default: on for a generated shop, off for --data)",
    )
    run.add_argument(
        "--verbose",
        dest="run_verbose",
        action="store_true",
        help="show Airflow's, dbt's and Cosmos's output too (always kept in $AFFINITY_HOME/logs/)",
    )
    run.add_argument(
        "--replace",
        action="store_true",
        help="the home holds another data set: move its warehouse, snapshots and MLflow runs "
        "to $AFFINITY_HOME/replaced/ and start afresh on this one (default: refuse)",
    )
    run.set_defaults(func=_cmd_run)

    feat = sub.add_parser(
        "build-features",
        help="product text, review insight, then the dbt build of the feature marts as of a date",
    )
    feat.add_argument("--as-of", required=True, help="logical date YYYY-MM-DD")
    feat.add_argument("--full-refresh", action="store_true", help="rebuild incremental models")
    feat.set_defaults(func=_cmd_build_features)

    tr = sub.add_parser("train", help="train, review in MLflow and gate the recommenders")
    tr.add_argument(
        "--as-of",
        help="logical date YYYY-MM-DD: train on data up to and including it "
        "(default: the last day with data)",
    )
    tr.set_defaults(func=_cmd_train)

    sc = sub.add_parser("score", help="recommendations, similar products, segments + output marts")
    sc.add_argument("--as-of", required=True, help="logical date YYYY-MM-DD")
    sc.add_argument("--top-n", type=int, default=20)
    sc.add_argument(
        "--no-outputs", action="store_true", help="skip the dbt output marts (dbt_outputs)"
    )
    sc.set_defaults(func=_cmd_score)

    pub = sub.add_parser("publish", help="swap in a new analyst snapshot atomically")
    pub.add_argument("--as-of", help="logical date YYYY-MM-DD (default: the latest scored)")
    pub.add_argument("--run-id", help="run identifier recorded in pipeline_runs")
    pub.add_argument("--keep", type=int, default=3, help="previous snapshots kept for rollback")
    pub.set_defaults(func=_cmd_publish)

    qry = sub.add_parser("query", help="run SQL on the published snapshot (read-only)")
    qry.add_argument("sql")
    qry.add_argument(
        "--limit",
        type=int,
        help="rows to print (default: 20 in the table, all with --csv/--json; 0: all)",
    )
    qry_format = qry.add_mutually_exclusive_group()
    qry_format.add_argument("--csv", action="store_true", help="CSV with a header, for scripts")
    qry_format.add_argument("--json", action="store_true", help="a JSON array of row objects")
    qry.set_defaults(func=_cmd_query)

    camp = sub.add_parser("campaigns", help="build the audiences of campaigns launching next")
    camp.add_argument("--as-of", required=True, help="logical date YYYY-MM-DD")
    camp.set_defaults(func=_cmd_campaigns)

    meas = sub.add_parser("measure", help="measure lift of campaigns whose window has ended")
    meas.add_argument("--as-of", required=True, help="measurement date YYYY-MM-DD")
    meas.add_argument("--publish", action="store_true", help="publish the results snapshot")
    meas.set_defaults(func=_cmd_measure)

    af = sub.add_parser("airflow", help="airflow standalone on the project's DAGs (Ctrl-C stops)")
    af.add_argument("--port", type=int, default=8080)
    af.set_defaults(func=_cmd_airflow)

    mf = sub.add_parser("mlflow", help="the MLflow UI on the project's tracking database")
    mf.add_argument("--port", type=int, default=5000)
    mf.set_defaults(func=_cmd_mlflow)

    dash = sub.add_parser(
        "dashboard", help="the dashboard over the published snapshot (read-only; Ctrl-C stops)"
    )
    dash.add_argument("--port", type=int, default=8501)
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default: local only)")
    dash.set_defaults(func=_cmd_dashboard)

    parse = sub.add_parser(
        "parse", help="parse the dbt project (the manifest the DAG renders from)"
    )
    parse.set_defaults(func=_cmd_parse)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``affinity`` console command."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        if args.command not in WRITER_COMMANDS:
            return args.func(args)
        from ml.locking import writer_lock

        with writer_lock(purpose=" ".join(["affinity", *(sys.argv[1:] if argv is None else argv)])):
            return args.func(args)
    except (FileNotFoundError, LookupError, ValueError, RuntimeError) as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
