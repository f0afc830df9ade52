"""Helpers of the campaign tests: a real warehouse from a generated shop, a real ALS on it.

Plain functions (no tests). Everything runs for real: the shop generator, ingest, dbt
(``build_features``), an ``implicit`` ALS fitted on ``marts.interactions``, scoring and
segments, then the campaign step.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from ml.serving.config import ScoreConfig
from ml.serving.model import ScoringModel
from ml.warehouse import connect


def fit_als(factors: int = 16, iterations: int = 6) -> ScoringModel:
    """Fit a small implicit ALS on the current warehouse's interactions.

    Strengths as training computes them with its default weighting (``ml.train``'s
    aggregation of ``marts.interaction_events``) as of the marts' date.
    """
    from implicit.cpu.als import AlternatingLeastSquares

    from ml.dates import as_of_end
    from ml.train.config import DBT_WEIGHTING
    from ml.train.interactions import aggregate, load_events

    with connect() as con:
        as_of = con.execute("SELECT max(as_of_date) FROM marts.interactions").fetchall()[0][0]
    cutoff = as_of_end(as_of)
    pairs = aggregate(load_events(cutoff), cutoff, DBT_WEIGHTING)
    customer_ids = np.sort(pairs["customer_id"].unique().to_numpy().astype(str))
    product_ids = np.sort(pairs["product_id"].unique().to_numpy().astype(str))
    rows = np.searchsorted(customer_ids, pairs["customer_id"].to_numpy().astype(str))
    cols = np.searchsorted(product_ids, pairs["product_id"].to_numpy().astype(str))
    matrix = sp.csr_matrix(
        (pairs["strength"].to_numpy().astype(np.float32), (rows, cols)),
        shape=(len(customer_ids), len(product_ids)),
    )
    als = AlternatingLeastSquares(
        factors=factors, iterations=iterations, regularization=0.05, random_state=0, num_threads=1
    )
    als.fit(matrix, show_progress=False)
    return ScoringModel(
        "test-als", "1", "als", customer_ids, product_ids, als.user_factors, als.item_factors
    )


def prepare_day(day: date | str) -> ScoringModel:
    """dbt marts as of ``day``, then a model, recommendations and segments for it."""
    from ml.serving.config import SegmentConfig
    from ml.serving.recommend import score
    from ml.serving.segments import build_segments
    from ml.warehouse.dbt import build_features

    build_features(day)
    model = fit_als()
    score(day, model=model, config=ScoreConfig(n=10, num_threads=1))
    build_segments(day, model=model, config=SegmentConfig(k_max=4, audience_size=50))
    return model


def generate_and_ingest(landing: Path, **shop) -> Path:
    """Generate a shop into ``landing`` and ingest it into the current warehouse."""
    from ml.datagen import generate_shop
    from ml.ingest import ingest

    generate_shop(landing, **shop)
    ingest(landing)
    return landing


def add_erasure_requests(landing: Path, customer_ids: list[str], when: str) -> None:
    """Write an ``erasure_requests`` landing file for ``customer_ids``."""
    frame = pl.DataFrame({"customer_id": customer_ids}).with_columns(
        pl.lit(when)
        .str.to_datetime("%Y-%m-%d %H:%M:%S")
        .dt.cast_time_unit("us")
        .alias("requested_at")
    )
    frame.write_parquet(landing / "erasure_requests.parquet")


def copy_home(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def day_before(moment) -> date:
    """The logical date whose run launches a campaign starting at ``moment``."""
    return moment.date() - timedelta(days=1)
