"""The ``spark_als`` candidate family: implicit-feedback ALS fit by Spark MLlib.

It takes the recipe's ALS settings (factors, regularization, iterations, confidences)
and fits ``pyspark.ml.recommendation.ALS`` with ``implicitPrefs=True`` on the same
confidence matrix the ``implicit`` ALS sees. The factors come back into numpy and into
the same model object as :class:`~ml.train.models.ALSRecommender`, so evaluation,
the gate, MLflow logging, the registry and scoring are the existing code: a saved
``spark_als`` model loads and serves without Spark.

Two differences from ``implicit`` are mapped rather than hidden:

- MLlib scales the regularization of each customer and product by its number of
  observed pairs (ALS-WR); ``implicit`` adds a fixed lambda. The same value therefore
  means a much stronger penalty in MLlib: ``regParam`` is the recipe's regularization
  divided by :data:`REG_PARAM_DIVISOR` (100), the ratio at which both reached the same
  NDCG@10 on 1M and 10M generated events (``bench/results/als_spark_{1m,10m}.md``:
  MLlib at 0.1 vs ``implicit`` at 10).
- MLlib's confidence is ``1 + alpha * r``; the recipe's scaling is already applied to
  the matrix, so ``alpha`` is 1 as in :class:`~ml.train.models.ALSRecommender`.

The size rule (:func:`ml.spark.sizing.spark_candidates`): on a Spark home the chosen ALS recipe is fit
by Spark when the training matrix has at least ``AFFINITY_SPARK_ALS_MIN_PAIRS``
customer-product pairs (default 20 million: ``implicit`` fits 128 factors on that in
minutes on one machine and its factors take a few GB); below it ``implicit`` serves and
``spark_als`` is fit beside it as a reviewed candidate (same split, same metrics), so the
two engines can be compared in MLflow.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp

from ml.train.models import ALSRecommender

log = logging.getLogger(__name__)


REG_PARAM_DIVISOR = 100.0


def mllib_reg_param(regularization: float, user_items: sp.csr_matrix | None = None) -> float:
    """``implicit``'s fixed lambda as MLlib's per-pair regParam (see the module)."""
    return float(regularization) / REG_PARAM_DIVISOR


def fit_mllib_als(
    user_items: sp.csr_matrix,
    factors: int,
    reg_param: float,
    iterations: int,
    seed: int,
    spark=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit MLlib implicit ALS on a confidence matrix; return dense float32 factors.

    Rows and columns MLlib never saw (no pair) get zero factors: they score 0, as an
    unknown customer or product would.
    """
    from pyspark.ml.recommendation import ALS

    from ml.spark.session import spark_session

    spark = spark or spark_session()
    coo = sp.coo_matrix(user_items, dtype=np.float32)
    n_users, n_items = user_items.shape
    # Integer ids and float ratings, handed to Spark as Arrow-backed pandas.
    import pandas as pd

    frame = pd.DataFrame(
        {"user": coo.row.astype(np.int32), "item": coo.col.astype(np.int32), "rating": coo.data}
    )
    partitions = max(1, spark.sparkContext.defaultParallelism)
    ratings = spark.createDataFrame(frame).repartition(partitions)
    als = ALS(
        rank=int(factors),
        maxIter=int(iterations),
        regParam=float(reg_param),
        implicitPrefs=True,
        alpha=1.0,
        seed=int(seed),
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        numUserBlocks=partitions,
        numItemBlocks=partitions,
        nonnegative=False,
        checkpointInterval=-1,
    )
    model = als.fit(ratings)

    def dense(frame_df, rows: int) -> np.ndarray:
        pdf = frame_df.toPandas()
        out = np.zeros((rows, int(factors)), dtype=np.float32)
        if len(pdf):
            out[pdf["id"].to_numpy()] = np.stack(pdf["features"].to_numpy()).astype(np.float32)
        return out

    return dense(model.userFactors, n_users), dense(model.itemFactors, n_items)


class SparkALSRecommender(ALSRecommender):
    """ALS fit by Spark MLlib; scores, saves and loads like :class:`ALSRecommender`."""

    family = "spark_als"

    def fit(self, user_items, initial_factors=None, iterations: int | None = None):
        """Fit on a confidence matrix with MLlib (``initial_factors`` is not supported:
        MLlib starts from its own seeded factors)."""
        started = time.perf_counter()
        iterations = iterations or self.hyper.iterations
        matrix = sp.csr_matrix(user_items, dtype=np.float32)
        reg_param = mllib_reg_param(self.hyper.regularization, matrix)
        users, items = fit_mllib_als(matrix, self.hyper.factors, reg_param, iterations, self.seed)
        self._model = self._new_model()
        self._model.user_factors = users
        self._model.item_factors = items
        log.info(
            "spark_als fitted: %d customers x %d products, %d factors, %d iterations, "
            "regParam %.4f in %.2fs",
            *matrix.shape,
            self.hyper.factors,
            iterations,
            reg_param,
            time.perf_counter() - started,
        )
        return self

    def fit_more(self, user_items, iterations: int):
        """MLlib cannot continue from given factors: a fresh fit with the summed count."""
        return self.fit(user_items, iterations=self.hyper.iterations + int(iterations))
