"""Issue 16 acceptance: does the champion hold up on every shop, and are its reasons true?

For each data set (``bench/recommender_data.py``: the generated shop, Online Retail II,
Amazon All Beauty converted to the landing contract) the normal path runs in a fresh
MLflow registry: ``ingest`` -> ``dbt_features`` (cached per data set) -> ``train`` through
:func:`ml.orchestration.runner.run_stages`, then ``score`` -> ``campaigns`` ->
``dbt_outputs`` -> ``publish``. Reported per data set:

* the champion's family and recipe, its test-window NDCG@10, popularity's, the ratio,
  the windows the data got and why the recipe won (the run's MLflow tags);
* the reason audit of the published ``recommendations``: every row's reason checked
  against the warehouse history (:mod:`ml.serving.reason_audit`), plus the count of the
  old defect (a product called "bought before" that the customer never bought).

Usage::

    .venv/bin/python bench/bench_recommender.py [--sets generated,online_retail,amazon_all_beauty]

Results: ``bench/results/recommender_acceptance.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Every run trains: a cached home's warehouse remembers the previous run's training, and
# the retrain rule would keep that (deleted) champion instead.
os.environ.setdefault("AFFINITY_RETRAIN_EVERY_DAYS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from bench._common import machine, now_utc, peak_rss_mb, write_results  # noqa: E402
from bench.recommender_data import DATASETS, affinity_home, fresh_mlflow, prepare_home  # noqa: E402

log = logging.getLogger("bench_recommender")
WORK = Path(os.environ.get("AFFINITY_BENCH_WORK", "/tmp/affinity-bench-recommender"))

# Measured before issue 16 (commit 1737e25) with the same data and path.
BEFORE = {
    "generated": {"ndcg_at_10": 0.3846, "popularity_ndcg_at_10": 0.1175, "family": "als"},
    "online_retail": {"ndcg_at_10": 0.1212, "popularity_ndcg_at_10": 0.0375, "family": "als"},
    "amazon_all_beauty": {
        "ndcg_at_10": None,
        "popularity_ndcg_at_10": None,
        "family": "no model: 0 customers in the fixed 30-day test window (the run then "
        "crashed drawing its plots)",
    },
}


def short_recipe(recipe: dict) -> str:
    """The recipe in one line: what matters for its family."""
    weighting = recipe["weighting"]
    half_life = weighting["half_life_days"]
    parts = [
        f"half-life {'none' if half_life is None else f'{half_life:g} d'}",
        f"strength {weighting.get('strength_transform', 'counts')}",
        f"quantity {weighting['purchase_quantity']}",
    ]
    if weighting.get("repeat_exponent", 1.0) != 1.0:
        parts.append(f"repeat^{weighting['repeat_exponent']:g}")
    family = recipe["family"]
    if family == "als":
        confidence, als = recipe["confidence"], recipe["als"]
        parts.append(
            f"{confidence['scheme']} a={confidence['alpha']:g}"
            + (" normalised" if confidence.get("normalize") else "")
        )
        parts.append(f"{als['factors']} f, reg {als['regularization']:g}, {als['iterations']} it")
    elif family == "bpr":
        bpr = recipe["bpr"]
        parts.append(f"{bpr['factors']} f, lr {bpr['learning_rate']:g}, {bpr['iterations']} it")
    elif family == "itemknn":
        parts.append(f"{recipe['itemknn']['weighting']}, K={recipe['itemknn']['neighbours']}")
    elif family == "blend":
        blend = recipe["blend"]
        parts.append(
            f"category x{blend['category_weight']:g}, history x{blend['history_weight']:g}"
        )
    return ", ".join(parts)


def train_figures(home: Path, summary: dict) -> dict:
    """What the train stage decided, read back from MLflow."""
    import mlflow

    from ml.config import paths

    with affinity_home(home):
        mlflow.set_tracking_uri(paths().mlflow_tracking_uri)
        client = mlflow.MlflowClient()
        run = client.get_run(summary["run_id"])
        version = client.get_model_version(summary["model_name"], summary["model_version"])
    recipe = json.loads(version.tags["recipe.json"])
    ndcg = summary["ndcg_at_10"]
    family = recipe["family"]
    champion, popularity = ndcg.get(family), ndcg.get("popularity")
    return {
        "decision": summary["decision"],
        "reason": summary["reason"],
        "model_version": summary["model_version"],
        "family": family,
        "recipe": recipe,
        "recipe_text": short_recipe(recipe),
        "ndcg_at_10": champion,
        "popularity_ndcg_at_10": popularity,
        "ratio": (champion / popularity) if popularity else float("inf"),
        "ndcg_at_10_by_family": ndcg,
        "test_window": run.data.tags.get("window.test"),
        "validation_window": run.data.tags.get("window.validation"),
        "search_why": run.data.tags.get("search.why"),
        "eval_customers": run.data.metrics.get("eval_customers"),
        "train_seconds": round(run.data.metrics.get("train_seconds", float("nan")), 1),
    }


def reason_audit(home: Path, logical_date: str) -> dict:
    """Audit the published recommendations' reasons against the warehouse history."""
    from datetime import date

    from ml.publish import query_frame
    from ml.serving.reason_audit import load_customers, load_history, reason_contradictions
    from ml.warehouse import connect

    with affinity_home(home):
        published = query_frame(
            "SELECT customer_id, rank, product_id, reason, reason_code, reason_product_id "
            "FROM recommendations"
        )
        with connect(read_only=True) as con:
            history = load_history(con, date.fromisoformat(logical_date))
            customers = load_customers(con)
    problems = reason_contradictions(published, history, customers)
    never_bought = published.filter(
        (pl.col("reason_product_id") == pl.col("product_id"))
        & pl.col("reason_code").is_in(["bought_before", "bought_similar"])
    ).join(
        history.filter(pl.col("bought")).select(
            "customer_id", pl.col("product_id").alias("reason_product_id")
        ),
        on=["customer_id", "reason_product_id"],
        how="anti",
    )
    return {
        "rows_checked": published.height,
        "contradictions": problems.height,
        "problems": problems["problem"].value_counts().to_dicts() if problems.height else [],
        "bought_before_never_bought": never_bought.height,
        "reason_codes": dict(
            published["reason_code"].value_counts().sort("reason_code").iter_rows()
        ),
    }


