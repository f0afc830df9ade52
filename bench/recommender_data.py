"""The data sets the recommender benchmarks train on, each through the pipeline's own path.

Each data set becomes an Affinity home the normal way: a landing folder (generated,
imported or converted here), then the declared ``ingest`` and ``dbt_features`` stages
(:func:`ml.orchestration.runner.run_stages`). Homes are cached under a work folder so
repeated benchmark runs only re-train.

Data sets (``../shared/data``, see its README for licences):

* ``generated``: the shop ``affinity run`` generates by default (2,000 customers, 500
  products, 90 days, seed 42);
* ``online_retail``: UCI Online Retail II 2009-2010 (Chen 2019, CC BY 4.0), through
  ``affinity import-online-retail``;
* ``amazon_all_beauty``: Amazon reviews 2018, All Beauty 5-core (Ni, Li & McAuley 2019),
  converted by :func:`amazon_reviews_to_landing`: one placed order of one unit per review.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
ONLINE_RETAIL_CSV = SHARED_DATA / "online_retail_ii" / "online_retail_II_2009-2010.csv.gz"
AMAZON_BEAUTY_JSON = SHARED_DATA / "amazon_all_beauty_2018" / "All_Beauty_5.json.gz"

DATASETS = ("generated", "online_retail", "amazon_all_beauty")


@contextmanager
def affinity_home(home: Path) -> Iterator[Path]:
    """Point ``AFFINITY_HOME`` at ``home`` for the duration of the block."""
    previous = os.environ.get("AFFINITY_HOME")
    os.environ["AFFINITY_HOME"] = str(home)
    try:
        yield home
    finally:
        if previous is None:
            os.environ.pop("AFFINITY_HOME", None)
        else:
            os.environ["AFFINITY_HOME"] = previous


def amazon_reviews_to_landing(source: Path, out: Path) -> Path:
    """Convert an Amazon review JSON-lines export into contract files (one order per review).

    Each distinct (reviewer, product, review time) becomes a placed order of one unit:
    the review is the evidence of the purchase. Exact duplicate lines (1,053 in All Beauty)
    collapse into one. Reviewer names are personal data and are left out; the reviewer id
    is the customer id. There are no product titles: the product name is its ASIN.

    Parameters
    ----------
    source : pathlib.Path
        ``*.json.gz`` of the 2018 Amazon Review Data (``reviewerID``, ``asin``,
        ``unixReviewTime``, ``overall``, ``summary``, ``reviewText``).
    out : pathlib.Path
        Landing folder to write (created).

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    frame = (
        pl.DataFrame(
            {
                "customer_id": [r["reviewerID"] for r in records],
                "product_id": [r["asin"] for r in records],
                "unix_time": [int(r["unixReviewTime"]) for r in records],
                "rating": [int(round(float(r.get("overall", 0)))) for r in records],
                "title": [r.get("summary") for r in records],
                "body": [r.get("reviewText") for r in records],
            }
        )
        .unique(["customer_id", "product_id", "unix_time"], keep="first", maintain_order=True)
        .sort("unix_time", "customer_id", "product_id")
        .with_row_index("n", offset=1)
        .with_columns(
            pl.from_epoch("unix_time", time_unit="s").alias("at"),
            ("A" + pl.col("n").cast(pl.String).str.zfill(7)).alias("order_id"),
        )
    )
    out.mkdir(parents=True, exist_ok=True)
    first_seen = frame.group_by("customer_id").agg(pl.col("at").min().alias("signed_up_at"))
    first_seen.sort("customer_id").select(
        "customer_id",
        pl.lit(None, pl.String).alias("email"),
        pl.lit(None, pl.String).alias("first_name"),
        pl.lit(None, pl.String).alias("country"),
        "signed_up_at",
    ).write_csv(out / "customers.csv")
    frame.group_by("product_id").agg(pl.col("at").min().alias("first_seen_at")).sort(
        "product_id"
    ).select(
        "product_id",
        pl.col("product_id").alias("name"),
        pl.lit(None, pl.Float64).alias("price"),
        "first_seen_at",
    ).write_csv(out / "products.csv")
    frame.select(
        "order_id",
        "customer_id",
        pl.col("at").alias("ordered_at"),
        pl.lit("placed").alias("status"),
    ).write_csv(out / "orders.csv")
    frame.select(
        "order_id",
        pl.lit(1).alias("line_no"),
        "product_id",
        pl.lit(1).alias("quantity"),
        pl.lit(1.0).alias("unit_price"),
    ).write_csv(out / "order_lines.csv")
    frame.filter(pl.col("rating").is_between(1, 5)).select(
        ("R" + pl.col("n").cast(pl.String).str.zfill(7)).alias("review_id"),
        "customer_id",
        "product_id",
        "rating",
        "title",
        "body",
        pl.col("at").alias("created_at"),
    ).write_csv(out / "reviews.csv")
    log.info("amazon reviews: %d orders written to %s", frame.height, out)
    return out


