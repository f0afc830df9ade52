"""Review plots of a training run (matplotlib figures, logged to MLflow by the caller).

Each function takes plain figures (dicts and arrays) and returns a ``Figure``; none reads
the warehouse or MLflow.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: training runs in Airflow workers and tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

FAMILY_COLOURS = {
    "als": "#1f77b4",
    "bpr": "#ff7f0e",
    "popularity": "#7f7f7f",
    "champion": "#2ca02c",
}


def _colour(family: str) -> str:
    return FAMILY_COLOURS.get(family, "#9467bd")


def metrics_comparison(
    figures: dict[str, dict[str, float]],
    names: tuple[str, ...] = ("precision_at_10", "recall_at_10", "ndcg_at_10", "map_at_10"),
) -> Figure:
    """Grouped bars of the ranking metrics per candidate (ALS vs BPR vs popularity)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    families = list(figures)
    width = 0.8 / max(len(families), 1)
    positions = np.arange(len(names))
    for index, family in enumerate(families):
        values = [figures[family].get(name, np.nan) for name in names]
        bars = ax.bar(positions + index * width, values, width, label=family, color=_colour(family))
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(
        positions + width * (len(families) - 1) / 2, [n.replace("_at_", "@") for n in names]
    )
    ax.set_ylabel("test window")
    ax.set_title("Candidates on the test window")
    ax.legend()
    fig.tight_layout()
    return fig


def recall_curves(curves: dict[str, np.ndarray]) -> Figure:
    """Recall@k for k = 1..depth, one line per candidate."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for family, curve in curves.items():
        if curve is None or not len(curve):
            continue
        ax.plot(np.arange(1, len(curve) + 1), curve, label=family, color=_colour(family))
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_title("Recall@k on the test window")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def frequency_vs_popularity(
    frequencies: dict[str, np.ndarray], item_popularity: np.ndarray, k: int = 10
) -> Figure:
    """How often each product is recommended (top-k) against its training popularity."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for family, frequency in frequencies.items():
        shown = frequency > 0
        ax.scatter(
            item_popularity[shown] + 1,
            frequency[shown],
            s=8,
            alpha=0.5,
            label=f"{family} ({int(shown.sum())} products)",
            color=_colour(family),
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("distinct buyers in training + 1")
    ax.set_ylabel(f"times in a top-{k} list")
    ax.set_title("Recommendation frequency vs product popularity")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def segment_ndcg(segment_figures: dict[str, dict[str, dict[str, float]]]) -> Figure:
    """NDCG@10 per customer segment, one bar per candidate."""
    segments = sorted({s for per_family in segment_figures.values() for s in per_family})
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(segments) + 2), 4.5))
    if not segments:
        ax.text(0.5, 0.5, "no segment data", ha="center", va="center")
        ax.set_axis_off()
        return fig
    families = list(segment_figures)
    width = 0.8 / max(len(families), 1)
    positions = np.arange(len(segments))
    for index, family in enumerate(families):
        values = [
            segment_figures[family].get(segment, {}).get("ndcg_at_10", np.nan)
            for segment in segments
        ]
        ax.bar(positions + index * width, values, width, label=family, color=_colour(family))
    counts = [
        int(next(iter(segment_figures.values())).get(segment, {}).get("eval_customers", 0))
        for segment in segments
    ]
    labels = [f"{segment}\n(n={count})" for segment, count in zip(segments, counts, strict=True)]
    ax.set_xticks(positions + width * (len(families) - 1) / 2, labels, fontsize=8)
    ax.set_ylabel("ndcg@10")
    ax.set_title("NDCG@10 per RFM segment (test window)")
    ax.legend()
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    """Release a figure's memory."""
    plt.close(fig)
