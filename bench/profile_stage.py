"""Profile one pipeline stage with pyinstrument on an existing Affinity home.

Usage::

    python bench/profile_stage.py --home DIR --as-of YYYY-MM-DD --stage train|score|similar|segments \
        [--name LABEL]

``DIR`` is a home a DAG run has built (``bench_pipeline.py --keep`` leaves them). The stage
re-runs (idempotently: it replaces its own outputs for the date) under the sampling
profiler; the call tree goes to ``bench/results/profile_<stage>_<label>.txt`` (committed)
and an interactive ``.html`` beside it (not committed).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._common import RESULTS_DIR, peak_rss_mb  # noqa: E402


def stage_function(stage: str, as_of: str):
    """Return a no-argument callable running ``stage`` for ``as_of``."""
    if stage == "train":
        from ml.orchestration.runner import run_stage
        from ml.pipeline import RunContext

        return lambda: run_stage("train", RunContext(as_of))
    from ml.serving.config import ScoreConfig
    from ml.serving.model import load_serving_model
    from ml.serving.recommend import score
    from ml.serving.segments import build_segments
    from ml.serving.similar import similar_products

    model = load_serving_model(as_of)  # loading the model is not part of the profile
    return {
        "score": lambda: score(as_of, config=ScoreConfig(n=20), model=model),
        "similar": lambda: similar_products(as_of, model=model),
        "segments": lambda: build_segments(as_of, model=model),
    }[stage]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--stage", choices=["train", "score", "similar", "segments"], required=True)
    parser.add_argument("--name", default="", help="label of the result files (e.g. 1m_before)")
    args = parser.parse_args()
    os.environ["AFFINITY_HOME"] = str(args.home.resolve())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from pyinstrument import Profiler

    run = stage_function(args.stage, args.as_of)
    profiler = Profiler(interval=0.005)
    started = time.perf_counter()
    profiler.start()
    run()
    profiler.stop()
    seconds = time.perf_counter() - started
    label = f"{args.stage}_{args.name}" if args.name else args.stage
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    header = (
        f"# profile of stage {args.stage} as of {args.as_of} on {args.home}\n"
        f"# wall {seconds:.2f} s, peak RSS {peak_rss_mb()['self']} MB, "
        f"load average {os.getloadavg()[0]:.2f}\n"
    )
    (RESULTS_DIR / f"profile_{label}.txt").write_text(header + text)
    (RESULTS_DIR / f"profile_{label}.html").write_text(profiler.output_html())
    print(header + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
