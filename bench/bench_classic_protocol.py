"""The project's trainer on the classic benchmark protocol: a per-user random 75/25 split.

Published recommender tables (MovieLens, Amazon, ...) mostly use a per-user stratified
random split rather than our time windows. This script runs the same recipe search and
model families as ``affinity train`` on any interaction file under that protocol, so its
figures can sit beside published ones:

1. every user's distinct items are shuffled (seeded); 25 % of them (at least one, for
   users with two or more) are held out as the test truth;
2. the search (:func:`ml.train.tuning.search_on`, the trainer's own) chooses the recipe on
   a second 75/25 split *of the training part*;
3. the chosen recipe, each family's best recipe and popularity are fit on the whole
   training part and scored on the test truth (training items excluded from the lists).

Reported at k = 10: precision, recall, NDCG, and MAP both ways (AP divided by
``min(R, k)``, as the trainer logs it, and by ``R``, as some tables do).

Formats: ``csv`` / ``tsv`` / ``parquet`` with named columns (``--user``, ``--item``,
``--rating``, ``--time``), ``movielens`` (``u.data``: tab-separated user, item, rating,
timestamp), ``amazon`` (review JSON lines: reviewerID, asin, overall, unixReviewTime),
``online_retail`` (the UCI invoice-line CSV: customers with an id, positive quantities,
cancellations dropped) and ``warehouse`` (every interaction of an Affinity home's
``marts.interaction_events``: purchases, carts and views alike).

Usage::

    .venv/bin/python bench/bench_classic_protocol.py --all            # the three below
    .venv/bin/python bench/bench_classic_protocol.py --format amazon \\
        --path ../shared/data/amazon_all_beauty_2018/All_Beauty_5.json.gz --name amazon
    .venv/bin/python bench/bench_classic_protocol.py --format movielens --path ml-100k/u.data \\
        --name movielens_100k --min-rating 0

Results: ``bench/results/classic_protocol_<name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import logging
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from bench._common import machine, now_utc, write_results  # noqa: E402
from bench.recommender_data import (  # noqa: E402
    AMAZON_BEAUTY_JSON,
    ONLINE_RETAIL_CSV,
    affinity_home,
    prepare_home,
)
from ml.train import metrics  # noqa: E402
from ml.train.config import Recipe, SearchConfig, TrainConfig  # noqa: E402
from ml.train.evaluate import fit_recipe  # noqa: E402
from ml.train.history import build_training_data  # noqa: E402
from ml.train.interactions import TrainingData, pairs_to_csr  # noqa: E402
from ml.train.recipes import family_skipped_because  # noqa: E402
from ml.train.split import EvaluationWindow  # noqa: E402
from ml.train.tuning import search_on  # noqa: E402

log = logging.getLogger("bench_classic_protocol")
K = 10
WORK = Path(os.environ.get("AFFINITY_BENCH_WORK", "/tmp/affinity-bench-recommender"))


# --------------------------------------------------------------------------- reading


def read_interactions(path: Path, fmt: str, args) -> pl.DataFrame:
    """``customer_id, product_id, rating, occurred_at`` (one row per interaction)."""
    if fmt == "movielens":
        frame = pl.read_csv(
            path,
            separator="\t",
            has_header=False,
            new_columns=["customer_id", "product_id", "rating", "unix"],
            schema_overrides={"customer_id": pl.String, "product_id": pl.String},
        ).with_columns(pl.from_epoch("unix").alias("occurred_at"))
    elif fmt == "amazon":
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()]
        frame = pl.DataFrame(
            {
                "customer_id": [r["reviewerID"] for r in records],
                "product_id": [r["asin"] for r in records],
                "rating": [float(r.get("overall", 0)) for r in records],
                "occurred_at": [datetime.utcfromtimestamp(r["unixReviewTime"]) for r in records],
            }
        )
    elif fmt == "online_retail":
        frame = (
            pl.read_csv(path, infer_schema_length=0)
            .filter(
                pl.col("Customer ID").is_not_null()
                & ~pl.col("Invoice").str.starts_with("C")
                & (pl.col("Quantity").cast(pl.Int64, strict=False) > 0)
                & pl.col("StockCode").str.contains(r"^\d{5}")
            )
            .select(
                pl.col("Customer ID").str.replace(r"\.0$", "").alias("customer_id"),
                pl.col("StockCode").str.to_uppercase().alias("product_id"),
                pl.lit(1.0).alias("rating"),
                pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S").alias("occurred_at"),
            )
        )
    elif fmt == "warehouse":
        from ml.warehouse import connect
        from ml.warehouse.tables import read_frame

        with affinity_home(path), connect(read_only=True) as con:
            frame = read_frame(
                con,
                "SELECT CAST(customer_id AS VARCHAR) AS customer_id, "
                "CAST(product_id AS VARCHAR) AS product_id, 1.0 AS rating, occurred_at "
                "FROM marts.interaction_events",
            )
    else:
        reader = {"csv": pl.read_csv, "tsv": pl.read_csv, "parquet": pl.read_parquet}[fmt]
        options = {"separator": "\t"} if fmt == "tsv" else {}
        raw = reader(path, **options)
        frame = raw.select(
            pl.col(args.user).cast(pl.String).alias("customer_id"),
            pl.col(args.item).cast(pl.String).alias("product_id"),
            (pl.col(args.rating).cast(pl.Float64) if args.rating else pl.lit(1.0)).alias("rating"),
            (
                pl.col(args.time).cast(pl.Datetime)
                if args.time
                else pl.lit(datetime(2000, 1, 1)).alias("occurred_at")
            ).alias("occurred_at"),
        )
    frame = frame.select(
        "customer_id", "product_id", "rating", pl.col("occurred_at").cast(pl.Datetime("us"))
    )
    if args.min_rating:
        frame = frame.filter(pl.col("rating") >= args.min_rating)
    return frame


def as_events(frame: pl.DataFrame) -> pl.DataFrame:
    """Interactions as the trainer's events (each one a purchase of one unit)."""
    return frame.select(
        "customer_id",
        "product_id",
        "occurred_at",
        pl.lit("purchase").alias("event_kind"),
        pl.lit(1.0).alias("quantity"),
    )


