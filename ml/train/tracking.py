"""MLflow plumbing: tracking setup from ``AFFINITY_HOME``, logging helpers, the registry.

Tracking and registry live in ``$AFFINITY_HOME/mlflow.db`` and artifacts under
``$AFFINITY_HOME/mlartifacts``; both are set explicitly so nothing lands in the working
directory. Registry *aliases* (``champion``, ``challenger``) mark the versions; stages are
deprecated in MLflow 3 and not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow
import mlflow.data
import numpy as np
import polars as pl
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.config import Paths, paths
from ml.train.bundle import TrainedRecommender
from ml.train.interactions import hash_enum_categories
from ml.train.pyfunc import EVALUATED_ARTIFACT, SERVING_ARTIFACT, SIGNATURE, AffinityRecommender

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_MODEL_NAME = "affinity-recommender"
# Models from code: MLflow stores this file instead of pickling a Python object.
PYFUNC_MODEL_FILE = Path(__file__).with_name("pyfunc_model.py")


def configure(experiment_name: str, home: Paths | None = None) -> str:
    """Point MLflow at the Affinity home and make sure the experiment exists.

    Parameters
    ----------
    experiment_name : str
        One experiment per pipeline (e.g. ``affinity-recommenders``).
    home : Paths, optional
        Defaults to :func:`ml.config.paths` (from ``AFFINITY_HOME``).

    Returns
    -------
    str
        The experiment id (also made the active experiment).
    """
    home = (home or paths()).ensure()
    _quiet_mlflow()
    mlflow.set_tracking_uri(home.mlflow_tracking_uri)
    mlflow.set_registry_uri(home.mlflow_tracking_uri)
    experiment = mlflow.get_experiment_by_name(experiment_name)
    if experiment is None:
        experiment_id = mlflow.create_experiment(
            experiment_name, artifact_location=home.mlartifacts.as_uri()
        )
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _quiet_mlflow() -> None:
    """Switch off MLflow's download progress bars (noise in Airflow task logs)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into ``a.b`` keys (for ``log_params``)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = "none" if value is None else value
    return flat


def slug(text: str) -> str:
    """Lower-case a label into a metric-name-safe slug (``Can't Lose`` -> ``cant_lose``)."""
    text = re.sub(r"['’]", "", str(text).strip().lower())
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_") or "unknown"


def finite_metrics(figures: dict[str, float], prefix: str = "", suffix: str = "") -> dict:
    """Return the finite figures with decorated names (MLflow charts ignore NaN anyway)."""
    return {
        f"{prefix}{name}{suffix}": float(value)
        for name, value in figures.items()
        if value is not None and math.isfinite(float(value))
    }


def log_events_dataset(
    events: pl.DataFrame, *, context: str, source: str, as_of: str, window: str
) -> None:
    """Log an events table as an MLflow dataset input (schema, digest, row count, as_of).

    Only ids, timestamps, kinds and quantities are in ``events``: no personal data.
    """
    with warnings.catch_warnings(), _quiet_enum_schema():
        warnings.simplefilter("ignore")
        dataset = mlflow.data.from_polars(
            events,
            source=source,
            name=f"interaction_events_{context}",
            digest=dataset_digest(events),
        )
        mlflow.log_input(
            dataset,
            context=context,
            tags={
                "as_of": as_of,
                "window": window,
                "rows": str(events.height),
                "customers": str(events["customer_id"].n_unique()) if events.height else "0",
                "products": str(events["product_id"].n_unique()) if events.height else "0",
            },
        )


def dataset_digest(frame: pl.DataFrame) -> str:
    """MLflow's polars digest (the sum of the row hashes) with the Enum columns' categories."""
    digest = hashlib.sha256(str(frame.hash_rows(seed=0).sum()).encode())
    hash_enum_categories(digest, frame)
    return digest.hexdigest()[:32]  # MLflow stores at most 36 characters


