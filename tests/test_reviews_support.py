"""Where the real review data sets are, for tests and benchmarks (``../shared/data``).

A missing file skips the test on a developer machine and fails it under ``CI=true``
(CI has ``../shared`` beside the repository, so a missing file there is a broken setup).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
AMAZON_BEAUTY = SHARED_DATA / "amazon_all_beauty_2018" / "All_Beauty_5.json.gz"
WOMENS_CLOTHING = (
    SHARED_DATA / "womens_clothing_reviews" / "womens_clothing_ecommerce_reviews.csv.gz"
)


def require(path: Path) -> Path:
    """Return ``path`` if it exists; otherwise skip (locally) or fail (``CI=true``)."""
    if path.exists():
        return path
    message = f"real data not found at {path} (../shared/data beside the repository)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
