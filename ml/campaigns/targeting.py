"""Who a campaign reaches: target, predicted affinity, rank, frequency cap, max audience."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ml.campaigns.definitions import Campaign, CampaignConfig, CampaignError, category_key
from ml.campaigns.rules import parse_rule

if TYPE_CHECKING:
    from ml.serving.model import ScoringModel

log = logging.getLogger(__name__)


def predicted_affinity(
    model: ScoringModel | None, customer_ids: np.ndarray, products: pl.DataFrame
) -> tuple[list[str], np.ndarray]:
    """Predicted affinity of each customer for each category: ``u . mean(v)``.

    Returns
    -------
    categories : list of str
        Column labels, sorted.
    affinity : numpy.ndarray
        ``(customers, categories)``; NaN rows for customers the model does not know (all
        NaN without a model with item factors).
    """
    if model is None or not model.has_item_similarity:
        categories = sorted(
            products.filter(pl.col("eligible") & pl.col("category").is_not_null())["category"]
            .unique()
            .to_list()
        )
        return categories, np.full((len(customer_ids), len(categories)), np.nan)
    from ml.serving.affinity import category_centroids

    categories, centroids, present = category_centroids(model, products)
    affinity = np.full((len(customer_ids), len(categories)), np.nan)
    rows = model.customer_rows(customer_ids)
    known = rows >= 0
    scores = model.user_factors[rows[known]].astype(np.float64) @ centroids.astype(np.float64).T
    scores[:, ~present] = np.nan
    affinity[known] = np.round(scores, 6)
    return categories, affinity


def campaign_affinity(
    campaign: Campaign, categories: list[str], affinity: np.ndarray
) -> np.ndarray:
    if campaign.category is not None:
        lookup = {category_key(c): j for j, c in enumerate(categories)}
        j = lookup.get(category_key(campaign.category))
        return affinity[:, j] if j is not None else np.full(len(affinity), np.nan)
    if affinity.shape[1] == 0:
        return np.full(len(affinity), np.nan)
    all_nan = np.isnan(affinity).all(axis=1)
    best = np.nanmax(np.where(all_nan[:, None], 0.0, affinity), axis=1)
    return np.where(all_nan, np.nan, best)


def target_mask(campaign: Campaign, eligible: pl.DataFrame, affinity: np.ndarray) -> np.ndarray:
    """Which eligible customers a campaign targets (before cap and max audience).

    Raises
    ------
    CampaignError
        A rule names a column the features table does not have.
    """
    n = eligible.height
    if campaign.target_type == "segment":
        wanted = {s.lower() for s in campaign.segments}
        return eligible["segment"].str.to_lowercase().is_in(wanted).fill_null(False).to_numpy()
    if campaign.target_type == "cluster":
        name = campaign.target_value.strip().lower()
        mask = (eligible["cluster_name"].str.to_lowercase() == name).fill_null(False).to_numpy()
        if not mask.any():
            log.warning(
                "%s: no eligible customer is in cluster %r (cluster names are regenerated "
                "by each segmentation; see published cluster_profiles)",
                campaign.label,
                campaign.target_value,
            )
        return mask
    if campaign.target_type == "category":
        # Customers with a signal for the category: the model knows them, or it is the
        # category they spend most on.
        top = eligible["top_category"] if "top_category" in eligible.columns else None
        spends = (
            (category_key(top) == category_key(campaign.category)).fill_null(False).to_numpy()
            if top is not None
            else np.zeros(n, dtype=bool)
        )
        return ~np.isnan(affinity) | spends
    if campaign.target_type == "rule":
        rule = parse_rule(campaign.target_value)
        missing = sorted(rule.columns - set(eligible.columns))
        if missing:
            raise CampaignError(
                f"{campaign.label}: rule uses {', '.join(missing)}, which marts.customer_features "
                "does not have: rebuild the marts (dbt) or change the rule"
            )
        return rule.select(eligible).to_numpy()
    if campaign.target_type == "review_sentiment":
        return unhappy_reviewers(eligible)
    raise CampaignError(f"{campaign.label}: unknown target_type {campaign.target_type!r}")


def unhappy_reviewers(eligible: pl.DataFrame, *, required: bool = True) -> np.ndarray:
    """Customers with a negative review in the last 30 days (``negative_reviews_30d > 0``).

    Parameters
    ----------
    eligible : polars.DataFrame
        Eligible customers with their ``customer_features`` columns.
    required : bool
        Without the column (marts built before review insight): raise (a target needs
        it) or, False, nobody (an exclusion has nothing to go on).

    Raises
    ------
    CampaignError
        ``required`` and the features lack the column.
    """
    if "negative_reviews_30d" not in eligible.columns:
        if not required:
            return np.zeros(eligible.height, dtype=bool)
        raise CampaignError(
            "marts.customer_features has no negative_reviews_30d: rebuild the marts (dbt) "
            "after the review_insight stage"
        )
    return (eligible["negative_reviews_30d"].fill_null(0) > 0).to_numpy()


def rank_order(eligible: pl.DataFrame, affinity: np.ndarray) -> np.ndarray:
    """Positions of ``eligible`` best first: affinity (known first), frequency, spend, id."""
    n = eligible.height

    def column(name: str) -> np.ndarray:
        if name not in eligible.columns:
            return np.zeros(n)
        return eligible[name].cast(pl.Float64).fill_null(0.0).to_numpy()

    unknown = np.isnan(affinity)
    score = np.where(unknown, 0.0, affinity)
    # eligible is sorted by customer_id, so the position is the final, unique tie-break.
    return np.lexsort((np.arange(n), -column("monetary"), -column("frequency"), -score, unknown))


def select_audiences(
    campaigns: list[Campaign],
    eligible: pl.DataFrame,
    affinity_of: dict[str, np.ndarray],
    contacts: dict[str, int],
    config: CampaignConfig,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Pick each campaign's audience under the frequency cap and its max audience.

    Parameters
    ----------
    campaigns : list of Campaign
        Campaigns launching now (any order: they are processed by priority).
    eligible : polars.DataFrame
        Eligible customers (sorted by id) with features, segment and cluster.
    affinity_of : dict
        Campaign id -> predicted affinity per eligible customer (NaN: unknown).
    contacts : dict
        Customer id -> audiences already within the cap window.
    config : CampaignConfig

    Returns
    -------
    selected : dict
        Campaign id -> positions in ``eligible``, best first.
    capped : dict
        Campaign id -> targeted customers left out by the frequency cap.
    """
    ids = eligible["customer_id"].to_list()
    used = np.array([contacts.get(c, 0) for c in ids], dtype=np.int64)
    selected: dict[str, np.ndarray] = {}
    capped: dict[str, int] = {}
    for campaign in sorted(campaigns, key=Campaign.sort_key):
        affinity = affinity_of[campaign.campaign_id]
        targeted = target_mask(campaign, eligible, affinity)
        if campaign.is_promotional and config.exclude_negative_reviewers:
            unhappy = unhappy_reviewers(eligible, required=False)
            if unhappy.any():
                log.info(
                    "%s: %d targeted customers left out (negative review in the last 30 days)",
                    campaign.label,
                    int((targeted & unhappy).sum()),
                )
            targeted = targeted & ~unhappy
        allowed = targeted & (used < config.frequency_cap)
        order = rank_order(eligible, affinity)
        chosen = order[allowed[order]][: max(0, campaign.max_audience)]
        used[chosen] += 1
        selected[campaign.campaign_id] = chosen
        capped[campaign.campaign_id] = int((targeted & ~allowed).sum())
    return selected, capped