class _DropEnumSchemaNotice(logging.Filter):
    """MLflow logs each Enum column's whole category list when it maps it to a string
    (millions of ids on a large shop); the mapping itself is what we want."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Data type of Column")


@contextlib.contextmanager
def _quiet_enum_schema():
    notice_filter = _DropEnumSchemaNotice()
    root = logging.getLogger()
    root.addFilter(notice_filter)
    try:
        yield
    finally:
        root.removeFilter(notice_filter)


def log_table(frame: pl.DataFrame, artifact_file: str) -> None:
    """Log a small table as a CSV artifact."""
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / Path(artifact_file).name
        frame.write_csv(target)
        parent = str(Path(artifact_file).parent)
        mlflow.log_artifact(str(target), artifact_path=None if parent == "." else parent)


def pip_requirements() -> list[str]:
    """Pinned requirements of the pyfunc (given explicitly: inference is slow and noisy)."""
    from importlib.metadata import version

    return [
        f"{package}=={version(package)}"
        for package in ("mlflow", "implicit", "numpy", "scipy", "pandas", "polars", "affinity")
    ]


def log_recommender(
    serving: TrainedRecommender,
    evaluated: TrainedRecommender | None,
    registered_model_name: str,
) -> tuple[str, str]:
    """Log the bundles as a pyfunc model in the active run and register a new version.

    Returns
    -------
    model_uri, version : str
        The logged model's URI and the registered version number.
    """
    with tempfile.TemporaryDirectory() as scratch:
        artifacts = {SERVING_ARTIFACT: str(serving.save(Path(scratch) / SERVING_ARTIFACT))}
        if evaluated is not None and evaluated is not serving:
            artifacts[EVALUATED_ARTIFACT] = str(evaluated.save(Path(scratch) / EVALUATED_ARTIFACT))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_MODEL_FILE),
                artifacts=artifacts,
                signature=SIGNATURE,
                pip_requirements=pip_requirements(),
                registered_model_name=registered_model_name,
                metadata={
                    "family": serving.family,
                    "trained_until": serving.trained_until.isoformat(),
                },
            )
    version = str(info.registered_model_version)
    log.info("logged %s as %s version %s", info.model_uri, registered_model_name, version)
    return info.model_uri, version


def alias_version(name: str, alias: str) -> str | None:
    """Return the version holding ``alias`` on model ``name``, or None."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def load_registered(name: str, alias: str = CHAMPION) -> AffinityRecommender | None:
    """Load ``models:/<name>@<alias>`` as the unwrapped pyfunc, or None if there is none."""
    version = alias_version(name, alias)
    if version is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
    wrapper: AffinityRecommender = model.unwrap_python_model()
    for bundle in {id(b): b for b in (wrapper.serving, wrapper.evaluated)}.values():
        bundle.version = version
    return wrapper


def load_champion(
    name: str = DEFAULT_MODEL_NAME, *, home: Paths | None = None
) -> TrainedRecommender:
    """Load the current champion: the serving model with its index maps and version.

    Parameters
    ----------
    name : str
        Registered model name.
    home : Paths, optional
        Affinity home (default: from ``AFFINITY_HOME``).

    Returns
    -------
    TrainedRecommender
        ``.recommend(customer_ids, n)``, ``.similar_items(product_ids, n)``, ``.maps``,
        ``.version``.

    Raises
    ------
    LookupError
        When no version carries the ``champion`` alias yet (run ``affinity train``).
    """
    home = configure_registry(home)
    wrapper = load_registered(name, CHAMPION)
    if wrapper is None:
        raise LookupError(
            f"no version of {name!r} is the {CHAMPION!r} in {home.mlflow_tracking_uri}: "
            "run `affinity train` until a model passes the gate"
        )
    return wrapper.serving


def configure_registry(home: Paths | None = None) -> Paths:
    """Point MLflow's tracking and registry at the Affinity home (no experiment needed)."""
    home = home or paths()
    _quiet_mlflow()
    mlflow.set_tracking_uri(home.mlflow_tracking_uri)
    mlflow.set_registry_uri(home.mlflow_tracking_uri)
    return home


def set_version_tags(name: str, version: str, tags: dict[str, Any]) -> None:
    """Tag a model version (values stringified)."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, _tag_value(value))


def _tag_value(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "nan" if not math.isfinite(float(value)) else f"{float(value):.6f}"
    return str(value)


def tag_run(tags: dict[str, Any]) -> None:
    """Tag the active run (values stringified)."""
    mlflow.set_tags({key: _tag_value(value) for key, value in tags.items()})
