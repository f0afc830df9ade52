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


def shared_data(path: Path) -> Path:
    """``path`` under ../shared/data, or skip the test when it is absent.

    Under ``CI=true`` a missing file fails the test instead: CI has ../shared beside the
    repository, so a skip there would hide a real-data test that never ran.
    """
    if path.exists():
        return path
    message = f"real data not found at {path} (../shared/data beside the repository)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + "; CI must have it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def online_retail_csv() -> Path:
    """The real Online Retail II export from ../shared/data."""
    return shared_data(ONLINE_RETAIL_CSV)


# The last day of the Online Retail II export: the logical date of its runs.
ONLINE_RETAIL_AS_OF = "2010-12-09"


@pytest.fixture(scope="session")
def online_retail_home(online_retail_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Affinity home holding the real export after the pipeline's own ``ingest`` and
    ``dbt_features`` stages (built once per session; tests only read it or train in it)."""
    from ml.orchestration.runner import run_stages
    from ml.pipeline import RunContext

    home = tmp_path_factory.mktemp("online_retail_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AFFINITY_HOME", str(home))
        patch.delenv("AFFINITY_PII_SALT", raising=False)
        ctx = RunContext(ONLINE_RETAIL_AS_OF, input_path=str(online_retail_csv))
        run_stages(ctx, "ingest", "dbt_features")
    return home