def run_set(name: str) -> dict:
    from ml.orchestration.runner import run_stages
    from ml.pipeline import RunContext

    started = time.perf_counter()
    home, logical_date = prepare_home(name, WORK)
    fresh_mlflow(home)
    with affinity_home(home):
        summaries = run_stages(RunContext(logical_date, run_id=f"bench-{name}"), "train", "train")
    figures = train_figures(home, summaries["train"])
    with affinity_home(home):
        served = run_stages(RunContext(logical_date, run_id=f"bench-{name}"), "score", "publish")
    audit = reason_audit(home, logical_date)
    return {
        "name": name,
        "logical_date": logical_date,
        **figures,
        "served_model_version": served["score"]["model_version"],
        "audit": audit,
        "before": BEFORE.get(name),
        "seconds": round(time.perf_counter() - started, 1),
    }


def markdown(results: list[dict], meta: dict) -> str:
    def number(value):
        return "n/a" if value is None else f"{value:.4f}"

    lines = [
        "# Recommendations that hold up on any shop (issue 16)",
        "",
        "Each data set through the normal path (`ingest` -> `dbt_features` -> `train` with "
        "the default `TrainConfig`, then `score` -> `publish`), fresh MLflow registry. "
        "Test window = the last window before the logical date holding enough customers "
        "with held-out purchases; NDCG@10 over those customers.",
        "",
        "| data set | champion family | recipe | NDCG@10 | popularity NDCG@10 | ratio "
        "| before (NDCG@10, ratio) | test window |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        before = r["before"] or {}
        if before.get("ndcg_at_10"):
            then = (
                f"{before['ndcg_at_10']:.4f}, "
                f"{before['ndcg_at_10'] / before['popularity_ndcg_at_10']:.2f}x"
            )
        else:
            then = before.get("family", "n/a")
        ratio = "inf (popularity 0)" if r["ratio"] == float("inf") else f"{r['ratio']:.2f}x"
        lines.append(
            f"| {r['name']} | {r['family']} | {r['recipe_text']} | {number(r['ndcg_at_10'])} | "
            f"{number(r['popularity_ndcg_at_10'])} | {ratio} | {then} | "
            f"{r['test_window']} |"
        )
    lines += [
        "",
        "Gate decisions and why each recipe won:",
        "",
    ]
    for r in results:
        lines.append(
            f"- **{r['name']}** ({r['decision']}, v{r['model_version']}, train "
            f"{r['train_seconds']} s): {r['reason']}. Search: {r['search_why']}. "
            f"NDCG@10 by family: "
            + ", ".join(
                f"{k} {v:.4f}"
                for k, v in sorted(r["ndcg_at_10_by_family"].items())
                if v is not None
            )
        )
    lines += [
        "",
        "## Reason audit (published `recommendations` vs the warehouse history)",
        "",
        "| data set | rows checked | contradictions | 'bought' for a product never bought "
        "| reason codes |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        audit = r["audit"]
        codes = ", ".join(f"{k} {v:,}" for k, v in audit["reason_codes"].items())
        lines.append(
            f"| {r['name']} | {audit['rows_checked']:,} | {audit['contradictions']} | "
            f"{audit['bought_before_never_bought']} | {codes} |"
        )
    lines += [
        "",
        f"Measured {meta['measured_at']} on {meta['machine']['nproc']} shared CPUs "
        f"(load average {meta['load_average']}); peak RSS {meta['peak_rss_mb']} MB.",
        *(
            f"{r['name']}: kept from the run of {r['measured_at']} (not re-run this time)."
            for r in results
            if r.get("measured_at") != meta["measured_at"]
        ),
        "Data: UCI Online Retail II (Chen 2019, CC BY 4.0); Amazon reviews 2018 All Beauty "
        "5-core (Ni, Li & McAuley, EMNLP 2019).",
        "",
    ]
    return "\n".join(lines)


def kept_results(names: list[str]) -> list[dict]:
    """The rows of the data sets this run leaves out, from the previous results file (each
    keeps the time it was measured), so a run of some sets does not drop the others."""
    path = Path(__file__).resolve().parent / "results" / "recommender_acceptance.json"
    if not path.exists():
        return []
    previous = json.loads(path.read_text())
    return [
        {**r, "measured_at": r.get("measured_at", previous.get("measured_at"))}
        for r in previous.get("results", [])
        if r["name"] not in names
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(DATASETS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("mlflow", "alembic", "urllib3", "git"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    names = args.sets.split(",")
    measured_at = now_utc()
    results = [{**run_set(name), "measured_at": measured_at} for name in names]
    results = sorted(
        results + kept_results(names),
        key=lambda r: DATASETS.index(r["name"]) if r["name"] in DATASETS else len(DATASETS),
    )
    meta = {
        "machine": machine(),
        "measured_at": measured_at,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_mb": peak_rss_mb(),
    }
    text = markdown(results, meta)
    write_results("recommender_acceptance", {"results": results, **meta}, text)
    print(text)


if __name__ == "__main__":
    main()
