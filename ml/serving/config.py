"""Settings of the serving steps: recommendation rules and batch sizes, segmentation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreConfig:
    """Business rules and batch sizes of the recommendation scoring.

    Parameters
    ----------
    n : int
        Recommendations per customer.
    exclusion_days : int or None
        Never recommend a product the customer bought in the last ``exclusion_days`` days
        (up to the end of the logical date); ``None`` excludes everything ever bought.
    max_per_category : int or None
        At most this many products of one category per list (uncategorised products are
        not capped); ``None`` switches the cap off.
    min_history_products : int
        Customers with fewer distinct products in their history get cold-start lists.
    batch_customers : int
        Customers whose lists are computed and written at a time, in customer order: the
        result rows held in memory are those of one batch (0: everyone at once).
    chunk_size : int
        Customers scored per top-k call inside a batch (memory ~ chunk_size x candidates).
    num_threads : int
        Chunks scored at once, one per thread, each with a single-threaded top-k and
        BLAS (0: one per core; 1: one chunk at a time, on one thread).
    keep_dates : int
        Logical dates kept in ``ml.recommendations``.
    new_product_share : float
        Share of each list given to recommendable products nobody has bought yet, offered
        to buyers of their text look-alikes (:mod:`ml.serving.new_products`); 0: off.
    demote_turning_negative : bool
        Move products whose recent reviews turn negative
        (``marts.product_review_insights.is_turning_negative``) below the other products of
        every list (:mod:`ml.serving.review_demotion`). On by default; recorded with the
        rest of this config in ``ml.stage_runs`` and on the scoring run in MLflow.
    """

    n: int = 20
    exclusion_days: int | None = 365
    max_per_category: int | None = 5
    min_history_products: int = 2
    batch_customers: int = 100_000
    chunk_size: int = 4096
    num_threads: int = 0
    keep_dates: int = 3
    new_product_share: float = 0.1
    demote_turning_negative: bool = True


@dataclass(frozen=True)
class SegmentConfig:
    """Clustering and audience settings.

    Parameters
    ----------
    k_min, k_max : int
        Range of cluster counts tried.
    seed : int
        Seed of sampling, PCA and k-means (same data + seed = same clusters).
    fit_sample : int
        Customers the k-means fits use (all customers are then assigned).
    silhouette_sample : int
        Customers the silhouette of each k is measured on.
    factor_components : int
        Principal components of the ALS factors added to the features (0: none).
    factor_weight : float
        Variance of the factor block relative to the feature block.
    audience_size : int
        Customers per category audience (only customers who opted in to marketing).
    keep_dates : int
        Logical dates kept in the ``ml`` tables.
    min_group_size : int
        Clusters with fewer customers get their profile statistics (size, share, means,
        top categories) suppressed in ``cluster_profiles``: a segment-level export must not
        describe a handful of identifiable people.
    """

    k_min: int = 3
    k_max: int = 8
    seed: int = 42
    fit_sample: int = 20_000
    silhouette_sample: int = 4_000
    factor_components: int = 8
    factor_weight: float = 0.5
    audience_size: int = 1_000
    keep_dates: int = 3
    min_group_size: int = 50
