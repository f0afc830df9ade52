"""Erasure outside the warehouse: the registered models and the analyst snapshots.

The ingest applies erasure requests inside the warehouse in its own transaction
(:func:`ml.warehouse.erasure.apply_erasure`). What lives in other stores follows here,
idempotently: MLflow's logged models are re-exported without the customers
(:mod:`ml.train.erasure`) and every snapshot holding them is rewritten
(:mod:`ml.publish.erasure`). The ingest stage calls it right after loading, and the score
stage again before it loads the champion, so no scoring serves an erased customer even
when the ingest ran on its own (``affinity ingest``).
"""

from __future__ import annotations

import logging
from typing import Any

from ml.warehouse import connect
from ml.warehouse.erasure import erased_customer_ids

log = logging.getLogger(__name__)


def erase_outside_warehouse() -> dict[str, Any]:
    """Scrub models and snapshots of every requested customer; return what changed."""
    with connect() as con:
        ids = erased_customer_ids(con)
    if not ids:
        return {}
    # Heavy imports only when there is something to erase.
    from ml.publish.erasure import rewrite_snapshots
    from ml.train.erasure import scrub_registered_models

    models = scrub_registered_models(ids)
    snapshots = rewrite_snapshots(ids)
    summary = {
        "model_versions_scrubbed": models.versions,
        "snapshots_rewritten": sorted(path.name for path in snapshots),
    }
    if models.versions or snapshots:
        log.info("erasure outside the warehouse: %s", summary)
    return summary
