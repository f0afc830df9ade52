"""One home for state: every path Affinity reads or writes derives from ``AFFINITY_HOME``.

``AFFINITY_HOME`` defaults to ``.affinity/`` in the repository. Tests point it at a
temporary directory; nothing is written outside it.

Layout::

    $AFFINITY_HOME/
        warehouse.duckdb      the read-write warehouse (raw, staging, marts, ml schemas)
        mlflow.db             MLflow tracking + registry backend (SQLite)
        mlartifacts/          MLflow artifact store
        published/            analyst snapshots (affinity.duckdb and its predecessors)
        publish-work/         snapshots being built or rewritten (never seen by analysts)
        airflow/              AIRFLOW_HOME for `affinity run` / `make airflow`
        landing/              generated or imported input files
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DAGS_DIR = REPO_ROOT / "dags"
PLUGINS_DIR = REPO_ROOT / "plugins"

# Fixed default end of the generated shop, so the same seed gives the same bytes on any day.
DEFAULT_SHOP_END = "2026-10-31"


@dataclass(frozen=True)
class Paths:
    """Resolved locations inside one Affinity home."""

    home: Path

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def mlflow_db(self) -> Path:
        return self.home / "mlflow.db"

    @property
    def mlflow_tracking_uri(self) -> str:
        """SQLite in the home, unless ``AFFINITY_MLFLOW_TRACKING_URI`` names a tracking server."""
        return os.environ.get("AFFINITY_MLFLOW_TRACKING_URI") or f"sqlite:///{self.mlflow_db}"

    @property
    def mlartifacts(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def published(self) -> Path:
        return self.home / "published"

    @property
    def publish_work(self) -> Path:
        """Where snapshots are built or rewritten before their atomic rename into
        ``published/`` (same file system, outside the folder analysts browse)."""
        return self.home / "publish-work"

    @property
    def snapshot(self) -> Path:
        return self.published / "affinity.duckdb"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def dbt_target(self) -> Path:
        return self.home / "dbt" / "target"

    @property
    def dbt_logs(self) -> Path:
        return self.home / "dbt" / "logs"

    @property
    def cosmos_cache(self) -> Path:
        """Cosmos's cache (partial parse files): one per home, not the shared /tmp/cosmos."""
        return self.airflow_home / "cosmos_cache"

    @property
    def dbt_manifest(self) -> Path:
        """The parsed dbt project the DAG renders its dbt task groups from."""
        return self.home / "dbt" / "manifest.json"

    @property
    def inbox(self) -> Path:
        """Default landing folder of scheduled runs (drop the nightly export here)."""
        return self.landing / "inbox"

    def ensure(self) -> Paths:
        """Create the home and its directories; return self."""
        for path in (self.home, self.mlartifacts, self.published, self.airflow_home, self.landing):
            path.mkdir(parents=True, exist_ok=True)
        return self


def affinity_home() -> Path:
    """Return the absolute Affinity home from ``AFFINITY_HOME`` (default ``<repo>/.affinity``)."""
    raw = os.environ.get("AFFINITY_HOME")
    return Path(raw).expanduser().resolve() if raw else REPO_ROOT / ".affinity"


def paths() -> Paths:
    """Return the :class:`Paths` of the current Affinity home (read from the environment)."""
    return Paths(affinity_home())


DEFAULT_DUCKDB_MEMORY_LIMIT = "3GB"
_MEMORY_LIMIT = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def duckdb_memory_limit() -> str:
    """DuckDB's memory limit for every warehouse connection (``AFFINITY_DUCKDB_MEMORY_LIMIT``).

    DuckDB's default is 80% of the RAM; one Airflow process runs every task, so without a
    cap a large join could take the whole machine. Past the cap DuckDB spills to disk.
    """
    limit = os.environ.get("AFFINITY_DUCKDB_MEMORY_LIMIT", DEFAULT_DUCKDB_MEMORY_LIMIT).strip()
    if not _MEMORY_LIMIT.match(limit):
        raise ValueError(
            f"AFFINITY_DUCKDB_MEMORY_LIMIT={limit!r} is not a size: use e.g. '3GB' or '512MB'"
        )
    return limit
