"""The MLflow pyfunc wrapper of a :class:`~ml.train.bundle.TrainedRecommender`.

Input: a table of ``customer_id`` (string) and ``n`` (long) rows. Output: one row per
recommendation, ``customer_id, rank, product_id, score, source``, best first, never a
product the customer already bought. The logged model holds the bundles as artifacts:

* ``serving``: fit on everything up to the run's ``as_of`` (what ``predict`` uses);
* ``evaluated``: fit before the test window (what the metrics describe and what the
  champion/challenger gate compares). Absent when it is the serving bundle itself.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from ml.train.bundle import TrainedRecommender

SERVING_ARTIFACT = "serving"
EVALUATED_ARTIFACT = "evaluated"

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "customer_id"), ColSpec("long", "n")]),
    outputs=Schema(
        [
            ColSpec("string", "customer_id"),
            ColSpec("long", "rank"),
            ColSpec("string", "product_id"),
            ColSpec("double", "score"),
            ColSpec("string", "source"),
        ]
    ),
)


class AffinityRecommender(mlflow.pyfunc.PythonModel):
    """Pyfunc model: top-``n`` new products per customer id."""

    serving: TrainedRecommender | None = None
    evaluated: TrainedRecommender | None = None

    def load_context(self, context) -> None:
        """Load the bundles from the model's artifacts."""
        self.serving = TrainedRecommender.load(Path(context.artifacts[SERVING_ARTIFACT]))
        evaluated = context.artifacts.get(EVALUATED_ARTIFACT)
        self.evaluated = (
            TrainedRecommender.load(Path(evaluated)) if evaluated is not None else self.serving
        )

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Recommend ``n`` products to each ``customer_id`` of ``model_input``.

        Parameters
        ----------
        model_input : pandas.DataFrame
            Columns ``customer_id`` and ``n`` (one row per customer; ``n`` may differ).

        Returns
        -------
        pandas.DataFrame
            ``customer_id, rank, product_id, score, source``.
        """
        if self.serving is None:
            raise RuntimeError("the model has no artifacts loaded: load it with mlflow.pyfunc")
        frame = pd.DataFrame(model_input)
        missing = {"customer_id", "n"} - set(frame.columns)
        if missing:
            raise ValueError(
                f"model input lacks column(s) {sorted(missing)}: pass customer_id and n"
            )
        customer_ids = frame["customer_id"].astype(str).to_numpy()
        wanted = frame["n"].astype(np.int64).to_numpy()
        top = int(wanted.max()) if len(wanted) else 0
        # Each customer once (a repeated id must not repeat its list), at the largest n.
        result = self.serving.recommend(pd.unique(customer_ids), n=max(top, 0)).to_pandas()
        # Honour each row's own n (the lists were computed at the largest n).
        limit = pd.Series(wanted, index=customer_ids).groupby(level=0).max()
        result = result[result["rank"] <= result["customer_id"].map(limit).to_numpy()]
        return result.reset_index(drop=True)
