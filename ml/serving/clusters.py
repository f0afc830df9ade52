"""Behavioural clusters with readable profiles.

k-means on each buying customer's scaled features (``marts.customer_features``: recency,
frequency, monetary, ...; signed ``log1p`` then z-scores) plus the principal components of
their ALS factors (what they buy, weighted to carry ``factor_weight`` of the features'
variance). **k is chosen by the mean silhouette** on a seeded sample, over
``k_min..k_max``; the smallest k wins a tie. Clusters are numbered by descending mean
spend, and each gets a profile (size, share, feature means, top categories) and a
generated name from how its recency, frequency and spend compare with all buyers ("recent
frequent high spenders"). Customers who bought nothing are not clustered: those with no
order at all form the group "no purchases yet" (id ``k``), and those whose only orders in
the data are returns or cancellations (net spend below zero: what they returned was bought
before the data starts, or elsewhere) the group "returns only, no purchases" (id ``k + 1``,
when there are any). Every profile carries a plain-words ``description``.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

from ml.serving.config import SegmentConfig
from ml.serving.model import ScoringModel

log = logging.getLogger(__name__)

NO_PURCHASE_NAME = "no purchases yet"
RETURNS_ONLY_NAME = "returns only, no purchases"
NO_PURCHASE_DESCRIPTION = (
    "Customers without any order in the data (registered, browsing or reviewing only). "
    "Not part of the k-means clustering of buyers."
)
RETURNS_ONLY_DESCRIPTION = (
    "Customers whose only orders in the data are returns or cancellations, so their net "
    "spend is negative: what they returned was bought before the data starts, or elsewhere. "
    "Not buyers; not part of the k-means clustering."
)


# Feature columns of marts.customer_features used when present (the first three must be).
FEATURE_COLUMNS = (
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "distinct_categories",
)


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
    "description": "VARCHAR",
}


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


def cluster_description(z: dict[str, float], k: int) -> str:
    """What a buyers' cluster has in common, in words (no figures: small groups hide them).

    >>> cluster_description({"recency_days": -1.0, "frequency": 1.2, "monetary": 0.0}, 5)
    'Buyers compared with all buyers: more recent last order, more orders, typical net spend (one of 5 k-means clusters).'
    """

    def compared(value: float, above: str, below: str, typical: str) -> str:
        return above if value >= 0.5 else below if value <= -0.5 else typical

    recency = compared(
        z["recency_days"], "older last order", "more recent last order", "typical recency"
    )
    frequency = compared(z["frequency"], "more orders", "fewer orders", "typical order count")
    spend = compared(z["monetary"], "higher net spend", "lower net spend", "typical net spend")
    return (
        f"Buyers compared with all buyers: {recency}, {frequency}, {spend} "
        f"(one of {k} k-means clusters)."
    )


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

    # Non-buyers: no order at all (k), or returns / cancellations only (k + 1).
    returns_only = pl.col("monetary").cast(pl.Float64).fill_null(0) < 0
    assigned = pl.concat(
        [
            buyers.select("customer_id").with_columns(pl.Series("cluster_id", labels, pl.Int32)),
            features.filter(pl.Series(~buyers_mask)).select(
                "customer_id",
                pl.when(returns_only).then(k + 1).otherwise(k).cast(pl.Int32).alias("cluster_id"),
            ),
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
    names, descriptions = {}, {}
    for row in log_means.iter_rows(named=True):
        z = {}
        for c, (mean, std) in stats.items():
            value = row[c]
            z[c] = 0.0 if value is None or not std else (value - mean) / std
        names[row["cluster_id"]] = cluster_name(z)
        descriptions[row["cluster_id"]] = cluster_description(z, k)
    names[k], descriptions[k] = NO_PURCHASE_NAME, NO_PURCHASE_DESCRIPTION
    names[k + 1], descriptions[k + 1] = RETURNS_ONLY_NAME, RETURNS_ONLY_DESCRIPTION
    tops = dict(top.iter_rows())
    # Names must be unique. Clusters sharing a name are told apart by their basket size
    # (mean order value, ranked among them), then by their top category, then by id.
    aov = dict(means.select("cluster_id", "mean_avg_order_value").iter_rows())
    for name in {n for n in names.values() if list(names.values()).count(n) > 1}:
        same = sorted(
            (c for c in names if names[c] == name and c < k),
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
            if values.count(name) > 1 and cluster_id < k:
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
        pl.col("cluster_id")
        .replace_strict(descriptions, return_dtype=pl.String)
        .alias("description"),
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
