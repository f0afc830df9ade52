"""Which model was champion on which date, and which run already trained which inputs.

Two things the ``champion`` alias alone cannot say:

* **Champion as of a date.** The alias points at today's champion, so a backfill of last
  month would score with a model trained on later data. Every promotion therefore tags
  its model version with the run date it was promoted for
  (:data:`PROMOTED_AS_OF_TAG`); :func:`champion_as_of` reads that history back, and
  the alias itself only moves forward in time (a backfill's promotion never replaces
  the champion of a later date).
* **Idempotent training.** A retry or re-run of the same date on the same inputs must
  not register another version. :func:`training_fingerprint` hashes what training reads
  (events, categories, configuration, date, library versions); the finished version
  carries it (:data:`FINGERPRINT_TAG`) and :func:`version_with_fingerprint` finds it.

Train dates are the training's ``as_of`` (the day after the last day of data it sees):
the pipeline's logical day ``L`` trains ``as_of = L + 1`` and scores ``L`` with
``champion_as_of(L + 1)``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import warnings
from datetime import date

import mlflow
import numpy as np
import polars as pl
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ml.train.interactions import hash_enum_categories
from ml.train.tracking import CHAMPION, alias_version

log = logging.getLogger(__name__)

PROMOTED_AS_OF_TAG = "champion.promoted_as_of"
FINGERPRINT_TAG = "train.fingerprint"


def _versions(name: str) -> list[ModelVersion]:
    try:
        return list(MlflowClient().search_model_versions(f"name = '{name}'", max_results=100_000))
    except MlflowException:
        return []


def champion_history(name: str) -> list[tuple[date, int]]:
    """Every promotion of ``name``: ``(promoted_as_of, version)``, oldest first."""
    history = []
    for version in _versions(name):
        promoted = version.tags.get(PROMOTED_AS_OF_TAG)
        if promoted:
            history.append((date.fromisoformat(promoted), int(version.version)))
    return sorted(history)


def champion_as_of(name: str, as_of: date) -> str | None:
    """The version that was champion for a run dated ``as_of`` (None: no champion yet).

    The latest promotion on or before ``as_of`` (the highest version among promotions
    of the same date). A registry from before promotion dates were recorded falls back
    to the ``champion`` alias.
    """
    history = champion_history(name)
    if not history:
        return alias_version(name, CHAMPION)
    eligible = [entry for entry in history if entry[0] <= as_of]
    return str(eligible[-1][1]) if eligible else None


def promoted_as_of(name: str, version: str) -> date | None:
    """The date ``version`` was promoted for, or None."""
    try:
        tags = MlflowClient().get_model_version(name, version).tags
    except MlflowException:
        return None
    value = tags.get(PROMOTED_AS_OF_TAG)
    return date.fromisoformat(value) if value else None


def promote(name: str, version: str, as_of: date) -> bool:
    """Record ``version`` as champion from ``as_of`` on; move the alias if it is the latest.

    Returns
    -------
    bool
        Whether the ``champion`` alias now points at ``version`` (False for a backfill
        promotion older than the current champion's).
    """
    client = MlflowClient()
    client.set_model_version_tag(name, version, PROMOTED_AS_OF_TAG, as_of.isoformat())
    current = alias_version(name, CHAMPION)
    current_date = promoted_as_of(name, current) if current and current != version else None
    if current is None or current == version or current_date is None or as_of >= current_date:
        client.set_registered_model_alias(name, CHAMPION, version)
        return True
    log.info(
        "v%s is champion as of %s, but v%s was promoted for the later %s: alias kept",
        version,
        as_of,
        current,
        current_date,
    )
    return False


def load_version(name: str, version: str):
    """Load version ``version`` of ``name`` as the unwrapped pyfunc (serving + evaluated)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    wrapper = model.unwrap_python_model()
    for bundle in {id(b): b for b in (wrapper.serving, wrapper.evaluated)}.values():
        bundle.version = str(version)
    return wrapper


def frame_digest(frame: pl.DataFrame | None) -> str:
    """Order-independent digest of a frame's rows (and column names)."""
    if frame is None:
        return "none"
    hashes = np.sort(frame.hash_rows(seed=0).to_numpy())
    digest = hashlib.sha256(",".join(frame.columns).encode())
    digest.update(hashes.tobytes())
    hash_enum_categories(digest, frame)
    return digest.hexdigest()


def training_fingerprint(
    as_of: date, events: pl.DataFrame, categories: pl.DataFrame | None, config
) -> str:
    """Hash of everything a training run reads: same fingerprint, same inputs.

    Parameters
    ----------
    as_of : date
        The run date.
    events : polars.DataFrame
        The interaction events the run loaded.
    categories : polars.DataFrame or None
        Product categories.
    config : TrainConfig
        The run's configuration.
    """
    from importlib.metadata import version as package_version

    parts = {
        "as_of": as_of.isoformat(),
        "events": frame_digest(events),
        "categories": frame_digest(categories),
        "config": json.dumps(dataclasses.asdict(config), sort_keys=True, default=str),
        "versions": {
            package: package_version(package)
            for package in ("affinity", "implicit", "numpy", "scipy", "polars")
        },
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def version_with_fingerprint(name: str, fingerprint: str) -> ModelVersion | None:
    """The finished version trained on exactly these inputs, or None."""
    matches = [v for v in _versions(name) if v.tags.get(FINGERPRINT_TAG) == fingerprint]
    return max(matches, key=lambda v: int(v.version)) if matches else None
