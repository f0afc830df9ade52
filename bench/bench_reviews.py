"""Benchmark the review language layer on the real review sets (issue 14's targets).

Usage::

    .venv/bin/python bench/bench_reviews.py [--stage-reviews 100000] [--skip-baseline]

Imports Women's Clothing and Amazon All Beauty from ``../shared/data``, then measures

* the sentiment model on each set's hold-out (time split; random 80/20 for Women's
  Clothing, which has no dates) after text deduplication: ``roc_auc`` with a bootstrap
  95 % interval, ``macro_f1``, ``rating_mae``, against VADER alone;
* scoring throughput (reviews/s, one process and two);
* the whole review stage (train + register in MLflow + score + aspects) on a shop of
  ``--stage-reviews`` reviews resampled from Women's Clothing (new ids, dates spread over
  a year, so the time split applies);
* praised and complaint aspects of the 5 most-reviewed products of each set, beside the
  issue's baseline (yake keyphrases of positive / negative sentences, if ``yake`` is
  installed: ``.venv/bin/uv pip install yake==0.7.3``).

Writes ``bench/results/reviews.json`` and ``reviews.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._common import machine, now_utc, peak_rss_mb, write_results  # noqa: E402

DATA = REPO_ROOT.parent / "shared" / "data"
WOMENS_CLOTHING = DATA / "womens_clothing_reviews" / "womens_clothing_ecommerce_reviews.csv.gz"
AMAZON_BEAUTY = DATA / "amazon_all_beauty_2018" / "All_Beauty_5.json.gz"
TARGETS = {
    "womens_clothing": {"roc_auc": 0.97, "rating_mae": 0.40},
    "amazon_all_beauty": {"roc_auc": 0.95},
}
THROUGHPUT_TARGET = 5_000
STAGE_TARGET_SECONDS = 60.0
BOOTSTRAP = 1_000


def import_sets(scratch: Path) -> dict[str, pl.DataFrame]:
    """Both real sets through their importers; returns their reviews entities."""
    from ml.ingest.importers.amazon_reviews import import_amazon_reviews
    from ml.ingest.importers.womens_clothing import import_womens_clothing

    import_womens_clothing(WOMENS_CLOTHING, scratch / "womens_clothing")
    import_amazon_reviews(AMAZON_BEAUTY, scratch / "amazon_all_beauty")
    return {
        name: pl.read_parquet(scratch / name / "reviews.parquet")
        for name in ("womens_clothing", "amazon_all_beauty")
    }


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the scoring workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bootstrap_auc(ratings: np.ndarray, scores: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of ROC AUC (negative 1-2 vs positive 4-5) over resamples."""
    from sklearn.metrics import roc_auc_score

    polar = ratings != 3
    negative, ranked = ratings[polar] <= 2, -scores[polar]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(negative), len(negative))
        if 0 < negative[pick].sum() < len(pick):
            values.append(roc_auc_score(negative[pick], ranked[pick]))
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def sentiment_figures(reviews: pl.DataFrame) -> dict:
    from ml.text.metrics import sentiment_scores
    from ml.text.sentiment import rating_distribution, train_sentiment

    started = time.perf_counter()
    training = train_sentiment(reviews)
    seconds = time.perf_counter() - started
    unseen = training.model if training.is_fallback else training.evaluated
    scores = sentiment_scores(rating_distribution(unseen, training.test))
    low, high = bootstrap_auc(training.test["rating"].to_numpy(), scores)
    return {
        "kind": training.kind,
        "split": training.split.method,
        "cutoff": training.split.cutoff.isoformat() if training.split.cutoff else None,
        "sizes": training.sizes,
        "metrics": training.metrics,
        "roc_auc_95ci": [low, high],
        "lexicon_metrics": training.lexicon_metrics,
        "train_seconds": seconds,
        "fit_seconds": training.seconds,
        "reason": training.reason,
        "model": training.model,
    }


