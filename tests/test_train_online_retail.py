"""Acceptance on the real Online Retail II data (slow): the champion holds its 3.2x.

Measured through the pipeline's own path: the export is imported and ingested, the dbt
marts are built (``online_retail_home``: the ``ingest`` and ``dbt_features`` stages), and
the ``train`` stage trains on ``marts.interaction_events`` as the nightly run does, with
the default configuration (the weekly recipe search included).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ONLINE_RETAIL_AS_OF

from ml.train import load_champion


@pytest.mark.slow
def test_the_champion_beats_popularity_by_at_least_three_point_two(
    online_retail_home: Path, monkeypatch: pytest.MonkeyPatch
):
    from ml.orchestration.runner import run_stage
    from ml.pipeline import RunContext

    monkeypatch.setenv("AFFINITY_HOME", str(online_retail_home))
    # Train now even if another test of the session already trained this home today.
    monkeypatch.setenv("AFFINITY_RETRAIN_EVERY_DAYS", "0")
    summary = run_stage("train", RunContext(ONLINE_RETAIL_AS_OF))

    ndcg = summary["ndcg_at_10"]
    family = load_champion().family
    ratio = ndcg[family] / ndcg["popularity"]
    print(
        f"{family} ndcg@10 {ndcg[family]:.4f} vs popularity {ndcg['popularity']:.4f} ({ratio:.2f}x)"
    )
    assert summary["decision"] == "champion", summary["reason"]
    assert ratio >= 3.2, f"the champion's NDCG@10 is only {ratio:.2f}x popularity"
    assert ndcg[family] >= max(v for k, v in ndcg.items() if k != "champion")
