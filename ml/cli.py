"""The ``affinity`` command line.

Each sub-command is a thin wrapper over one function of the ``ml`` package, the same
function the Airflow DAG calls.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ml.config import DEFAULT_SHOP_END, paths

log = logging.getLogger("affinity")


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
        args.out,
        customers=args.customers,
        products=args.products,
        days=args.days,
        seed=args.seed,
        defect_rate=args.defect_rate,
        end_date=args.end_date,
        campaign_uplift=args.campaign_uplift,
    )
    for entity, rows in counts.items():
        print(f"{entity:>12}: {rows:,} rows")
    print(f"wrote {Path(args.out).resolve()}")
    return 0


def _cmd_import_online_retail(args: argparse.Namespace) -> int:
    from ml.importers.online_retail import import_online_retail

    counts = import_online_retail(args.path, args.out)
    for entity, rows in counts.items():
        print(f"{entity:>12}: {rows:,}")
    print(f"wrote {Path(args.out).resolve()}")
    return 0


def _cmd_import_amazon_reviews(args: argparse.Namespace) -> int:
    from ml.importers.amazon_reviews import import_amazon_reviews

    counts = import_amazon_reviews(args.path, args.out, meta_path=args.meta)
    for entity, rows in counts.items():
        print(f"{entity:>18}: {rows:,}")
    print(f"wrote {Path(args.out).resolve()}")
    return 0


def _cmd_import_womens_clothing(args: argparse.Namespace) -> int:
    from ml.importers.womens_clothing import import_womens_clothing

    counts = import_womens_clothing(args.path, args.out, reviewed_at=args.reviewed_at)
    for entity, rows in counts.items():
        print(f"{entity:>18}: {rows:,}")
    print(f"wrote {Path(args.out).resolve()}")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ml.ingest import ingest

    report = ingest(args.dir)
    print(report.summary())
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from ml.pipeline import run_pipeline

    summary = run_pipeline(
        data=args.data,
        as_of=args.as_of,
        customers=args.customers,
        products=args.products,
        days=args.days,
        seed=args.seed,
        retrain=not args.no_retrain,
        top_n=args.top_n,
    )
    print(summary)
    return 0


def _cmd_build_features(args: argparse.Namespace) -> int:
    from ml.transform import build_features

    report = build_features(args.as_of, full_refresh=args.full_refresh)
    print(f"dbt features built as of {report.as_of} in {report.seconds:.1f}s")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ml.train import train

    result = train(args.as_of)
    print(f"decision: {result.decision} ({result.reason})")
    print(f"model:    {result.model_name} version {result.model_version}")
    for family, figures in sorted(result.metrics.items()):
        print(f"  {family:>10}: ndcg_at_10 {figures.get('ndcg_at_10', float('nan')):.4f}")
    print(
        f"mlflow run {result.run_id} (experiment {result.experiment_id}); `make mlflow` to review"
    )
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from ml.pipeline import score_stage
    from ml.publish import build_outputs

    summary = score_stage(args.as_of, top_n=args.top_n)
    build_outputs(args.as_of)
    for key, value in summary.items():
        print(f"{key:>22}: {value}")
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from ml.publish import publish

    report = publish(args.as_of, run_id=args.run_id, keep=args.keep)
    print(report.summary())
    return 0


def _cmd_query(args: argparse.Namespace) -> int:
    import polars as pl

    from ml.publish import query_frame

    with pl.Config(tbl_rows=args.limit, tbl_cols=-1, fmt_str_lengths=60):
        print(query_frame(args.sql))
    return 0


def _cmd_airflow(args: argparse.Namespace) -> int:
    from ml.orchestrate import serve_airflow

    serve_airflow(args.port)  # replaces this process; returns only on failure to start
    return 1


def _cmd_mlflow(args: argparse.Namespace) -> int:
    from ml.orchestrate import serve_mlflow

    serve_mlflow(args.port)  # replaces this process; returns only on failure to start
    return 1


def _cmd_campaigns(args: argparse.Namespace) -> int:
    from ml.campaigns import build_audiences
    from ml.publish import build_outputs

    report = build_audiences(args.as_of)
    build_outputs(args.as_of)
    print(report.summary())
    return 0


def _cmd_measure(args: argparse.Namespace) -> int:
    from ml.campaigns import measure_campaigns, publish_results

    report = measure_campaigns(args.as_of)
    print(report.summary())
    if args.publish:
        publish_results(args.as_of, f"measure-{args.as_of}")
    return 0


def _cmd_parse(args: argparse.Namespace) -> int:
    from ml.pipeline import parse_dbt_project

    print(f"wrote {parse_dbt_project()}")
    return 0


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

    imp = sub.add_parser(
        "import-online-retail", help="convert a UCI Online Retail (II) CSV into the input contract"
    )
    imp.add_argument("path", type=Path, help="the CSV or CSV.gz export")
    imp.add_argument("--out", required=True, type=Path, help="output folder")
    imp.set_defaults(func=_cmd_import_online_retail)

    amz = sub.add_parser(
        "import-amazon-reviews",
        help="convert an Amazon review export (JSON lines, 2014/2018) into the input contract",
    )
    amz.add_argument("path", type=Path, help="reviews JSON lines (.json or .json.gz)")
    amz.add_argument("--meta", type=Path, help="product metadata JSON lines (titles, prices)")
    amz.add_argument("--out", required=True, type=Path, help="output folder")
    amz.set_defaults(func=_cmd_import_amazon_reviews)

    wcr = sub.add_parser(
        "import-womens-clothing",
        help="convert the Women's E-Commerce Clothing Reviews CSV into the input contract",
    )
    wcr.add_argument("path", type=Path, help="the CSV or CSV.gz")
    wcr.add_argument("--out", required=True, type=Path, help="output folder")
    wcr.add_argument(
        "--reviewed-at",
        default="2018-01-01",
        help="placeholder review date for the undated reviews (YYYY-MM-DD)",
    )
    wcr.set_defaults(func=_cmd_import_womens_clothing)

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
    run.add_argument("--no-retrain", action="store_true", help="score with the current champion")
    run.add_argument("--top-n", type=int, default=20, help="recommendations per customer")
    run.set_defaults(func=_cmd_run)

    feat = sub.add_parser("build-features", help="dbt build of the feature marts as of a date")
    feat.add_argument("--as-of", required=True, help="logical date YYYY-MM-DD")
    feat.add_argument("--full-refresh", action="store_true", help="rebuild incremental models")
    feat.set_defaults(func=_cmd_build_features)

    tr = sub.add_parser("train", help="train, review in MLflow and gate the recommenders")
    tr.add_argument("--as-of", help="run date YYYY-MM-DD: the test window ends at its start")
    tr.set_defaults(func=_cmd_train)

    sc = sub.add_parser("score", help="recommendations, similar products, segments + output marts")
    sc.add_argument("--as-of", required=True, help="logical date YYYY-MM-DD")
    sc.add_argument("--top-n", type=int, default=20)
    sc.set_defaults(func=_cmd_score)

    pub = sub.add_parser("publish", help="swap in a new analyst snapshot atomically")
    pub.add_argument("--as-of", help="logical date YYYY-MM-DD (default: the latest scored)")
    pub.add_argument("--run-id", help="run identifier recorded in pipeline_runs")
    pub.add_argument("--keep", type=int, default=3, help="previous snapshots kept for rollback")
    pub.set_defaults(func=_cmd_publish)

    qry = sub.add_parser("query", help="run SQL on the published snapshot (read-only)")
    qry.add_argument("sql")
    qry.add_argument("--limit", type=int, default=20, help="rows to print")
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
        return args.func(args)
    except (FileNotFoundError, LookupError, ValueError, RuntimeError) as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
