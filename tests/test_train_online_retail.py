"""Acceptance on the real Online Retail II data (slow): ALS champion >= 2.5x popularity.

Measured through the pipeline's own path: the export is imported and ingested, the dbt
marts are built (``online_retail_home``: the ``ingest`` and ``dbt_features`` stages), and
the ``train`` stage trains on ``marts.interaction_events`` as the nightly run does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ONLINE_RETAIL_AS_OF

from ml.train import load_champion


@pytest.mark.slow
def test_tuned_als_champion_reaches_two_and_a_half_times_popularity(
    online_retail_home: Path, monkeypatch: pytest.MonkeyPatch
):
    from ml.orchestration.runner import run_stage
    from ml.pipeline import RunContext

    monkeypatch.setenv("AFFINITY_HOME", str(online_retail_home))
    summary = run_stage("train", RunContext(ONLINE_RETAIL_AS_OF))

    ndcg = summary["ndcg_at_10"]
    ratio = ndcg["als"] / ndcg["popularity"]
    print(f"ALS ndcg@10 {ndcg['als']:.4f} vs popularity {ndcg['popularity']:.4f} ({ratio:.2f}x)")
    assert summary["decision"] == "champion", summary["reason"]
    assert ratio >= 2.5, f"ALS NDCG@10 is only {ratio:.2f}x popularity"
    assert ndcg["als"] > ndcg["bpr"]
    assert load_champion().family == "als"
