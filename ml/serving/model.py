"""The model scoring serves: the MLflow champion, or the popularity baseline before one.

:class:`ScoringModel` is what every serving step (recommendations, similar products,
segments, campaign audiences) sees of a fitted recommender: factors plus id maps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import numpy as np

from ml.dates import as_of_end
from ml.ids import IdIndex
from ml.warehouse import connect

log = logging.getLogger(__name__)

BASELINE_MODEL_NAME = "popularity-baseline"


@dataclass
class ScoringModel:
    """A fitted recommender as scoring sees it: factors plus id maps.

    Attributes
    ----------
    name, version, family : str
        Registered model name, version, and family (``als``, ``bpr``, ``popularity``).
    customer_ids, product_ids : numpy.ndarray
        Ids of the factor rows (customers) and columns (products).
    user_factors, item_factors : numpy.ndarray
        float32 factors; the popularity baseline is the rank-1 model
        ``user = 1, item = popularity``.
    """

    name: str
    version: str
    family: str
    customer_ids: np.ndarray
    product_ids: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray

    def __post_init__(self) -> None:
        self.customer_ids = np.asarray(self.customer_ids).astype(str)
        self.product_ids = np.asarray(self.product_ids).astype(str)
        self.user_factors = np.ascontiguousarray(self.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(self.item_factors, dtype=np.float32)
        if self.user_factors.shape[0] != len(self.customer_ids):
            raise ValueError("user_factors needs one row per customer id")
        if self.item_factors.shape[0] != len(self.product_ids):
            raise ValueError("item_factors needs one row per product id")
        self._customer_index = IdIndex(self.customer_ids)
        self._product_index = IdIndex(self.product_ids)

    @property
    def has_item_similarity(self) -> bool:
        """Whether item factors carry similarity (not the rank-1 popularity model)."""
        return self.family != "popularity" and self.item_factors.shape[1] > 1

    def customer_rows(self, ids) -> np.ndarray:
        """Row of each customer id, ``-1`` when the model does not know it."""
        return self._customer_index.lookup(ids)

    def product_cols(self, ids) -> np.ndarray:
        """Column of each product id, ``-1`` when the model does not know it."""
        return self._product_index.lookup(ids)

    def unit_item_factors(self) -> np.ndarray:
        """Item factors scaled to unit length (zero vectors stay zero)."""
        norms = np.linalg.norm(self.item_factors, axis=1, keepdims=True)
        return (self.item_factors / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    @classmethod
    def from_recommender(cls, recommender, maps, *, name: str, version: str) -> ScoringModel:
        """Wrap an :mod:`ml.train.models` recommender and its ``IndexMaps``."""
        family = getattr(recommender, "family", "als")
        if family == "popularity":
            item = np.asarray(recommender.item_scores, dtype=np.float32)[:, None]
            user = np.ones((len(maps.customer_ids), 1), dtype=np.float32)
        else:
            user, item = recommender.user_factors, recommender.item_factors
        return cls(name, str(version), family, maps.customer_ids, maps.product_ids, user, item)


def load_scoring_model(name: str | None = None, *, as_of: date | None = None) -> ScoringModel:
    """Load the MLflow champion for scoring: today's, or the one of a date.

    Parameters
    ----------
    name : str, optional
        Registered model name (default: the training package's default name).
    as_of : date, optional
        A training date (the day after the last day of data, as ``affinity train``
        counts): the version that was champion for that date
        (:func:`ml.train.registry.champion_as_of`), so a backfill scores with the model
        of its own date. Default: the ``champion`` alias.

    Raises
    ------
    LookupError
        No version was champion (yet, or as of ``as_of``): run ``affinity train``.
    """
    from ml.train.tracking import DEFAULT_MODEL_NAME, load_champion

    name = name or DEFAULT_MODEL_NAME
    champion = load_champion(name) if as_of is None else _champion_as_of(name, as_of)
    model = ScoringModel.from_recommender(
        champion.model, champion.maps, name=name, version=str(champion.version)
    )
    log.info(
        "champion %s v%s (%s): %d customers x %d products, %d factors",
        name,
        model.version,
        model.family,
        len(model.customer_ids),
        len(model.product_ids),
        model.item_factors.shape[1],
    )
    return model


def _champion_as_of(name: str, as_of: date):
    """The serving bundle of the version that was champion for ``as_of``."""
    from ml.config import paths
    from ml.train.registry import champion_as_of
    from ml.train.tracking import configure_registry

    home = paths()
    configure_registry(home)
    version = champion_as_of(name, as_of)
    if version is None:
        raise LookupError(
            f"no version of {name!r} was champion as of {as_of} in {home.mlflow_tracking_uri}: "
            "train for that date (`affinity train --as-of`) or score a later date"
        )
    return load_serving_bundle(name, version)


def load_serving_bundle(name: str, version: str):
    """Only the ``serving`` bundle of a registered version (not its evaluated twin).

    The pyfunc holds two bundles (:mod:`ml.train.pyfunc`); loading it reads both, and
    scoring needs one (the evaluated model is what the gate compared: at 10M events it
    is another 500k x 64 factors, index maps and purchase matrix). The artifact folder
    comes from the model's MLmodel file, as the pyfunc loader resolves it.
    """
    from pathlib import Path

    import mlflow
    import yaml

    from ml.train.bundle import TrainedRecommender
    from ml.train.pyfunc import SERVING_ARTIFACT

    root = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}"))
    spec = yaml.safe_load((root / "MLmodel").read_text())
    relative = spec["flavors"]["python_function"]["artifacts"][SERVING_ARTIFACT]["path"]
    bundle = TrainedRecommender.load(root / relative)
    bundle.version = str(version)
    return bundle


def popularity_scoring_model(con) -> ScoringModel:
    """The popularity baseline as a rank-1 model: what serves until a model passes the gate.

    Item score = distinct buyers of the product up to the marts' as-of moment
    (``marts.product_popularity``); every customer with a purchase gets the same (unit)
    user vector, so scoring ranks products by popularity and the business filters still
    apply.
    """
    popularity = con.execute(
        "SELECT product_id, buyers FROM marts.product_popularity "
        "WHERE group_kind = 'overall' AND buyers > 0 ORDER BY product_id"
    ).fetchnumpy()
    customers = con.execute(
        "SELECT DISTINCT customer_id FROM marts.interactions WHERE purchases > 0 ORDER BY 1"
    ).fetchnumpy()["customer_id"]
    products, buyers = popularity["product_id"], popularity["buyers"]
    return ScoringModel(
        BASELINE_MODEL_NAME,
        "baseline",
        "popularity",
        customers,
        products,
        np.ones((len(customers), 1), dtype=np.float32),
        np.asarray(buyers, dtype=np.float32)[:, None],
    )


def load_champion_of_day(logical_date: date | str) -> ScoringModel:
    """The version that was champion for the run of ``logical_date``.

    A run for logical day ``L`` trains with ``as_of = L + 1``, so the model that serves
    ``L`` is the champion as of ``L + 1``: a backfill of an earlier day never scores (or
    targets campaigns) with a model trained on later data.

    Raises
    ------
    LookupError
        No version was champion by then.
    """
    return load_scoring_model(as_of=as_of_end(logical_date).date())


def load_serving_model(logical_date: date | str) -> ScoringModel:
    """:func:`load_champion_of_day`, or the popularity baseline before there was one."""
    try:
        return load_champion_of_day(logical_date)
    except LookupError as exc:
        log.warning("%s; serving the popularity baseline until a model passes the gate", exc)
        with connect() as con:
            return popularity_scoring_model(con)
