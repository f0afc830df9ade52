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

import numpy as np
import polars as pl
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

from ml.publish import read_frame, record_stage, to_date, write_partition
from ml.score import ScoringModel, latest_logical_date, load_scoring_model
from ml.warehouse import connect

log = logging.getLogger(__name__)

NO_PURCHASE_NAME = "no purchases yet"
# Feature columns of marts.customer_features used when present (the first three must be).
FEATURE_COLUMNS = (
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "distinct_categories",
)

CLUSTER_COLUMNS = {
    "logical_date": "DATE",
    "customer_id": "VARCHAR",
    "cluster_id": "INTEGER",
    "cluster_name": "VARCHAR",
}
PROFILE_COLUMNS = {
    "logical_date": "DATE",
    "cluster_id": "INTEGER",
    "cluster_name": "VARCHAR",
    "customers": "BIGINT",
    "share": "DOUBLE",
    "mean_recency_days": "DOUBLE",
    "mean_frequency": "DOUBLE",
    "mean_monetary": "DOUBLE",
    "mean_avg_order_value": "DOUBLE",
    "top_categories": "VARCHAR",
    "k": "INTEGER",
    "silhouette": "DOUBLE",
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


# --------------------------------------------------------------------------- clusters


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def feature_matrix(features: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """Signed-log, median-imputed, z-scored feature matrix."""
    raw = features.select([pl.col(c).cast(pl.Float64) for c in columns]).to_numpy()
    raw = _signed_log(raw)
    medians = np.nanmedian(raw, axis=0)
    raw = np.where(np.isnan(raw), np.where(np.isnan(medians), 0.0, medians), raw)
    std = raw.std(axis=0)
    return (raw - raw.mean(axis=0)) / np.where(std > 0, std, 1.0)


def factor_block(
    factors: np.ndarray, known: np.ndarray, n_features: int, config: SegmentConfig
) -> np.ndarray:
    """Principal components of the ALS factors, scaled to ``factor_weight`` of the features.

    Customers the model does not know (``known`` False) get zeros (the centre).
    """
    n = len(known)
    components = min(config.factor_components, factors.shape[1], max(0, int(known.sum()) - 1))
    if components <= 0 or config.factor_weight <= 0:
        return np.zeros((n, 0))
    pca = PCA(n_components=components, random_state=config.seed)
    projected = pca.fit_transform(factors[known])
    std = projected.std(axis=0)
    projected = projected / np.where(std > 0, std, 1.0)
    # Feature block total variance = n_features; factor block = weight * that.
    projected *= np.sqrt(config.factor_weight * n_features / components)
    block = np.zeros((n, components))
    block[known] = projected
    return block


def choose_k(matrix: np.ndarray, config: SegmentConfig) -> tuple[KMeans, dict[int, float]]:
    """Fit k-means for each k in range on a sample; return the best by mean silhouette.

    Returns
    -------
    model : sklearn.cluster.KMeans
        The fit of the chosen k (on the sample).
    silhouettes : dict of int to float
        Mean silhouette of each k tried.
    """
    rng = np.random.default_rng(config.seed)
    n = len(matrix)
    sample = np.sort(rng.choice(n, size=min(n, config.fit_sample), replace=False))
    fit_rows = matrix[sample]
    scored = np.sort(
        rng.choice(len(fit_rows), size=min(len(fit_rows), config.silhouette_sample), replace=False)
    )
    distinct = len(np.unique(fit_rows, axis=0))
    k_max = min(config.k_max, distinct - 1, len(scored) - 1)
    k_min = min(config.k_min, k_max)
    if k_max < 2:
        model = KMeans(n_clusters=1, n_init=1, random_state=config.seed).fit(fit_rows)
        return model, {1: float("nan")}
    best, best_score, silhouettes = None, -np.inf, {}
    for k in range(max(2, k_min), k_max + 1):
        model = KMeans(n_clusters=k, n_init=4, random_state=config.seed).fit(fit_rows)
        labels = model.labels_[scored]
        if len(np.unique(labels)) < 2:
            continue
        value = float(silhouette_score(fit_rows[scored], labels))
        silhouettes[k] = round(value, 6)
        log.info("k-means k=%d: silhouette %.4f", k, value)
        if value > best_score + 1e-9:  # strict: the smaller k wins a tie
            best, best_score = model, value
    if best is None:
        best = KMeans(n_clusters=max(2, k_min), n_init=4, random_state=config.seed).fit(fit_rows)
    return best, silhouettes


def cluster_name(z: dict[str, float]) -> str:
    """Readable name from z-scores of recency, frequency and spend against all buyers.

    >>> cluster_name({"recency_days": -1.0, "frequency": 1.2, "monetary": 0.9})
    'recent frequent high spenders'
    """
    recency, frequency, monetary = z["recency_days"], z["frequency"], z["monetary"]
    how_often = "frequent" if frequency >= 0.5 else "occasional" if frequency <= -0.5 else "regular"
    how_much = (
        "high spenders"
        if monetary >= 0.5
        else "low spenders"
        if monetary <= -0.5
        else "mid spenders"
    )
    when = "lapsed " if recency >= 0.5 else "recent " if recency <= -0.5 else ""
    return f"{when}{how_often} {how_much}"


def cluster_customers(
    features: pl.DataFrame,
    model: ScoringModel | None,
    category_purchases: pl.DataFrame,
    config: SegmentConfig | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cluster customers and profile the clusters (no warehouse I/O).

    Parameters
    ----------
    features : polars.DataFrame
        ``marts.customer_features`` rows (``customer_id`` and :data:`FEATURE_COLUMNS`).
    model : ScoringModel or None
        Source of the ALS factors (``None`` or a popularity model: features only).
    category_purchases : polars.DataFrame
        ``customer_id, category, purchases`` for the top categories of each cluster.
    config : SegmentConfig, optional

    Returns
    -------
    clusters : polars.DataFrame
        ``customer_id, cluster_id, cluster_name`` for every customer of ``features``.
    profiles : polars.DataFrame
        One row per cluster, columns of ``ml.cluster_profiles`` except ``logical_date``.
    """
    config = config or SegmentConfig()
    columns = [c for c in FEATURE_COLUMNS if c in features.columns]
    missing = {"recency_days", "frequency", "monetary"} - set(columns)
    if missing:
        raise ValueError(
            f"customer_features lacks {sorted(missing)}: rebuild the marts (dbt) first."
        )
    features = features.sort("customer_id")
    buyers_mask = (features["frequency"].fill_null(0) > 0).to_numpy()
    buyers = features.filter(pl.Series(buyers_mask))
    matrix = feature_matrix(buyers, columns)
    if model is not None and model.has_item_similarity and len(buyers):
        rows = model.customer_rows(buyers["customer_id"].to_numpy())
        factors = np.zeros((len(buyers), model.user_factors.shape[1]), dtype=np.float64)
        factors[rows >= 0] = model.user_factors[rows[rows >= 0]]
        matrix = np.hstack([matrix, factor_block(factors, rows >= 0, len(columns), config)])
    k, silhouette = 0, float("nan")
    labels = np.empty(0, dtype=np.int64)
    if len(buyers):
        kmeans, silhouettes = choose_k(matrix, config)
        k = int(kmeans.n_clusters)
        silhouette = silhouettes.get(k, float("nan"))
        labels = kmeans.predict(matrix)
        # Stable ids: clusters numbered by descending mean spend.
        spend = buyers["monetary"].cast(pl.Float64).fill_null(0).to_numpy()
        means = np.array(
            [spend[labels == c].mean() if (labels == c).any() else -np.inf for c in range(k)]
        )
        renumber = np.empty(k, dtype=np.int64)
        renumber[np.argsort(-means, kind="stable")] = np.arange(k)
        labels = renumber[labels]
        log.info(
            "clustered %d buyers into k=%d clusters (silhouette %.3f)", len(buyers), k, silhouette
        )

    assigned = pl.concat(
        [
            buyers.select("customer_id").with_columns(pl.Series("cluster_id", labels, pl.Int32)),
            features.filter(pl.Series(~buyers_mask))
            .select("customer_id")
            .with_columns(pl.lit(k, pl.Int32).alias("cluster_id")),
        ]
    )
    profiles = _profiles(features, assigned, category_purchases, columns, k, silhouette)
    clusters = assigned.join(
        profiles.select("cluster_id", "cluster_name"), on="cluster_id", how="left"
    ).sort("customer_id")
    return clusters, profiles


def _profiles(
    features: pl.DataFrame,
    assigned: pl.DataFrame,
    category_purchases: pl.DataFrame,
    columns: list[str],
    k: int,
    silhouette: float,
) -> pl.DataFrame:
    joined = features.join(assigned, on="customer_id")
    total = joined.height
    means = (
        joined.group_by("cluster_id")
        .agg(
            pl.len().alias("customers"),
            *[pl.col(c).cast(pl.Float64).mean().alias(f"mean_{c}") for c in columns],
        )
        .sort("cluster_id")
    )
    for c in ("recency_days", "frequency", "monetary", "avg_order_value"):
        if f"mean_{c}" not in means.columns:
            means = means.with_columns(pl.lit(None, pl.Float64).alias(f"mean_{c}"))
    # z-scores of cluster means on the signed-log scale, against all buyers.
    buyers = joined.filter(pl.col("cluster_id") < k)
    stats = {}
    for c in ("recency_days", "frequency", "monetary"):
        values = _signed_log(buyers[c].cast(pl.Float64).to_numpy())
        stats[c] = (np.nanmean(values), np.nanstd(values)) if len(values) else (0.0, 1.0)
    log_means = (
        buyers.group_by("cluster_id")
        .agg(
            [
                pl.col(c)
                .cast(pl.Float64)
                .sign()
                .mul(pl.col(c).cast(pl.Float64).abs().log1p())
                .mean()
                .alias(c)
                for c in ("recency_days", "frequency", "monetary")
            ]
        )
        .sort("cluster_id")
    )
    top = (
        category_purchases.join(assigned, on="customer_id")
        .group_by("cluster_id", "category")
        .agg(pl.col("purchases").sum())
        .sort(["cluster_id", "purchases", "category"], descending=[False, True, False])
        .group_by("cluster_id", maintain_order=True)
        .agg(pl.col("category").head(3).str.join(", ").alias("top_categories"))
    )
    names = {}
    for row in log_means.iter_rows(named=True):
        z = {}
        for c, (mean, std) in stats.items():
            value = row[c]
            z[c] = 0.0 if value is None or not std else (value - mean) / std
        names[row["cluster_id"]] = cluster_name(z)
    names[k] = NO_PURCHASE_NAME
    tops = dict(top.iter_rows())
    # Names must be unique. Clusters sharing a name are told apart by their basket size
    # (mean order value, ranked among them), then by their top category, then by id.
    aov = dict(means.select("cluster_id", "mean_avg_order_value").iter_rows())
    for name in {n for n in names.values() if list(names.values()).count(n) > 1}:
        same = sorted(
            (c for c in names if names[c] == name and c != k),
            key=lambda c: (-(aov.get(c) if aov.get(c) is not None else -np.inf), c),
        )
        for position, cluster_id in enumerate(same):
            basket = (
                "big baskets"
                if position == 0
                else "small baskets"
                if position == len(same) - 1
                else "mid baskets"
            )
            names[cluster_id] = f"{name}, {basket}"
    tops = dict(top.iter_rows())
    for step in ("category", "id"):
        values = list(names.values())
        for cluster_id, name in list(names.items()):
            if values.count(name) > 1 and cluster_id != k:
                first = (tops.get(cluster_id) or "").split(", ")[0]
                suffix = first if step == "category" and first else f"#{cluster_id}"
                names[cluster_id] = f"{name} ({suffix})"
    return means.with_columns(
        pl.col("cluster_id").cast(pl.Int32),
        pl.col("cluster_id").replace_strict(names, return_dtype=pl.String).alias("cluster_name"),
        (pl.col("customers") / max(total, 1)).alias("share"),
        pl.col("cluster_id")
        .replace_strict(tops, default=None, return_dtype=pl.String)
        .alias("top_categories"),
        pl.lit(k, pl.Int32).alias("k"),
        pl.lit(silhouette, pl.Float64).alias("silhouette"),
    ).select([c for c in PROFILE_COLUMNS if c != "logical_date"])


def suppress_small_groups(profiles: pl.DataFrame, min_group_size: int) -> pl.DataFrame:
    """Blank the statistics of clusters smaller than ``min_group_size`` (the row stays).

    ``customers``, ``share``, every ``mean_*`` and ``top_categories`` become NULL for those
    clusters; id, name, k and silhouette stay, so customers can still be told their segment.
    """
    small = pl.col("customers") < min_group_size
    statistics = [
        c for c in profiles.columns if c.startswith("mean_") or c in {"customers", "share"}
    ] + ["top_categories"]
    # Every expression sees the original frame: `small` is evaluated before the blanking.
    return profiles.with_columns(
        pl.when(small).then(None).otherwise(pl.col(c)).alias(c) for c in statistics
    )


# --------------------------------------------------------------------------- affinity


def category_affinity(
    customer_ids: np.ndarray,
    products: pl.DataFrame,
    model: ScoringModel,
    audience_size: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Predicted affinity of each customer for each category, and the top audiences.

    Parameters
    ----------
    customer_ids : numpy.ndarray
        Customers eligible for audiences (the model scores those it knows).
    products : polars.DataFrame
        ``product_id, category, eligible``.
    model : ScoringModel
    audience_size : int
        Customers per category audience.

    Returns
    -------
    audiences : polars.DataFrame
        ``category, rank, customer_id, affinity`` (highest affinity first; ties by id).
    best : polars.DataFrame
        ``customer_id, top_category, affinity`` for every customer the model knows.
    """
    empty_audiences = pl.DataFrame(
        schema={
            "category": pl.String,
            "rank": pl.Int32,
            "customer_id": pl.String,
            "affinity": pl.Float64,
        }
    )
    empty_best = pl.DataFrame(
        schema={"customer_id": pl.String, "top_category": pl.String, "affinity": pl.Float64}
    )
    if not model.has_item_similarity:
        log.warning("the %s model has no item factors: no affinity audiences", model.family)
        return empty_audiences, empty_best
    customer_ids = np.sort(np.asarray(customer_ids).astype(str))
    rows = model.customer_rows(customer_ids)
    customer_ids, rows = customer_ids[rows >= 0], rows[rows >= 0]
    cols = model.product_cols(products["product_id"].cast(pl.String).to_numpy())
    usable = products.with_columns(pl.Series("col", cols)).filter(
        (pl.col("col") >= 0)
        & pl.col("eligible").fill_null(False)
        & pl.col("category").is_not_null()
    )
    if usable.is_empty() or len(rows) == 0:
        return empty_audiences, empty_best
    categories = sorted(usable["category"].unique().to_list())
    centroids = np.vstack(
        [
            model.item_factors[usable.filter(pl.col("category") == c)["col"].to_numpy()].mean(
                axis=0
            )
            for c in categories
        ]
    ).astype(np.float32)
    # Mean score over a category's items = u . mean(v): one product per customer chunk.
    affinity = model.user_factors[rows] @ centroids.T  # (customers, categories)
    size = min(audience_size, len(rows))
    frames = []
    for j, category in enumerate(categories):
        column = affinity[:, j]
        top = (
            np.argpartition(-column, size - 1)[:size]
            if size < len(column)
            else np.arange(len(column))
        )
        top = top[np.lexsort((top, -column[top]))]  # affinity desc, then customer id
        frames.append(
            pl.DataFrame(
                {
                    "category": category,
                    "rank": np.arange(1, len(top) + 1, dtype=np.int32),
                    "customer_id": customer_ids[top],
                    "affinity": np.round(column[top].astype(np.float64), 6),
                }
            )
        )
    best_index = np.argmax(affinity, axis=1)
    best = pl.DataFrame(
        {
            "customer_id": customer_ids,
            "top_category": np.array(categories, dtype=object)[best_index],
            "affinity": np.round(affinity[np.arange(len(rows)), best_index].astype(np.float64), 6),
        },
        schema_overrides={"top_category": pl.String},
    )
    return pl.concat(frames), best


# --------------------------------------------------------------------------- stage


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
    logical_date : date or str, optional
        The run's logical date (default: the last day with an interaction).
    config : SegmentConfig, optional
    model : ScoringModel, optional
        Default: the MLflow ``champion``.
    """
    config = config or SegmentConfig()
    started = time.perf_counter()
    model = model or load_scoring_model()
    with connect() as con:
        day = to_date(logical_date) if logical_date is not None else latest_logical_date(con)
        features = read_frame(
            con,
            "SELECT f.* FROM marts.customer_features AS f "
            "JOIN marts.dim_customers USING (customer_id) ORDER BY customer_id",
        )
        category_purchases = read_frame(
            con,
            """
            SELECT e.customer_id, p.category, count(*) AS purchases
            FROM marts.interaction_events AS e
            JOIN marts.dim_products AS p USING (product_id)
            WHERE e.event_kind = 'purchase' AND p.category IS NOT NULL
              AND e.occurred_at < CAST(? AS DATE) + INTERVAL 1 DAY
            GROUP BY ALL
            """,
            [day],
        )
        products = read_frame(
            con,
            "SELECT product_id, category, coalesce(is_product, true) AND coalesce(is_active, true) "
            "AS eligible FROM marts.dim_products ORDER BY product_id",
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
