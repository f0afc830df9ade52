"""Behavioural clusters (deterministic, readable, k by silhouette) and affinity audiences."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
from test_score_support import LOGICAL_DATE, build_marts, fit_model

from ml.serving.affinity import category_affinity
from ml.serving.clusters import (
    NO_PURCHASE_NAME,
    RETURNS_ONLY_NAME,
    cluster_customers,
    cluster_description,
    cluster_name,
)
from ml.serving.config import SegmentConfig
from ml.serving.segments import build_segments
from ml.warehouse import connect
from ml.warehouse.tables import read_frame

CONFIG = SegmentConfig(k_min=2, k_max=5, seed=11, audience_size=25)
NAME = re.compile(
    r"^((recent|lapsed) )?(frequent|regular|occasional) (high|mid|low) spenders"
    r"(, (big|mid|small) baskets)?( \(.+\))?$"
)


@pytest.fixture
def warehouse():
    frames = build_marts()
    return frames, fit_model(frames)


def _category_purchases(frames):
    return (
        frames["interaction_events"]
        .filter(pl.col("event_kind") == "purchase")
        .join(frames["dim_products"].select("product_id", "category"), on="product_id")
        .group_by("customer_id", "category")
        .agg(pl.len().alias("purchases"))
    )


def test_clusters_are_deterministic_with_readable_unique_names(warehouse):
    frames, model = warehouse
    features = frames["customer_features"]
    first = cluster_customers(features, model, _category_purchases(frames), CONFIG)
    second = cluster_customers(features, model, _category_purchases(frames), CONFIG)
    assert first[0].equals(second[0]) and first[1].equals(second[1])
    clusters, profiles = first
    k = profiles["k"][0]
    assert CONFIG.k_min <= k <= CONFIG.k_max
    assert profiles.height == k + 1  # plus "no purchases yet"
    names = profiles["cluster_name"].to_list()
    assert len(set(names)) == len(names)
    assert names[-1] == NO_PURCHASE_NAME
    assert all(NAME.match(name) for name in names[:-1]), names
    assert profiles["customers"].sum() == clusters.height == features.height
    # Numbered by descending mean spend.
    spend = profiles["mean_monetary"].to_list()[:-1]
    assert spend == sorted(spend, reverse=True)
    assert profiles["top_categories"][0].count(", ") == 2


def test_cluster_name_reads_like_a_marketer_would_say_it():
    assert cluster_name({"recency_days": -1, "frequency": 1, "monetary": 1}) == (
        "recent frequent high spenders"
    )
    assert cluster_name({"recency_days": 1.2, "frequency": -0.8, "monetary": -2}) == (
        "lapsed occasional low spenders"
    )
    assert cluster_name({"recency_days": 0, "frequency": 0, "monetary": 0}) == (
        "regular mid spenders"
    )


def test_affinity_audiences_are_the_top_mean_scores_of_each_category(warehouse):
    frames, model = warehouse
    products = frames["dim_products"].with_columns(
        (pl.col("is_active") & pl.col("is_product")).alias("eligible")
    )
    customers = frames["dim_customers"]["customer_id"].to_numpy()
    audiences, best = category_affinity(customers, products, model, audience_size=25)
    assert audiences.group_by("category").len()["len"].to_list() == [25] * 6
    garden = audiences.filter(pl.col("category") == "Garden")
    items = products.filter(pl.col("eligible") & (pl.col("category") == "Garden"))
    cols = model.product_cols(items["product_id"].to_list())
    cols = cols[cols >= 0]
    known = customers[model.customer_rows(customers) >= 0]
    mean_scores = model.user_factors[model.customer_rows(known)] @ model.item_factors[cols].T
    expected = known[np.argsort(-mean_scores.mean(axis=1), kind="stable")[:25]]
    assert set(garden["customer_id"]) == set(expected)
    assert (np.diff(garden["affinity"].to_numpy()) <= 1e-9).all()
    assert best.height == len(known)


def test_build_segments_writes_every_customer(warehouse):
    frames, model = warehouse
    report = build_segments(LOGICAL_DATE, config=CONFIG, model=model)
    with connect() as con:
        clusters = read_frame(con, "SELECT * FROM ml.customer_clusters")
        audiences = read_frame(con, "SELECT * FROM ml.affinity_audiences")
    assert clusters.height == frames["dim_customers"].height == report.customers
    assert clusters["cluster_name"].null_count() == 0
    assert audiences.height == report.audience_rows == 6 * 25


def _features_with_non_buyers() -> pl.DataFrame:
    rng = np.random.default_rng(3)
    buyers = 60
    return pl.DataFrame(
        {
            "customer_id": [f"B{i:03d}" for i in range(buyers)]
            + [f"N{i}" for i in range(5)]
            + [f"R{i}" for i in range(4)],
            "recency_days": list(rng.integers(1, 300, buyers)) + [None] * 5 + [None] * 4,
            "frequency": list(rng.integers(1, 12, buyers)) + [0] * 5 + [0] * 4,
            "monetary": list(rng.uniform(10, 900, buyers))
            + [None, 0, 0, None, 0]
            # Returns of purchases made before the data starts: a negative net spend.
            + [-19.0, -4.5, -60.0, -2.0],
        },
        schema_overrides={"recency_days": pl.Float64, "frequency": pl.Int64},
    )


def test_customers_with_returns_only_are_their_own_honestly_named_group():
    features = _features_with_non_buyers()
    empty = pl.DataFrame(
        schema={"customer_id": pl.String, "category": pl.String, "purchases": pl.Int64}
    )
    clusters, profiles = cluster_customers(features, None, empty, CONFIG)
    k = profiles["k"][0]
    by_name = {row["cluster_name"]: row for row in profiles.iter_rows(named=True)}
    none_yet, returns = by_name[NO_PURCHASE_NAME], by_name[RETURNS_ONLY_NAME]
    assert (none_yet["cluster_id"], returns["cluster_id"]) == (k, k + 1)
    assert (none_yet["customers"], returns["customers"]) == (5, 4)
    # The returns no longer drag "no purchases yet" below zero; their own group says why.
    assert none_yet["mean_monetary"] == 0
    assert returns["mean_monetary"] == pytest.approx((-19.0 - 4.5 - 60.0 - 2.0) / 4)
    assert "returns or cancellations" in returns["description"]
    assert "without any order" in none_yet["description"]
    members = dict(clusters.select("customer_id", "cluster_name").iter_rows())
    assert {members[f"R{i}"] for i in range(4)} == {RETURNS_ONLY_NAME}
    assert {members[f"N{i}"] for i in range(5)} == {NO_PURCHASE_NAME}
    buyers = profiles.filter(pl.col("cluster_id") < k)
    assert buyers["description"].str.starts_with("Buyers compared with all buyers").all()
    assert buyers["customers"].sum() == 60


def test_cluster_description_matches_the_name():
    z = {"recency_days": 1.0, "frequency": -1.0, "monetary": 0.0}
    assert cluster_name(z) == "lapsed occasional mid spenders"
    assert cluster_description(z, 4) == (
        "Buyers compared with all buyers: older last order, fewer orders, typical net spend "
        "(one of 4 k-means clusters)."
    )
