"""Experiment: does the bundled sentiment prior help a shop with few labelled negatives?

Usage::

    .venv/bin/python bench/experiment_sentiment_prior.py cv
    .venv/bin/python bench/experiment_sentiment_prior.py holdout --variant NAME

``cv`` compares variants ONLY inside Amazon All Beauty's training part (the time split of
:func:`ml.text.sentiment.train_sentiment`, texts deduplicated first): stratified 5-fold
repeated 4 times and 5-fold grouped by product. It reports, per variant, the mean fold
ROC AUC (negative 1-2 vs positive 4-5) and in how many folds it beats the current model.
``holdout`` then looks at the time-split hold-out once for the chosen variant: ROC AUC,
its bootstrap 95 % interval, and the paired bootstrap difference against the current model
(the same resampled texts for both). Figures go to ``bench/notes/sentiment_prior_*.json``.

Variants (the prior: :mod:`ml.text.sentiment_prior`, built from Women's Clothing only):

* ``current``: the shop model as it is (:class:`SentimentConfig` defaults);
* ``prior_alone``: the prior's log-odds, no shop training (the fallback candidate);
* ``vader_alone``: the VADER fallback of today;
* ``feature_xS``: the shop model with one more feature, ``S * tanh(log_odds / 2)``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

AMAZON_BEAUTY = (
    REPO_ROOT.parent / "shared" / "data" / "amazon_all_beauty_2018" / "All_Beauty_5.json.gz"
)
NOTES = REPO_ROOT / "bench" / "notes"
SCALES = (1.0, 2.0, 4.0)
BOOTSTRAP = 2_000


def amazon_split() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Amazon All Beauty's distinct labelled texts, split as train_sentiment splits them."""
    from ml.ingest.importers.amazon_reviews import import_amazon_reviews
    from ml.text.dataset import labelled_texts
    from ml.text.sentiment import SentimentConfig, split_for_training

    with tempfile.TemporaryDirectory(prefix="affinity_prior_exp_") as tmp:
        import_amazon_reviews(AMAZON_BEAUTY, Path(tmp))
        reviews = pl.read_parquet(Path(tmp) / "reviews.parquet")
    train, test, split = split_for_training(labelled_texts(reviews), SentimentConfig())
    assert split.method == "time", split
    return train, test


