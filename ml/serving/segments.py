"""Behavioural clusters with readable profiles, and category affinity audiences.

Behavioural clusters
    k-means on each buying customer's scaled features (``marts.customer_features``:
    recency, frequency, monetary, ...; signed ``log1p`` then z-scores) plus the principal
    components of their ALS factors (what they buy, weighted to carry
    ``factor_weight`` of the features' variance). **k is chosen by the mean silhouette**
    on a seeded sample, over ``k_min..k_max``; the smallest k wins a tie. Clusters are
    numbered by descending mean spend, and each gets a profile (size, share, feature means,
    top categories) and a generated name from how its recency, frequency and spend compare
    with all buyers ("recent frequent high spenders"). Customers without a purchase form
    one extra cluster, "no purchases yet".

Affinity audiences
    For each category, the customers with the highest predicted affinity: the mean model
    score over the category's products, ``u . mean(v_i)`` (the batch segment of AWS
    Personalize's Item-Attribute-Affinity). Each customer's best category is kept too.

Outputs (one partition per logical date): ``ml.customer_clusters``, ``ml.cluster_profiles``,
``ml.affinity_audiences``, ``ml.customer_affinity``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date

from ml.serving.affinity import category_affinity
from ml.serving.clusters import PROFILE_COLUMNS, cluster_customers, suppress_small_groups
from ml.serving.config import SegmentConfig
from ml.serving.model import ScoringModel
from ml.serving.run import serving_run
from ml.warehouse.stage_log import record_stage
from ml.warehouse.tables import read_frame, write_partition

log = logging.getLogger(__name__)

CLUSTER_COLUMNS = {
    "logical_date": "DATE",
    "customer_id": "VARCHAR",
    "cluster_id": "INTEGER",
    "cluster_name": "VARCHAR",
}


AUDIENCE_COLUMNS = {
    "logical_date": "DATE",
    "category": "VARCHAR",
    "rank": "INTEGER",
    "customer_id": "VARCHAR",
    "affinity": "DOUBLE",
}


CUSTOMER_AFFINITY_COLUMNS = {
    "logical_date": "DATE",
    "customer_id": "VARCHAR",
    "top_category": "VARCHAR",
    "affinity": "DOUBLE",
}


@dataclass
class SegmentReport:
    """What one segmentation run produced."""

    logical_date: date
    customers: int
    k: int
    silhouette: float
    cluster_names: list[str]
    audience_rows: int
    seconds: float


def build_segments(
    logical_date: date | str | None = None,
    *,
    config: SegmentConfig | None = None,
    model: ScoringModel | None = None,
) -> SegmentReport:
    """Cluster customers, build affinity audiences, replace the date's ``ml`` rows.

    Parameters
    ----------
    logical_date, model
        As :func:`ml.serving.run.serving_run` resolves them.
    config : SegmentConfig, optional
    """
    config = config or SegmentConfig()
    started = time.perf_counter()
    with serving_run(logical_date, model) as (con, day, model):
        features = read_frame(
            con,
            "SELECT f.* FROM marts.customer_features AS f "
            "JOIN marts.dim_customers USING (customer_id) ORDER BY customer_id",
        )
        category_purchases = read_frame(
            con,
            "SELECT customer_id, category, purchases FROM marts.customer_category_affinity "
            "WHERE purchases > 0 AND category IS NOT NULL",
        )
        products = read_frame(
            con,
            "SELECT product_id, category, is_recommendable AS eligible "
            "FROM marts.dim_products ORDER BY product_id",
        )
        opted_in = read_frame(
            con,
            "SELECT customer_id FROM marts.dim_customers "
            "WHERE coalesce(marketing_opt_in, false) ORDER BY customer_id",
        )
        clusters, profiles = cluster_customers(features, model, category_purchases, config)
        profiles = suppress_small_groups(profiles, config.min_group_size)
        # Audiences are marketing lists: only customers who opted in. Everyone keeps a top
        # category (analysis, not contact).
        audiences, _ = category_affinity(
            opted_in["customer_id"].to_numpy(), products, model, config.audience_size
        )
        _, best = category_affinity(
            features["customer_id"].to_numpy(), products, model, config.audience_size
        )
        write = {
            "customer_clusters": (clusters, CLUSTER_COLUMNS, "customer_id"),
            "cluster_profiles": (profiles, PROFILE_COLUMNS, "cluster_id"),
            "affinity_audiences": (audiences, AUDIENCE_COLUMNS, "category, rank"),
            "customer_affinity": (best, CUSTOMER_AFFINITY_COLUMNS, "customer_id"),
        }
        for table, (frame, columns, order_by) in write.items():
            write_partition(
                con,
                table,
                frame,
                day,
                columns=columns,
                order_by=order_by,
                keep_dates=config.keep_dates,
            )
        seconds = time.perf_counter() - started
        k = int(profiles["k"][0]) if profiles.height else 0
        silhouette = float(profiles["silhouette"][0]) if profiles.height else float("nan")
        record_stage(
            con,
            day,
            "segments",
            rows=clusters.height + audiences.height,
            seconds=seconds,
            detail={"k": k, "silhouette": silhouette, "audience_rows": audiences.height},
        )
    report = SegmentReport(
        day,
        clusters.height,
        k,
        silhouette,
        profiles["cluster_name"].to_list(),
        audiences.height,
        seconds,
    )
    log.info(
        "segments for %s: %d customers in %d clusters (%s), %d audience rows in %.1fs",
        day,
        report.customers,
        k,
        "; ".join(report.cluster_names),
        report.audience_rows,
        seconds,
    )
    return report
