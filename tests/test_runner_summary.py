"""A stage's summary is plain JSON for Airflow's XCom, whatever its metrics hold."""

from __future__ import annotations

import json
import math

import pytest

from ml.orchestration.runner import finite_values


def test_undefined_metrics_become_null_at_any_depth() -> None:
    summary = {
        "reviews": 12,
        "metrics": {"roc_auc": math.nan, "rating_mae": 0.4, "ratio": math.inf},
        "per_family": [{"ndcg": -math.inf}, {"ndcg": 0.3}],
        "label": "ok",
    }
    with pytest.raises(ValueError, match="JSON compliant"):
        json.dumps(summary, allow_nan=False)  # what failed the review_insight task
    plain = finite_values(summary)
    assert json.loads(json.dumps(plain, allow_nan=False)) == {
        "reviews": 12,
        "metrics": {"roc_auc": None, "rating_mae": 0.4, "ratio": None},
        "per_family": [{"ndcg": None}, {"ndcg": 0.3}],
        "label": "ok",
    }
