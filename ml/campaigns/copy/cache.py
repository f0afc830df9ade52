"""The copy cache: drafts by the hash of (brief, writer, version, model).

A re-run asks the endpoint nothing it asked before: the same brief for the same writer
version gives the cached message, so re-runs are identical and cost nothing. Only final
outcomes are stored (the accepted draft, or the built-in fallback after a draft failed
the guardrails twice); a transient endpoint failure is not cached, so the next run tries
again. The cache holds briefs' hashes and message texts only: no customer id, no PII.

Storage: SQLite (standard library) at ``$AFFINITY_HOME/copy_cache.sqlite``.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from ml.campaigns.copy.guardrails import Draft

CACHE_FILE = "copy_cache.sqlite"
_DDL = """
CREATE TABLE IF NOT EXISTS copy_cache (
    key TEXT PRIMARY KEY,
    writer TEXT NOT NULL,
    produced_by TEXT NOT NULL,
    subject TEXT,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


class CopyCache:
    """A persistent map from cache key to the final draft and the writer that produced it.

    Parameters
    ----------
    path : path-like or None
        SQLite file (created); ``None`` keeps the cache in memory (one run).
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(str(self.path) if self.path else ":memory:")
        self._con.execute(_DDL)
        self._con.commit()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> tuple[Draft, str] | None:
        """The cached ``(draft, produced_by)`` of ``key``, or ``None``."""
        row = self._con.execute(
            "SELECT subject, body, produced_by FROM copy_cache WHERE key = ?", [key]
        ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return Draft(body=row[1], subject=row[0]), row[2]

    def put(self, key: str, writer: str, draft: Draft, produced_by: str) -> None:
        """Store the final outcome of ``key`` (replacing any)."""
        self._con.execute(
            "INSERT OR REPLACE INTO copy_cache VALUES (?, ?, ?, ?, ?, ?)",
            [
                key,
                writer,
                produced_by,
                draft.subject,
                draft.body,
                datetime.now(UTC).isoformat(timespec="seconds"),
            ],
        )
        self._con.commit()

    def __len__(self) -> int:
        return int(self._con.execute("SELECT count(*) FROM copy_cache").fetchall()[0][0])

    def close(self) -> None:
        self._con.close()
