"""Scoring throughput: exact top-N with filters and reasons on a synthetic factor model.

A 64-factor model over 50,000 products and 100,000 customers (defaults), each customer with
~20 products in their history (half bought within the exclusion window), 50 categories, 3%
inactive products. Times :func:`ml.serving.recommend.recommend_all` end to end (index maps, sparse
history matrices, top-N with exclusions and the category cap, reasons, the result frame)
and writes ``bench/results/score_10m.json`` (or ``--out``).

Run::

    # the 10m shop's shape: 500k customers x 50k products
    .venv/bin/python bench/bench_score.py --customers 500000 --products 50000
    # the 1m shop's shape: 50k x 5k
    .venv/bin/python bench/bench_score.py --customers 50000 --products 5000 \
        --out bench/results/score_1m.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import duckdb  # noqa: E402
import implicit  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from ml.serving.config import ScoreConfig
from ml.serving.inputs import ScoringInputs
from ml.serving.model import ScoringModel
from ml.serving.recommend import recommend_all  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "score_10m.json"
LOGICAL_DATE = date(2026, 10, 31)


def synthetic_inputs(customers: int, products: int, factors: int, history: int, seed: int):
    """Return a ScoringModel and ScoringInputs of the requested size (every customer warm)."""
    rng = np.random.default_rng(seed)
    customer_ids = np.array([f"C{i:07d}" for i in range(customers)])
    product_ids = np.array([f"P{i:06d}" for i in range(products)])
    model = ScoringModel(
        "bench-als",
        "0",
        "als",
        customer_ids,
        product_ids,
        rng.standard_normal((customers, factors), dtype=np.float32) * 0.1,
        rng.standard_normal((products, factors), dtype=np.float32) * 0.1,
    )
    catalogue = pl.DataFrame(
        {
            "product_id": product_ids,
            "category": [f"category {i % 50:02d}" for i in range(products)],
            "eligible": rng.random(products) > 0.03,
        }
    )
    people = pl.DataFrame(
        {
            "customer_id": customer_ids,
            "country": ["United Kingdom"] * customers,
            "segment": ["Loyal"] * customers,
        }
    )
    pairs = customers * history
    end = datetime.combine(LOGICAL_DATE + timedelta(days=1), datetime.min.time())
    age_days = rng.uniform(0, 730, pairs)
    past = (
        pl.DataFrame(
            {
                "customer_id": np.repeat(customer_ids, history),
                "product_id": product_ids[rng.integers(0, products, pairs)],
                "bought": True,
                "last_bought_at": np.datetime64(end)
                - (age_days * 86400e6).astype("timedelta64[us]"),
            }
        )
        .unique(["customer_id", "product_id"])
        .sort("customer_id", "product_id")
    )
    popular = pl.DataFrame(
        {
            "group_kind": ["overall"] * 200,
            "group_value": [""] * 200,
            "product_id": product_ids[:200],
            "buyers": np.arange(200, 0, -1),
        }
    )
    return model, ScoringInputs(LOGICAL_DATE, people, catalogue, past, popular)


def gemm_limit(user_factors: np.ndarray, items: np.ndarray, rows: int = 20_000) -> float:
    """Customers/s of the float32 score matrix alone (no selection), in 1,024-row blocks
    on every core (BLAS threads): the hardware's ceiling for exact scoring here."""
    from threadpoolctl import threadpool_limits

    sample = user_factors[: min(rows, len(user_factors))]
    out = np.empty((1024, len(items)), dtype=np.float32)
    with threadpool_limits(limits=os.cpu_count(), user_api="blas"):
        started = time.perf_counter()
        for start in range(0, len(sample), 1024):
            block = sample[start : start + 1024]
            np.matmul(block, items.T, out=out[: len(block)])
        return len(sample) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--history", type=int, default=20, help="products per customer")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="topk threads (0: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    built = time.perf_counter()
    model, inputs = synthetic_inputs(
        args.customers, args.products, args.factors, args.history, args.seed
    )
    build_seconds = time.perf_counter() - built
    config = ScoreConfig(n=args.n, exclusion_days=365, max_per_category=5, num_threads=args.threads)
    started = time.perf_counter()
    result = recommend_all(inputs, model, config)
    seconds = time.perf_counter() - started

    # The ceiling on this machine right now: implicit's unfiltered top-N alone (no
    # exclusions, cap, reasons or output), on the first 20,000 customers.
    from implicit.cpu.topk import topk

    sample = model.user_factors[: min(20_000, args.customers)]
    kernel_started = time.perf_counter()
    topk(model.item_factors, sample, args.n, num_threads=args.threads)
    kernel_rate = len(sample) / (time.perf_counter() - kernel_started)
    gemm_rate = gemm_limit(model.user_factors, model.item_factors)

    per_customer = result.group_by("customer_id").len()["len"]
    figures = {
        "benchmark": "ml.serving.recommend.recommend_all (exact top-N, exclusion window, category cap, reasons)",
        "customers": args.customers,
        "products": args.products,
        "factors": args.factors,
        "history_products_per_customer": args.history,
        "n": args.n,
        "max_per_category": config.max_per_category,
        "exclusion_days": config.exclusion_days,
        "seconds": round(seconds, 3),
        "customers_per_second": round(args.customers / seconds, 1),
        "raw_topk_customers_per_second": round(kernel_rate, 1),
        "gemm_only_customers_per_second": round(gemm_rate, 1),
        "share_of_bare_topk": round(args.customers / seconds / kernel_rate, 3),
        "rows": result.height,
        "customers_with_full_lists": int((per_customer == args.n).sum()),
        "reasons_named": int(result["reason_product_id"].is_not_null().sum()),
        "input_build_seconds": round(build_seconds, 3),
        # Kernel peak RSS of the whole process (inputs + scoring + the result frame).
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "topk_threads": args.threads,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        },
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "implicit": implicit.__version__,
            "polars": pl.__version__,
            "duckdb": duckdb.__version__,
        },
        "measured_at": datetime.now().isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
