"""MLflow for the review sentiment model: one run per training, the registry and its gate.

Each training is a run in experiment ``affinity-review-sentiment`` with the recipe's
parameters, the split, the hold-out metrics ``roc_auc``, ``macro_f1``, ``rating_mae`` (of
what serves; the lexicon's as ``lexicon_roc_auc`` ...), and two logged models: the serving
model, registered as a new version of ``affinity-review-sentiment``, and the model fitted on
the training part only (``evaluated_model``, what the next run's gate scores). The new
version becomes ``champion`` only when it does not get worse than the current champion on
*this* run's hold-out (:func:`decide`); otherwise it is ``challenger``, with the reason in
the tags of the run and the version. When the lexicon serves (too few labelled reviews),
the run and the version say so (tag ``sentiment.fallback``).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import mlflow
import mlflow.sklearn
import polars as pl
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.config import Paths, paths
from ml.text.dataset import Split
from ml.text.metrics import METRIC_NAMES
from ml.text.sentiment import (
    LEXICON_KIND,
    SentimentConfig,
    SentimentTraining,
    evaluate_model,
    train_sentiment,
)
from ml.text.sentiment_prior import load_prior
from ml.train import tracking

log = logging.getLogger(__name__)

EXPERIMENT_NAME = "affinity-review-sentiment"
MODEL_NAME = "affinity-review-sentiment"
CHAMPION, CHALLENGER = tracking.CHAMPION, tracking.CHALLENGER
EVALUATED_MODEL = "evaluated_model"
# "Does not get worse": ROC AUC may not drop and rating MAE may not rise by more than this.
AUC_TOLERANCE = 0.0
MAE_TOLERANCE = 0.0
# A champion is compared on at least this many hold-out texts it never trained on.
MIN_COMPARABLE_TEXTS = 50


@dataclass(frozen=True)
class SentimentGate:
    """The promotion decision, as tagged on the run and the version."""

    decision: str
    reason: str
    candidate: dict[str, float]
    champion: dict[str, float] | None
    champion_version: str | None

    @property
    def promoted(self) -> bool:
        return self.decision == CHAMPION

    def tags(self) -> dict[str, str]:
        tags = {
            "gate.decision": self.decision,
            "gate.reason": self.reason,
            "gate.champion_version": self.champion_version or "none",
        }
        for owner, figures in (("candidate", self.candidate), ("champion", self.champion or {})):
            for name in METRIC_NAMES:
                value = figures.get(name, math.nan)
                tags[f"gate.{owner}_{name}"] = f"{value:.6f}" if math.isfinite(value) else "nan"
        return tags


def decide(
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    *,
    champion_version: str | None,
    champion_error: str | None = None,
    auc_tolerance: float = AUC_TOLERANCE,
    mae_tolerance: float = MAE_TOLERANCE,
) -> SentimentGate:
    """Promote the candidate unless it is worse than the champion on the same hold-out.

    Rules, in order: no champion -> promote; the champion could not be compared
    (``champion_error``) -> keep it; either model lacks a finite ``roc_auc`` on the shared
    hold-out -> keep the champion; candidate ``roc_auc`` below the champion's by more than
    ``auc_tolerance`` or ``rating_mae`` above it by more than ``mae_tolerance`` -> keep the
    champion; otherwise promote (ties promote: the newer model has seen newer reviews).
    """

    def outcome(decision: str, reason: str) -> SentimentGate:
        log.info("review sentiment gate: %s (%s)", decision, reason)
        return SentimentGate(decision, reason, candidate, champion, champion_version)

    if champion_version is None:
        return outcome(CHAMPION, "no champion yet")
    if champion_error is not None:
        return outcome(
            CHALLENGER,
            f"champion v{champion_version} could not be compared ({champion_error}); kept",
        )
    assert champion is not None
    new_auc, old_auc = candidate.get("roc_auc", math.nan), champion.get("roc_auc", math.nan)
    if not (math.isfinite(new_auc) and math.isfinite(old_auc)):
        return outcome(
            CHALLENGER,
            "the shared hold-out has no negative/positive pair to rank: cannot tell whether "
            f"it is better; champion v{champion_version} kept",
        )
    new_mae, old_mae = candidate["rating_mae"], champion["rating_mae"]
    if new_auc < old_auc - auc_tolerance:
        return outcome(
            CHALLENGER,
            f"roc_auc {new_auc:.4f} is below champion v{champion_version}'s {old_auc:.4f}",
        )
    if new_mae > old_mae + mae_tolerance:
        return outcome(
            CHALLENGER,
            f"rating_mae {new_mae:.4f} is above champion v{champion_version}'s {old_mae:.4f}",
        )
    return outcome(
        CHAMPION,
        f"roc_auc {new_auc:.4f} >= {old_auc:.4f} and rating_mae {new_mae:.4f} <= {old_mae:.4f} "
        f"of champion v{champion_version} on the same hold-out",
    )


@dataclass(frozen=True)
class SentimentRun:
    """What :func:`train_and_register` did."""

    run_id: str
    model_name: str
    version: str
    gate: SentimentGate
    training: SentimentTraining

    @property
    def metrics(self) -> dict[str, float]:
        return self.training.metrics


def train_and_register(
    reviews: pl.DataFrame,
    *,
    as_of: str,
    config: SentimentConfig | None = None,
    home: Paths | None = None,
    model_name: str = MODEL_NAME,
    experiment_name: str = EXPERIMENT_NAME,
) -> SentimentRun:
    """Train the sentiment model, log it, register a version and apply the gate.

    Parameters
    ----------
    reviews : polars.DataFrame
        The shop's reviews (``review_id, rating, title, body, created_at``).
    as_of : str
        Logical date of the run (``YYYY-MM-DD``), tagged on run and version.
    config : SentimentConfig, optional
    home : Paths, optional
        Affinity home (default: ``AFFINITY_HOME``).
    model_name, experiment_name : str

    Returns
    -------
    SentimentRun
    """
    config = config or SentimentConfig()
    tracking.configure(experiment_name, home)
    training = train_sentiment(reviews, config)
    with mlflow.start_run(run_name=f"review sentiment {as_of}") as run:
        _log_training(training, config, as_of)
        champion_version = tracking.alias_version(model_name, CHAMPION)
        candidate_metrics, champion_metrics, champion_error = _compare_on_same_holdout(
            model_name, champion_version, training
        )
        if champion_metrics is not None:
            mlflow.log_metrics(tracking.finite_metrics(champion_metrics, prefix="champion_"))
        version = _log_models(training, model_name, as_of)
        gate = decide(
            candidate_metrics,
            champion_metrics,
            champion_version=champion_version,
            champion_error=champion_error,
        )
        _apply(model_name, version, gate, run.info.run_id, training)
    return SentimentRun(run.info.run_id, model_name, version, gate, training)


def _log_training(training: SentimentTraining, config: SentimentConfig, as_of: str) -> None:
    mlflow.log_params({f"recipe.{k}": v for k, v in config.params().items()})
    if config.prior:  # which bundled prior weights the model was fitted with
        mlflow.log_param("recipe.prior_fingerprint", load_prior().fingerprint())
    mlflow.log_params(
        {
            "kind": training.kind,
            "split.method": training.split.method,
            "split.cutoff": training.split.cutoff.isoformat() if training.split.cutoff else "none",
            **{f"data.{k}": v for k, v in training.sizes.items()},
        }
    )
    tags = {"as_of": as_of, "sentiment.kind": training.kind, "sentiment.reason": training.reason}
    if training.is_fallback:
        tags["sentiment.fallback"] = training.reason
    tracking.tag_run(tags)
    mlflow.log_metrics(tracking.finite_metrics(training.metrics))
    mlflow.log_metrics(tracking.finite_metrics(training.lexicon_metrics, prefix="lexicon_"))
    mlflow.log_metrics(
        tracking.finite_metrics({f"{k}_seconds": v for k, v in training.seconds.items()})
    )


def _log_models(training: SentimentTraining, model_name: str, as_of: str) -> str:
    """Log the serving model (registered) and the evaluated one; return the new version."""
    # mlflow.sklearn warns on every cloudpickle save; these are our own models.
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if training.evaluated is not None and not training.is_fallback:
            mlflow.sklearn.log_model(
                training.evaluated,
                name=EVALUATED_MODEL,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                pip_requirements=_requirements(),
            )
        info = mlflow.sklearn.log_model(
            training.model,
            name="model",
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pip_requirements=_requirements(),
            registered_model_name=model_name,
            metadata={"kind": training.kind, "as_of": as_of},
        )
    return str(info.registered_model_version)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [
        f"{package}=={version(package)}"
        for package in (
            "mlflow",
            "scikit-learn",
            "numpy",
            "scipy",
            "polars",
            "vaderSentiment",
            "affinity",
        )
    ]


def _compare_on_same_holdout(
    model_name: str, champion_version: str | None, training: SentimentTraining
) -> tuple[dict[str, float], dict[str, float] | None, str | None]:
    """Candidate and champion metrics on this run's hold-out texts neither trained on.

    Returns
    -------
    candidate, champion, error
        The candidate's metrics (its evaluated model, or the lexicon), the champion's (None
        without a champion or when it cannot be compared) and why it cannot be.
    """
    candidate = training.metrics
    if champion_version is None or training.test is None:
        return candidate, None, None
    client = MlflowClient()
    try:
        version = client.get_model_version(model_name, champion_version)
        model, cutoff = _evaluated_champion(client, version)
    except (MlflowException, OSError) as exc:
        return candidate, None, f"cannot load it: {exc}"
    test = training.test
    if cutoff is not None:
        # A champion trained on reviews after this hold-out starts (a backfill) is compared
        # only on the hold-out texts newer than its own training data.
        test = test.filter(pl.col("created_at") >= cutoff)
    if test.height < MIN_COMPARABLE_TEXTS:
        return (
            candidate,
            None,
            (
                f"only {test.height} hold-out texts are newer than its training data "
                f"(< {MIN_COMPARABLE_TEXTS})"
            ),
        )
    if test.height < training.test.height:
        unseen = training.model if training.is_fallback else training.evaluated
        candidate = evaluate_model(unseen, test)
        log.info("gate on the %d hold-out texts newer than the champion's training", test.height)
    return candidate, evaluate_model(model, test), None


def _evaluated_champion(client: MlflowClient, version: Any) -> tuple[Any, datetime | None]:
    """The champion's model fitted before its own hold-out, and that hold-out's start.

    The lexicon never trained on anything (no cutoff); a trained champion is scored with its
    ``evaluated_model`` (its serving model saw every review of its day).
    """
    run = client.get_run(version.run_id)
    kind = run.data.params.get("kind")
    uri = f"models:/{version.name}/{version.version}"
    if kind != LEXICON_KIND:
        uri = f"runs:/{version.run_id}/{EVALUATED_MODEL}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mlflow.sklearn.load_model(uri)
    cutoff_text = run.data.params.get("split.cutoff", "none")
    cutoff = (
        None
        if cutoff_text == "none" or kind == LEXICON_KIND
        else datetime.fromisoformat(cutoff_text)
    )
    return model, cutoff


def _apply(
    model_name: str, version: str, gate: SentimentGate, run_id: str, training: SentimentTraining
) -> None:
    client = MlflowClient()
    alias = CHAMPION if gate.promoted else CHALLENGER
    client.set_registered_model_alias(model_name, alias, version)
    tags = {**gate.tags(), "gate.model_version": version}
    tracking.tag_run(tags)
    tracking.set_version_tags(
        model_name,
        version,
        {
            **tags,
            "run_id": run_id,
            "sentiment.kind": training.kind,
            "sentiment.reason": training.reason,
        },
    )
    mlflow.log_metric("gate_promoted", float(gate.promoted))
    log.info("%s version %s -> alias %s", model_name, version, alias)


def load_sentiment_champion(
    home: Paths | None = None, model_name: str = MODEL_NAME
) -> tuple[Any, str] | None:
    """The champion sentiment model and its version, or None when there is none yet."""
    home = home or paths()
    mlflow.set_tracking_uri(home.mlflow_tracking_uri)
    mlflow.set_registry_uri(home.mlflow_tracking_uri)
    version = tracking.alias_version(model_name, CHAMPION)
    if version is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mlflow.sklearn.load_model(f"models:/{model_name}@{CHAMPION}")
    return model, version


__all__ = [
    "EXPERIMENT_NAME",
    "MODEL_NAME",
    "SentimentGate",
    "SentimentRun",
    "Split",
    "decide",
    "load_sentiment_champion",
    "train_and_register",
]