def _prior_features_class():
    from ml.text.features import ReviewFeatures, joined_texts, review_columns
    from ml.text.sentiment_prior import prior_log_odds

    class WithPrior(ReviewFeatures):
        """ReviewFeatures plus ``scale * tanh(prior log-odds / 2)`` as one column."""

        def __init__(self, scale: float = 1.0, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

        def _blocks(self, titles, texts):
            import scipy.sparse as sp

            column = self.scale * np.tanh(prior_log_odds(texts) / 2.0)
            return [*super()._blocks(titles, texts), sp.csr_matrix(column[:, None])]

    del joined_texts, review_columns
    return WithPrior


def fit_variant(name: str, train: pl.DataFrame):
    """A fitted model for ``name`` (or a scorer needing no fit)."""
    from sklearn.pipeline import Pipeline

    from ml.text.sentiment import LexiconSentiment, SentimentConfig, build_pipeline
    from ml.text.sentiment_prior import PriorSentiment

    if name == "prior_alone":
        return PriorSentiment().fit()
    if name == "vader_alone":
        return LexiconSentiment().fit()
    config = SentimentConfig()
    pipeline = build_pipeline(config)
    if name.startswith("feature_x"):
        base = pipeline.named_steps["features"]
        features = _prior_features_class()(
            scale=float(name.removeprefix("feature_x")), **base.get_params()
        )
        pipeline = Pipeline(
            [("features", features), ("classifier", pipeline.named_steps["classifier"])]
        )
    elif name != "current":
        raise ValueError(name)
    return pipeline.fit(train, train["rating"].to_numpy())


def scores_of(model, frame: pl.DataFrame) -> np.ndarray:
    from ml.text.metrics import sentiment_scores
    from ml.text.sentiment import rating_distribution

    return sentiment_scores(rating_distribution(model, frame))


def polar_auc(ratings: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    polar = ratings != 3
    negative = ratings[polar] <= 2
    if not 0 < negative.sum() < negative.size:
        return float("nan")
    return float(roc_auc_score(negative, -scores[polar]))


def folds(train: pl.DataFrame) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    from ml.text.dataset import rating_labels

    labels = rating_labels(train["rating"].to_numpy())
    out = []
    for repeat in range(4):
        splitter = StratifiedKFold(5, shuffle=True, random_state=repeat)
        for k, (a, b) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
            out.append((f"strat{repeat}.{k}", a, b))
    groups = train["product_id"].to_numpy()
    for k, (a, b) in enumerate(GroupKFold(5).split(np.zeros(len(labels)), labels, groups)):
        out.append((f"product.{k}", a, b))
    return out


def run_cv(variants: list[str]) -> dict:
    train, _ = amazon_split()
    ratings = train["rating"].to_numpy()
    table: dict[str, dict[str, float]] = {v: {} for v in variants}
    started = time.perf_counter()
    for fold, a, b in folds(train):
        part, held = train[a], train[b]
        for variant in variants:
            model = fit_variant(variant, part)
            table[variant][fold] = polar_auc(ratings[b], scores_of(model, held))
        print(fold, {v: round(table[v][fold], 4) for v in variants}, flush=True)
    summary = {}
    for variant in variants:
        for kind in ("strat", "product"):
            keys = [f for f in table[variant] if f.startswith(kind)]
            mine = np.array([table[variant][f] for f in keys])
            base = np.array([table["current"][f] for f in keys])
            ok = np.isfinite(mine) & np.isfinite(base)
            summary.setdefault(variant, {})[kind] = {
                "mean_auc": float(np.nanmean(mine)),
                "wins_vs_current": int((mine[ok] > base[ok]).sum()),
                "ties": int((mine[ok] == base[ok]).sum()),
                "folds": int(ok.sum()),
            }
    return {
        "train_texts": train.height,
        "train_negative": int((ratings <= 2).sum()),
        "seconds": time.perf_counter() - started,
        "folds": table,
        "summary": summary,
    }


def paired_bootstrap(ratings, mine, base, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    own, diffs = [], []
    n = len(ratings)
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, n, n)
        a, b = polar_auc(ratings[pick], mine[pick]), polar_auc(ratings[pick], base[pick])
        if np.isfinite(a) and np.isfinite(b):
            own.append(a)
            diffs.append(a - b)
    diffs = np.array(diffs)
    return {
        "roc_auc_95ci": [float(np.percentile(own, 2.5)), float(np.percentile(own, 97.5))],
        "diff_mean": float(diffs.mean()),
        "diff_95ci": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))],
        "share_diff_positive": float((diffs > 0).mean()),
    }


def run_holdout(variant: str) -> dict:
    train, test = amazon_split()
    ratings = test["rating"].to_numpy()
    chosen = scores_of(fit_variant(variant, train), test)
    current = scores_of(fit_variant("current", train), test)
    prior = scores_of(fit_variant("prior_alone", train), test)
    return {
        "variant": variant,
        "test_texts": test.height,
        "test_negative": int((ratings <= 2).sum()),
        "roc_auc": polar_auc(ratings, chosen),
        "current_roc_auc": polar_auc(ratings, current),
        "prior_alone_roc_auc": polar_auc(ratings, prior),
        **paired_bootstrap(ratings, chosen, current),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("cv", "holdout"))
    parser.add_argument("--variant", default=None)
    parser.add_argument("--variants", nargs="*", default=None)
    args = parser.parse_args()
    NOTES.mkdir(parents=True, exist_ok=True)
    if args.mode == "cv":
        variants = args.variants or [
            "current", "prior_alone", "vader_alone", *(f"feature_x{s:g}" for s in SCALES)
        ]  # fmt: skip
        result = run_cv(variants)
        path = NOTES / "sentiment_prior_cv.json"
    else:
        result = run_holdout(args.variant)
        path = NOTES / "sentiment_prior_holdout.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result.get("summary", result), indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
