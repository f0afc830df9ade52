"""The ``affinity`` command line: its argument parser and the entry point that dispatches
to the sub-commands' handlers in :mod:`ml.cli_commands`.

Each pipeline sub-command runs stages declared in :mod:`ml.pipeline` through
:func:`ml.orchestration.runner.run_stage`: the same bodies the Airflow DAG runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ml import cli_commands as commands
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


# The ``import-*`` sub-commands: name -> (what it converts, its path's help, handler).
_IMPORTERS = {
    "import-online-retail": (
        "a UCI Online Retail (II) CSV",
        "the CSV or CSV.gz export",
        commands.cmd_import_online_retail,
    ),
    "import-amazon-reviews": (
        "an Amazon review export (JSON lines, 2014/2018)",
        "reviews JSON lines (.json or .json.gz)",
        commands.cmd_import_amazon_reviews,
    ),
    "import-womens-clothing": (
        "the Women's E-Commerce Clothing Reviews CSV",
        "the CSV or CSV.gz",
        commands.cmd_import_womens_clothing,
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
    gen.set_defaults(func=commands.cmd_generate)

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
    ing.set_defaults(func=commands.cmd_ingest)

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
    run.set_defaults(func=commands.cmd_run)

    feat = sub.add_parser(
        "build-features",
        help="product text, review insight, then the dbt build of the feature marts as of a date",
    )
    feat.add_argument("--as-of", required=True, help="logical date YYYY-MM-DD")
    feat.add_argument("--full-refresh", action="store_true", help="rebuild incremental models")
    feat.set_defaults(func=commands.cmd_build_features)

    tr = sub.add_parser("train", help="train, review in MLflow and gate the recommenders")
    tr.add_argument(
        "--as-of",
        help="logical date YYYY-MM-DD: train on data up to and including it "
        "(default: the last day with data)",
    )
    tr.set_defaults(func=commands.cmd_train)

    sc = sub.add_parser("score", help="recommendations, similar products, segments + output marts")
    sc.add_argument("--as-of", required=True, help="logical date YYYY-MM-DD")
    sc.add_argument("--top-n", type=int, default=20)
    sc.add_argument(
        "--no-outputs", action="store_true", help="skip the dbt output marts (dbt_outputs)"
    )
    sc.set_defaults(func=commands.cmd_score)

    pub = sub.add_parser("publish", help="swap in a new analyst snapshot atomically")
    pub.add_argument("--as-of", help="logical date YYYY-MM-DD (default: the latest scored)")
    pub.add_argument("--run-id", help="run identifier recorded in pipeline_runs")
    pub.add_argument("--keep", type=int, default=3, help="previous snapshots kept for rollback")
    pub.set_defaults(func=commands.cmd_publish)

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
    qry.set_defaults(func=commands.cmd_query)

    camp = sub.add_parser("campaigns", help="build the audiences of campaigns launching next")
    camp.add_argument("--as-of", required=True, help="logical date YYYY-MM-DD")
    camp.set_defaults(func=commands.cmd_campaigns)

    meas = sub.add_parser("measure", help="measure lift of campaigns whose window has ended")
    meas.add_argument("--as-of", required=True, help="measurement date YYYY-MM-DD")
    meas.add_argument("--publish", action="store_true", help="publish the results snapshot")
    meas.set_defaults(func=commands.cmd_measure)

    af = sub.add_parser("airflow", help="airflow standalone on the project's DAGs (Ctrl-C stops)")
    af.add_argument("--port", type=int, default=8080)
    af.set_defaults(func=commands.cmd_airflow)

    mf = sub.add_parser("mlflow", help="the MLflow UI on the project's tracking database")
    mf.add_argument("--port", type=int, default=5000)
    mf.set_defaults(func=commands.cmd_mlflow)

    dash = sub.add_parser(
        "dashboard", help="the dashboard over the published snapshot (read-only; Ctrl-C stops)"
    )
    dash.add_argument("--port", type=int, default=8501)
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default: local only)")
    dash.set_defaults(func=commands.cmd_dashboard)

    parse = sub.add_parser(
        "parse", help="parse the dbt project (the manifest the DAG renders from)"
    )
    parse.set_defaults(func=commands.cmd_parse)
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
