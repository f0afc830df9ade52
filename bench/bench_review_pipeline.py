"""Review insight through the declared pipeline on the real review sets (issue 14 acceptance).

Usage::

    .venv/bin/python bench/bench_review_pipeline.py [--sets amazon_all_beauty,womens_clothing]

For each set: import it, run the declared stages ``ingest`` .. ``publish`` in a temporary
home (what ``affinity run --data <import>`` runs, without Airflow; training on: the shop's
own model and gate), then read back what was published: row counts, the stage times, the
sentiment model's hold-out metrics on the MLflow run that registered the serving version
against the issue's targets, and the praised and complaint aspects of the five
most-reviewed products **as published** in ``product_review_insights``.

Writes ``bench/results/review_pipeline.json`` and ``review_pipeline.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._common import machine, now_utc, write_results  # noqa: E402

DATA = REPO_ROOT.parent / "shared" / "data"
SETS = {
    "amazon_all_beauty": DATA / "amazon_all_beauty_2018" / "All_Beauty_5.json.gz",
    "womens_clothing": DATA
    / "womens_clothing_reviews"
    / "womens_clothing_ecommerce_reviews.csv.gz",
}
# Women's Clothing has no dates: its reviews carry the importer's placeholder day.
AS_OF = {"womens_clothing": "2018-01-01"}
TARGETS = {
    "womens_clothing": {"roc_auc": (">=", 0.97), "rating_mae": ("<=", 0.40)},
    "amazon_all_beauty": {"roc_auc": (">=", 0.95)},
}
TOP = 5


def import_set(name: str, out: Path) -> None:
    if name == "amazon_all_beauty":
        from ml.ingest.importers.amazon_reviews import import_amazon_reviews

        import_amazon_reviews(SETS[name], out)
    else:
        from ml.ingest.importers.womens_clothing import import_womens_clothing

        import_womens_clothing(SETS[name], out)


def run_set(name: str, scratch: Path) -> dict:
    """Import, run every declared stage, read back what was published."""
    from ml.orchestration.landing import latest_data_date
    from ml.orchestration.runner import run_stages
    from ml.pipeline import RunContext

    landing, home = scratch / f"{name}_landing", scratch / f"{name}_home"
    import_set(name, landing)
    as_of = AS_OF.get(name) or latest_data_date(landing)
    os.environ["AFFINITY_HOME"] = str(home)
    started = time.perf_counter()
    summaries = run_stages(RunContext(as_of, run_id=f"bench-{name}", input_path=str(landing)))
    seconds = time.perf_counter() - started
    review = summaries["review_insight"]
    return {
        "as_of": as_of,
        "seconds": round(seconds, 1),
        "row_counts": summaries["publish"]["row_counts"],
        "review_stage": {k: review[k] for k in ("reviews", "products", "model_kind", "seconds")},
        "sentiment": sentiment_run(home, review["run_id"]),
        "top_products": published_aspects(home),
    }


def sentiment_run(home: Path, run_id: str) -> dict:
    """Metrics and split of the MLflow run that trained the serving sentiment version."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    run = client.get_run(run_id)
    metrics = run.data.metrics
    return {
        "run_id": run_id,
        "split": run.data.params.get("split.method"),
        "decision": run.data.tags.get("gate.decision"),
        **{k: round(metrics[k], 4) for k in ("roc_auc", "macro_f1", "rating_mae") if k in metrics},
        **{
            f"lexicon_{k}": round(metrics[f"lexicon_{k}"], 4)
            for k in ("roc_auc", "rating_mae")
            if f"lexicon_{k}" in metrics
        },
    }


