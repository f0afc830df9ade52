"""When a Spark home trains with Spark: the size rule of the ``spark_als`` family.

Kept apart from :mod:`ml.spark.als` (which subclasses the ``implicit`` model) so the
trainer can ask the rule without an import cycle. See :mod:`ml.spark.als` for the rule.
"""

from __future__ import annotations

import dataclasses
import logging
import os

log = logging.getLogger(__name__)

DEFAULT_MIN_PAIRS = 20_000_000


def spark_als_min_pairs() -> int:
    """Training pairs from which a Spark home fits the chosen ALS with Spark."""
    return int(os.environ.get("AFFINITY_SPARK_ALS_MIN_PAIRS", DEFAULT_MIN_PAIRS))


def spark_candidates(recipe, families: list[str], pairs: int):
    """The recipe and candidate families of a training run on a Spark home.

    At or above :func:`spark_als_min_pairs` the chosen ALS becomes ``spark_als``; below,
    ``spark_als`` joins the candidates for the review. Other homes: unchanged.
    """
    from ml.engine import is_spark

    if not is_spark():
        return recipe, families
    if recipe.family == "als" and pairs >= spark_als_min_pairs():
        log.info("spark_als serves: %d training pairs >= %d", pairs, spark_als_min_pairs())
        recipe = dataclasses.replace(recipe, family="spark_als")
        return recipe, ["spark_als" if f == "als" else f for f in families]
    if "spark_als" not in families:
        families = [*families[:-1], "spark_als", families[-1]]  # before popularity
    return recipe, families
