"""Erasure in MLflow: no logged model keeps an erased customer's id or factors.

A recommender bundle (:class:`~ml.train.bundle.TrainedRecommender` on disk) holds, per
customer, an id (``customer_ids.npy``), a row of user factors (``model/arrays.npz``) and a
row of past purchases (``bought.npz``). :func:`scrub_registered_models` looks at every
logged model of every experiment (so every registered version, the serving champion
first among them) and re-exports each bundle that holds an erased customer without them:
the rows are dropped from all three files and the bundle is written back over the model's
artifacts, through MLflow's artifact repository (a local store or a tracking server's).
The version keeps its number, aliases and gate record; it gets tags saying when it was
scrubbed and how many customers it lost (never which).

What stays is aggregate: item factors and popularity counts were fitted over all
customers; the next training, which no longer sees the erased ones (dbt drops them in
staging), re-fits them.

A logged model is tagged with a digest of the request set it was checked against, so a
later call skips it until a new request arrives. The pipeline calls this after the
ingest that loads requests and again before scoring, so the champion serves without them
from the next scoring on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import scipy.sparse as sp
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from ml.config import Paths, paths
from ml.dates import utcnow

log = logging.getLogger(__name__)

CHECKED_TAG = "erasure.requests_digest"
SCRUBBED_AT_TAG = "erasure.scrubbed_at"
REMOVED_TAG = "erasure.customers_removed"
IDS_FILE = "customer_ids.npy"
# Arrays of a saved model with one row per customer (ALS / BPR user factors).
_USER_ARRAY_PREFIX = "user"


@dataclass
class ModelErasureReport:
    """What :func:`scrub_registered_models` did.

    Attributes
    ----------
    checked : int
        Logged models whose artifacts were inspected.
    skipped : int
        Logged models already checked against the same requests.
    scrubbed : dict of str to int
        ``{model_id: customers removed}`` (summed over its bundles).
    versions : list of str
        Registered versions re-exported, as ``name/version``.
    """

    checked: int = 0
    skipped: int = 0
    scrubbed: dict[str, int] = field(default_factory=dict)
    versions: list[str] = field(default_factory=list)


def requests_digest(customer_ids: Iterable[str]) -> str:
    """A short digest of a set of requests (compared, never reversed; holds no id)."""
    text = "\n".join(sorted({str(c).strip() for c in customer_ids}))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scrub_bundle(directory: Path | str, customer_ids: Iterable[str]) -> int:
    """Drop ``customer_ids``' rows from a bundle directory in place; return how many.

    Rewrites ``customer_ids.npy``, every ``user*`` array of ``model/arrays.npz``,
    ``bought.npz`` and the customer count in ``meta.json``; leaves a bundle without any of
    them untouched.
    """
    directory = Path(directory)
    ids = np.load(directory / IDS_FILE, allow_pickle=False)
    keep = ~np.isin(ids.astype(str), np.asarray(sorted(set(customer_ids)), dtype=str))
    removed = int((~keep).sum())
    if not removed:
        return 0
    np.save(directory / IDS_FILE, ids[keep])
    arrays_path = directory / "model" / "arrays.npz"
    if arrays_path.exists():
        with np.load(arrays_path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        for name, array in arrays.items():
            if name.startswith(_USER_ARRAY_PREFIX) and array.ndim and len(array) == len(ids):
                arrays[name] = array[keep]
        np.savez(arrays_path, **arrays)
    bought_path = directory / "bought.npz"
    if bought_path.exists():
        bought = sp.load_npz(bought_path).tocsr()
        if bought.shape[0] == len(ids):
            sp.save_npz(bought_path, bought[keep])
    meta_path = directory / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        meta["n_customers"] = int(keep.sum())
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True))
    return removed


def _bundle_paths(repo, path: str = "", depth: int = 3) -> list[str]:
    """Artifact paths of the directories holding a ``customer_ids.npy``."""
    found = []
    for info in repo.list_artifacts(path or None):
        if info.is_dir and depth > 0:
            found += _bundle_paths(repo, info.path, depth - 1)
        elif info.path.rsplit("/", 1)[-1] == IDS_FILE:
            found.append(path)
    return found


def _scrub_logged_model(repo, ids: set[str]) -> int:
    """Re-export every bundle of one logged model without ``ids``; return customers removed."""
    removed: set[str] = set()
    for bundle in _bundle_paths(repo):
        with tempfile.TemporaryDirectory(prefix="affinity-erasure-") as scratch:
            ids_file = f"{bundle}/{IDS_FILE}" if bundle else IDS_FILE
            held = np.load(repo.download_artifacts(ids_file, scratch), allow_pickle=False)
            found = ids & set(held.astype(str))
            if not found:
                continue
            local = Path(repo.download_artifacts(bundle or "", scratch))
            scrub_bundle(local, found)
            repo.log_artifacts(str(local), bundle or None)
            removed |= found
    return len(removed)


def _registered_versions(client: MlflowClient) -> dict[str, list[tuple[str, str]]]:
    """``{model_id: [(name, version), ...]}`` of every registered version."""
    versions: dict[str, list[tuple[str, str]]] = {}
    for version in client.search_model_versions():
        model_id = getattr(version, "model_id", None) or str(version.source).rsplit("/", 1)[-1]
        versions.setdefault(model_id, []).append((version.name, str(version.version)))
    return versions


def _logged_models(client: MlflowClient):
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return
    token = None
    while True:
        page = client.search_logged_models(experiments, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def scrub_registered_models(
    customer_ids: Sequence[str], *, home: Paths | None = None
) -> ModelErasureReport:
    """Re-export every logged model that holds one of ``customer_ids`` without them.

    Parameters
    ----------
    customer_ids : sequence of str
        The erased customers (``raw.erasure_requests``).
    home : Paths, optional
        Affinity home whose MLflow store is scrubbed (default: ``$AFFINITY_HOME``).

    Returns
    -------
    ModelErasureReport
    """
    report = ModelErasureReport()
    ids = {str(c).strip() for c in customer_ids if c is not None}
    if not ids:
        return report
    home = home or paths()
    # Proxied artifact stores (an MLflow server's mlflow-artifacts:/) resolve through the
    # active tracking URI, as when the champion is loaded.
    mlflow.set_tracking_uri(home.mlflow_tracking_uri)
    mlflow.set_registry_uri(home.mlflow_tracking_uri)
    client = MlflowClient()
    digest = requests_digest(ids)
    versions = _registered_versions(client)
    for logged in _logged_models(client):
        if logged.tags.get(CHECKED_TAG) == digest:
            report.skipped += 1
            continue
        report.checked += 1
        removed = _scrub_logged_model(get_artifact_repository(logged.artifact_location), ids)
        tags = {CHECKED_TAG: digest}
        if removed:
            report.scrubbed[logged.model_id] = removed
            tags |= {
                SCRUBBED_AT_TAG: utcnow().isoformat(timespec="seconds"),
                REMOVED_TAG: str(removed),
            }
            for name, version in versions.get(logged.model_id, []):
                for key in (SCRUBBED_AT_TAG, REMOVED_TAG):
                    client.set_model_version_tag(name, version, key, tags[key])
                report.versions.append(f"{name}/{version}")
            log.warning(
                "erasure: re-exported logged model %s (%s) without %d customer row(s)",
                logged.model_id,
                ", ".join(f"{n} v{v}" for n, v in versions.get(logged.model_id, []))
                or "unregistered",
                removed,
            )
        client.set_logged_model_tags(logged.model_id, tags)
    return report