def published_aspects(home: Path) -> list[dict]:
    import duckdb

    con = duckdb.connect(str(home / "published" / "affinity.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT product_id, category, review_count, avg_rating, avg_sentiment, "
            "negative_share, praised_aspects, complaint_aspects FROM product_review_insights "
            f"ORDER BY review_count DESC, product_id LIMIT {TOP}"
        ).fetchall()
    finally:
        con.close()
    keys = ("product_id", "category", "review_count", "avg_rating", "avg_sentiment")
    return [
        {
            **dict(zip(keys, row[:5], strict=True)),
            "negative_share": row[5],
            "praised_aspects": row[6],
            "complaint_aspects": row[7],
        }
        for row in rows
    ]


def _verdict(value: float | None, rule: tuple[str, float]) -> str:
    op, target = rule
    if value is None:
        return f"{op} {target}: -"
    met = value >= target if op == ">=" else value <= target
    return f"{op} {target} {'met' if met else '**not met**'}"


def _aspects(items: list[dict]) -> str:
    return "; ".join(f'{a["aspect"]} ({a["mentions"]}): "{a["example"]}"' for a in items) or "-"


def markdown(result: dict) -> str:
    lines = [
        "# Review insight through the pipeline (real sets)",
        "",
        f"Measured {result['measured_at']} on {result['machine']['nproc']} CPUs (load average "
        f"{result['load_before']} before, {result['load_after']} after: a shared machine). "
        "Each set: its importer, then every declared stage `ingest` .. `publish` "
        "(`ml.orchestration.runner.run_stages`, what `affinity run --data <import>` runs "
        "without Airflow), training on. Figures read back from the published snapshot and "
        "from the MLflow run that registered the serving sentiment version.",
        "",
        "## Sentiment model (hold-out of the run that registered the serving version)",
        "",
        "| set | split | roc_auc | target | macro_f1 | rating_mae | target | VADER alone roc_auc / mae | gate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, data in result["sets"].items():
        s, t = data["sentiment"], TARGETS[name]
        lines.append(
            f"| {name} | {s.get('split')} | {s.get('roc_auc')} | {_verdict(s.get('roc_auc'), t['roc_auc'])} "
            f"| {s.get('macro_f1')} | {s.get('rating_mae')} | "
            f"{_verdict(s.get('rating_mae'), t['rating_mae']) if 'rating_mae' in t else '-'} "
            f"| {s.get('lexicon_roc_auc')} / {s.get('lexicon_rating_mae')} | {s.get('decision')} |"
        )
    lines += ["", "## What was published", ""]
    lines += [
        "| set | as of | run s | review stage s | review_sentiment | product_review_insights | products | recommendations |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|"]
    for name, data in result["sets"].items():
        c = data["row_counts"]
        lines.append(
            f"| {name} | {data['as_of']} | {data['seconds']} | "
            f"{data['review_stage']['seconds'].get('total')} | {c.get('review_sentiment')} | "
            f"{c.get('product_review_insights')} | {c.get('products')} | {c.get('recommendations')} |"
        )
    lines += [
        "",
        "Neither import knows product names (Amazon without `--meta`, Women's Clothing has "
        "only Clothing IDs), so no product is recommendable and the recommendation lists "
        "are empty; the review tables do not depend on it.",
    ]
    for name, data in result["sets"].items():
        lines += ["", f"## {name}: the {TOP} most-reviewed products as published", ""]
        for p in data["top_products"]:
            lines += [
                f"**{p['product_id']}** ({p['category'] or 'no category'}, {p['review_count']} "
                f"reviews, avg rating {p['avg_rating']:.2f}, avg sentiment "
                f"{p['avg_sentiment']:.3f}, negative share {p['negative_share']:.3f})",
                "",
                f"- praised: {_aspects(p['praised_aspects'])}",
                f"- complaints: {_aspects(p['complaint_aspects'])}",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = {
        "measured_at": now_utc(),
        "machine": machine(),
        "load_before": round(os.getloadavg()[0], 1),
        "sets": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench_review_pipeline_") as scratch:
        for name in args.sets.split(","):
            result["sets"][name] = run_set(name, Path(scratch))
            print(f"{name}: done in {result['sets'][name]['seconds']} s", flush=True)
    result["load_after"] = round(os.getloadavg()[0], 1)
    path = write_results("review_pipeline", result, markdown(result))
    print(f"wrote {path} and {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
