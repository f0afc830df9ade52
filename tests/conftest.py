"""Shared pytest fixtures: every test gets its own AFFINITY_HOME; real data is located once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
ONLINE_RETAIL_CSV = SHARED_DATA / "online_retail_ii" / "online_retail_II_2009-2010.csv.gz"

# Before any test imports implicit / airflow.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")


@pytest.fixture(autouse=True)
def affinity_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A fresh, empty Affinity home per test, so nothing is written into the repository."""
    home = tmp_path_factory.mktemp("affinity_home")
    monkeypatch.setenv("AFFINITY_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def online_retail_csv() -> Path:
    """The real Online Retail II export from ../shared/data (skips when absent)."""
    if not ONLINE_RETAIL_CSV.exists():
        pytest.skip(
            f"real data not found at {ONLINE_RETAIL_CSV} (CI has ../shared beside the repo)"
        )
    return ONLINE_RETAIL_CSV