def resample(reviews: pl.DataFrame, n: int, seed: int = 0) -> pl.DataFrame:
    """``n`` reviews drawn with replacement, new ids, dates spread over 365 days."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, reviews.height, n)
    start = datetime(2025, 1, 1)
    days = np.sort(rng.integers(0, 365, n))
    return reviews[pick].with_columns(
        pl.format("S{}", pl.int_range(n).cast(pl.String).str.zfill(7)).alias("review_id"),
        pl.Series("created_at", [start + timedelta(days=int(d)) for d in days]),
    )


def throughput(model, reviews: pl.DataFrame) -> dict:
    from ml.text.scoring import score_reviews

    figures = {}
    for workers in (1, 2):
        started, cpu = time.perf_counter(), cpu_seconds()
        score_reviews(model, reviews, "bench", workers=workers)
        wall, used = time.perf_counter() - started, cpu_seconds() - cpu
        figures[f"workers_{workers}"] = {
            "reviews": reviews.height,
            "seconds": wall,
            "reviews_per_second": reviews.height / wall,
            "cpu_seconds": used,
            "reviews_per_cpu_second": reviews.height / used,
        }
    return figures


def whole_stage(reviews: pl.DataFrame, scratch: Path) -> dict:
    from ml.config import Paths
    from ml.text.stage import run_review_stage

    home = Paths(scratch / "stage_home")
    runs = {}
    for key in ("with_training", "champion_reused"):
        started, cpu = time.perf_counter(), cpu_seconds()
        result = run_review_stage(reviews, as_of="2025-12-31", home=home)
        runs[key] = {
            "seconds": time.perf_counter() - started,
            "cpu_seconds": cpu_seconds() - cpu,
            "parts": result.seconds,
            "trained": result.trained,
        }
        if key == "with_training":
            runs["metrics"] = result.metrics
            runs["products"] = result.product_aspects.height
    return {"reviews": reviews.height, **runs}


def top_products(reviews: pl.DataFrame, k: int = 5) -> list[dict]:
    from ml.text.aspects import product_aspects

    aspects = product_aspects(reviews)
    return aspects.sort(["review_count", "product_id"], descending=[True, False]).head(k).to_dicts()


def baseline_aspects(reviews: pl.DataFrame, products: list[str], k: int = 5) -> dict | None:
    """The issue's baseline: yake keyphrases of a product's positive / negative sentences."""
    try:
        import yake
    except ImportError:
        return None
    from ml.text.sentences import review_sentences
    from ml.text.sentiment import vader_compound

    sentences = review_sentences(reviews.filter(pl.col("product_id").is_in(products)))
    sentences = sentences.with_columns(
        pl.Series("compound", vader_compound(sentences["sentence"].to_list()))
    )
    extractor = yake.KeywordExtractor(lan="en", n=1, top=k)
    out = {}
    for product in products:
        own = sentences.filter(pl.col("product_id") == product)
        lists = {}
        for name, condition in (
            ("praise", pl.col("compound") >= 0.05),
            ("complaint", pl.col("compound") <= -0.05),
        ):
            text = " ".join(own.filter(condition)["sentence"].to_list())
            lists[name] = [phrase for phrase, _ in extractor.extract_keywords(text)] if text else []
        out[product] = lists
    return out


def run(stage_reviews: int, skip_baseline: bool) -> dict:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="affinity_bench_reviews_") as tmp:
        scratch = Path(tmp)
        os.environ["AFFINITY_HOME"] = str(scratch / "home")
        sets = import_sets(scratch)
        result: dict = {"sets": {}, "aspects": {}, "baseline": {}, "load_before": os.getloadavg()}
        for name, reviews in sets.items():
            figures = sentiment_figures(reviews)
            model = figures.pop("model")
            result["sets"][name] = figures
            products = top_products(reviews)
            result["aspects"][name] = products
            if not skip_baseline:
                result["baseline"][name] = baseline_aspects(
                    reviews, [p["product_id"] for p in products]
                )
            if name == "womens_clothing":
                clothing_model = model
        big = resample(sets["womens_clothing"], stage_reviews)
        result["throughput"] = throughput(clothing_model, big)
        result["stage"] = whole_stage(big, scratch)
        result["load_after"] = os.getloadavg()
    return result


def markdown(result: dict) -> str:
    lines = [
        "# Review insight: sentiment, throughput, stage, aspects",
        "",
        f"Measured {result['measured_at']} on {result['machine']['nproc']} CPUs "
        f"(load average {result['load_before'][0]:.1f} before, {result['load_after'][0]:.1f} "
        "after: a shared machine, so times are upper bounds). Data: Women's Clothing "
        "(Kaggle, CC0) and Amazon All Beauty 5-core 2018 (Ni, Li, McAuley, EMNLP 2019).",
        "",
        "## Sentiment on the hold-out (distinct texts)",
        "",
        "| set | split | train / test texts (neg / pos in train) | roc_auc [95% CI] | target | macro_f1 | rating_mae | target | VADER alone roc_auc / mae | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, figures in result["sets"].items():
        m, lex, sizes, target = (
            figures["metrics"],
            figures["lexicon_metrics"],
            figures["sizes"],
            TARGETS[name],
        )
        low, high = figures["roc_auc_95ci"]
        auc_ok = "met" if m["roc_auc"] >= target["roc_auc"] else "**not met**"
        mae_target = target.get("rating_mae")
        mae_ok = ("met" if m["rating_mae"] <= mae_target else "**not met**") if mae_target else "-"
        lines.append(
            f"| {name} | {figures['split']} | {sizes['train_texts']:,} / {sizes['test_texts']:,} "
            f"({sizes['train_negative']:,} / {sizes['train_positive']:,}) | "
            f"{m['roc_auc']:.4f} [{low:.3f}, {high:.3f}] | >= {target['roc_auc']} {auc_ok} | "
            f"{m['macro_f1']:.4f} | {m['rating_mae']:.4f} | "
            f"{'<= ' + str(mae_target) + ' ' + mae_ok if mae_target else '-'} | "
            f"{lex['roc_auc']:.4f} / {lex['rating_mae']:.4f} | {figures['train_seconds']:.1f} |"
        )
    tp = result["throughput"]
    stage = result["stage"]
    lines += [
        "",
        "## Throughput and the whole stage",
        "",
        "Wall times depend on what the other sessions of this shared machine run (load "
        "averages above); CPU seconds count this process and its scoring workers. Reviews: "
        "Women's Clothing resampled to the stated size (new ids, dates over a year).",
        "",
        "| measure | reviews | wall s | reviews/s (wall) | CPU s | reviews per CPU-second | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for workers in (1, 2):
        f = tp[f"workers_{workers}"]
        lines.append(
            f"| scoring, {workers} process{'es' if workers > 1 else ''} | {f['reviews']:,} | "
            f"{f['seconds']:.1f} | {f['reviews_per_second']:,.0f} | {f['cpu_seconds']:.1f} | "
            f"{f['reviews_per_cpu_second']:,.0f} | >= {THROUGHPUT_TARGET:,}/s on 2 cores |"
        )
    for key, label in (
        ("with_training", "whole stage, training"),
        ("champion_reused", "whole stage, champion reused"),
    ):
        f = stage[key]
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in f["parts"].items())
        lines.append(
            f"| {label} ({parts}) | {stage['reviews']:,} | {f['seconds']:.1f} | "
            f"{stage['reviews'] / f['seconds']:,.0f} | {f['cpu_seconds']:.1f} | "
            f"{stage['reviews'] / f['cpu_seconds']:,.0f} | < {STAGE_TARGET_SECONDS:.0f} s |"
        )
    lines += [
        "",
        "## Aspects of the 5 most-reviewed products",
        "",
    ]
    for name, products in result["aspects"].items():
        lines += [f"### {name}", ""]
        for product in products:
            lines.append(f"**{product['product_id']}** ({product['review_count']} reviews)")
            lines.append("")
            for column, title in (
                ("praised_aspects", "praised"),
                ("complaint_aspects", "complaints"),
            ):
                items = "; ".join(
                    f'{a["aspect"]} ({a["mentions"]}): "{a["example"]}"' for a in product[column]
                )
                lines.append(f"- {title}: {items or '(none)'}")
            baseline = (result["baseline"].get(name) or {}).get(product["product_id"])
            if baseline:
                lines.append(
                    f"- baseline (yake + VADER sentences): praise {', '.join(baseline['praise'])}; "
                    f"complaints {', '.join(baseline['complaint'])}"
                )
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage-reviews", type=int, default=100_000)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    for path in (WOMENS_CLOTHING, AMAZON_BEAUTY):
        if not path.exists():
            raise SystemExit(f"{path} not found: ../shared/data must sit beside the repository")
    result = run(args.stage_reviews, args.skip_baseline)
    result["measured_at"] = now_utc()
    result["machine"] = machine()
    result["peak_rss_mb"] = peak_rss_mb()
    path = write_results("reviews", result, markdown(result))
    print(markdown(result))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