def landing_for(name: str, home: Path) -> Path:
    """Write (or name) the landing input of data set ``name`` inside ``home``."""
    from ml.orchestration.landing import prepare_landing

    if name == "generated":
        with affinity_home(home):
            return prepare_landing(None)
    if name == "online_retail":
        with affinity_home(home):
            return prepare_landing(ONLINE_RETAIL_CSV)
    if name == "amazon_all_beauty":
        return amazon_reviews_to_landing(AMAZON_BEAUTY_JSON, home / "landing" / "amazon")
    raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")


def logical_date(home: Path) -> str:
    """The last day with an interaction in the home's warehouse (the run's logical date)."""
    from ml.warehouse import connect

    with affinity_home(home), connect(read_only=True) as con:
        latest = con.execute("SELECT max(occurred_at) FROM marts.interaction_events").fetchone()[0]
    return latest.date().isoformat()


def features_fingerprint() -> str:
    """A hash of the code that builds a home's marts (the dbt project, ingest, the stages)."""
    import hashlib

    digest = hashlib.sha256()
    for folder, pattern in (
        ("dbt_project", "**/*.sql"),
        ("dbt_project", "**/*.yml"),
        ("dbt_project", "**/*.csv"),
        ("ml/ingest", "**/*.py"),
        ("ml/text", "**/*.py"),
    ):
        for path in sorted((REPO_ROOT / folder).glob(pattern)):
            if "target" in path.relative_to(REPO_ROOT).parts:
                continue
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def prepare_home(name: str, work: Path, *, fresh: bool = False) -> tuple[Path, str]:
    """An Affinity home holding data set ``name`` after ``ingest`` and ``dbt_features``.

    The home is ``work/<name>``; it is reused when it already holds marts built by the
    same code (:func:`features_fingerprint`; ``fresh`` rebuilds it). Returns the home and
    the logical date of its runs.
    """
    from ml.orchestration.landing import latest_data_date
    from ml.orchestration.runner import run_stages
    from ml.pipeline import RunContext

    home = work / name
    marker = home / ".features_built"
    fingerprint = features_fingerprint()
    if fresh and home.exists():
        shutil.rmtree(home)
    if not marker.exists() or marker.read_text().split()[0] != fingerprint:
        if home.exists():
            shutil.rmtree(home)
        home.mkdir(parents=True)
        source = landing_for(name, home)
        with affinity_home(home):
            ingest_ctx = RunContext(None, input_path=str(source))
            run_stages(ingest_ctx, "ingest", "ingest")
        as_of = latest_data_date(source)
        with affinity_home(home):
            run_stages(RunContext(as_of, input_path=str(source)), "dbt_features", "dbt_features")
        marker.write_text(f"{fingerprint} {datetime.now(UTC).isoformat()}")
    return home, logical_date(home)


def fresh_mlflow(home: Path) -> None:
    """Forget every model and run of ``home`` (each benchmark run starts with no champion)."""
    from ml.config import paths

    with affinity_home(home):
        home_paths = paths()
        for path in (home_paths.mlflow_db, home_paths.mlartifacts):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
