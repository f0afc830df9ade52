"""Publishing: the analyst snapshot, its run history, its privacy checks, reading it.

Modules
-------
:mod:`.snapshot`  build, verify and atomically swap in the snapshot; rollback
:mod:`.runs`      ``pipeline_runs``: row counts, checksums and timings of each run
:mod:`.privacy`   no PII and no erased customer in a snapshot
:mod:`.erasure`   snapshots rewritten without erased customers
:mod:`.query`     read-only queries on the live snapshot
"""

from ml.publish.query import query, query_frame, snapshot_checksums
from ml.publish.snapshot import (
    PublishError,
    PublishReport,
    list_snapshots,
    publish,
    rollback,
)

__all__ = [
    "PublishError",
    "PublishReport",
    "list_snapshots",
    "publish",
    "query",
    "query_frame",
    "rollback",
    "snapshot_checksums",
]