# --------------------------------------------------------------------------- split


def stratified_split(
    frame: pl.DataFrame, test_share: float, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per user, hold out ``test_share`` of their distinct items (at least one when they
    have two or more); every interaction with a held-out item goes to the test side."""
    pairs = frame.select("customer_id", "product_id").unique().sort("customer_id", "product_id")
    rng = np.random.default_rng(seed)
    pairs = pairs.with_columns(pl.Series("draw", rng.random(pairs.height)))
    ranked = pairs.with_columns(
        pl.col("draw").rank("ordinal").over("customer_id").alias("order"),
        pl.len().over("customer_id").alias("items"),
    ).with_columns(
        pl.when(pl.col("items") >= 2)
        .then((pl.col("items") * test_share).round().clip(lower_bound=1))
        .otherwise(0)
        .alias("held")
    )
    test_pairs = ranked.filter(pl.col("order") <= pl.col("held")).select(
        "customer_id", "product_id"
    )
    test = frame.join(test_pairs, on=["customer_id", "product_id"], how="semi")
    train = frame.join(test_pairs, on=["customer_id", "product_id"], how="anti")
    return train, test


class RandomSplitData:
    """Training matrices of the train side and the held-out truth, per weighting.

    What :func:`ml.train.tuning.search_on` asks of its data: ``get(recipe)`` returns the
    ``(TrainingData, EvaluationWindow)`` a recipe is fit and scored on.
    """

    def __init__(self, train: pl.DataFrame, held_out: pl.DataFrame) -> None:
        self.train = as_events(train)
        self.held_out = held_out.select("customer_id", "product_id").unique()
        self.cutoff = self.train["occurred_at"].max() + timedelta(seconds=1)
        self._cache: dict = {}

    def get(self, recipe: Recipe) -> tuple[TrainingData, EvaluationWindow]:
        if recipe.weighting not in self._cache:
            training = build_training_data(self.train, self.cutoff, recipe.weighting)
            truth = pairs_to_csr(training.maps, self.held_out)
            truth = truth - truth.multiply(training.bought)
            truth.eliminate_zeros()
            rows = np.flatnonzero(np.diff(truth.indptr) > 0)
            window = EvaluationWindow(self.cutoff, self.cutoff, truth.tocsr(), rows, truth.nnz)
            self._cache[recipe.weighting] = (training, window)
        return self._cache[recipe.weighting]


def classic_figures(model, training: TrainingData, window: EvaluationWindow) -> dict[str, float]:
    """P/R/NDCG/MAP@10 (both MAP denominators) of a model on the held-out truth."""
    rows = window.customer_rows
    recommended, _ = model.recommend(rows, training.bought[rows], n=K)
    truth = window.truth[rows]
    per_customer = metrics.per_customer_metrics(recommended, truth, ks=(K,))
    figures = metrics.mean_metrics(per_customer)
    figures["map_r_at_10"] = float(
        np.nanmean(metrics.average_precision(recommended, truth, K, "r"))
    )
    figures["users"] = float(len(rows))
    return {name: round(value, 4) for name, value in figures.items()}


# --------------------------------------------------------------------------- run


def run(frame: pl.DataFrame, name: str, seed: int, budget: int) -> dict:
    started = time.perf_counter()
    train, test = stratified_split(frame, 0.25, seed)
    inner_train, inner_validation = stratified_split(train, 0.25, seed + 1)
    validation = RandomSplitData(inner_train, inner_validation)
    config = TrainConfig(search=SearchConfig(budget=budget, max_seconds=0), seed=seed)
    n_customers, n_products = frame["customer_id"].n_unique(), frame["product_id"].n_unique()

    def allowed(family: str, training: TrainingData) -> str | None:
        return family_skipped_because(
            family, training.strength.nnz, n_customers, n_products, config
        )

    with threadpool_limits(limits=1, user_api="blas"):
        search = search_on(
            validation,
            config.recipe,
            config.search,
            seed,
            family_allowed=allowed,
            n_customers=inner_train["customer_id"].n_unique(),
        )
        evaluation = RandomSplitData(train, test)
        rows = {}
        candidates = {"chosen": search.best, **search.family_recipes}
        candidates["popularity"] = dataclasses.replace(search.best, family="popularity")
        for label, recipe in candidates.items():
            if label == search.best.family:
                continue  # the chosen row already shows it
            training, window = evaluation.get(recipe)
            model = fit_recipe(recipe, training, seed)
            rows[label] = {
                "family": recipe.family,
                "validation_ndcg_at_10": round(search.family_best.get(recipe.family, np.nan), 4)
                if label != "chosen"
                else round(search.best_ndcg_at_10, 4),
                **classic_figures(model, training, window),
            }
    return {
        "name": name,
        "seed": seed,
        "interactions": frame.height,
        "users": n_customers,
        "items": n_products,
        "train_interactions": train.height,
        "test_interactions": test.height,
        "search": {
            "budget": budget,
            "fits": len(search.trials),
            "seconds": round(search.seconds, 1),
            "why": search.why(),
            "chosen_recipe": search.best.to_dict(),
        },
        "models": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }


def markdown(result: dict) -> str:
    lines = [
        f"# Classic protocol: {result['name']}",
        "",
        f"Per-user stratified random split 75/25 (seed {result['seed']}): "
        f"{result['interactions']:,} interactions, {result['users']:,} users, "
        f"{result['items']:,} items; recipe chosen by the trainer's search on a second "
        f"75/25 split of the training part ({result['search']['fits']} trials, "
        f"{result['search']['seconds']} s). Training items are never recommended.",
        "",
        f"Search: {result['search']['why']}",
        "",
        "| model | family | val NDCG@10 | P@10 | R@10 | NDCG@10 | MAP@10 (/min(R,k)) "
        "| MAP@10 (/R) | users |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, row in result["models"].items():
        lines.append(
            f"| {label} | {row['family']} | {row['validation_ndcg_at_10']} | "
            f"{row['precision_at_10']} | {row['recall_at_10']} | {row['ndcg_at_10']} | "
            f"{row['map_at_10']} | {row['map_r_at_10']} | {int(row['users']):,} |"
        )
    lines += [
        "",
        f"Measured {result['measured_at']} on {result['machine']['nproc']} CPUs "
        f"(load {result['load_average']}), {result['seconds']} s in all.",
        "",
    ]
    return "\n".join(lines)


DEFAULT_SETS = {
    "amazon_all_beauty": ("amazon", AMAZON_BEAUTY_JSON),
    "online_retail": ("online_retail", ONLINE_RETAIL_CSV),
    "generated": ("warehouse", None),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true", help="run the three shared data sets")
    parser.add_argument("--path", type=Path)
    parser.add_argument(
        "--format",
        default="csv",
        choices=["csv", "tsv", "parquet", "movielens", "amazon", "online_retail", "warehouse"],
    )
    parser.add_argument("--name", default="custom")
    parser.add_argument("--user", default="user_id")
    parser.add_argument("--item", default="item_id")
    parser.add_argument("--rating", default="")
    parser.add_argument("--time", default="")
    parser.add_argument("--min-rating", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--budget", type=int, default=SearchConfig().budget)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    jobs = []
    if args.all:
        for name, (fmt, path) in DEFAULT_SETS.items():
            if fmt == "warehouse":
                path, _ = prepare_home(name, WORK)
            jobs.append((name, fmt, path))
    else:
        if args.path is None:
            parser.error("--path is required (or --all)")
        jobs.append((args.name, args.format, args.path))
    for name, fmt, path in jobs:
        frame = read_interactions(Path(path), fmt, args)
        result = run(frame, name, args.seed, args.budget)
        result.update(
            machine=machine(),
            measured_at=now_utc(),
            load_average=[round(x, 2) for x in os.getloadavg()],
            source=str(path),
            format=fmt,
        )
        write_results(f"classic_protocol_{name}", result, markdown(result))
        print(markdown(result))


if __name__ == "__main__":
    main()
