"""Generated reviews carry product-level complaints and praise the text layer can find."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ml.datagen import generate_shop
from ml.datagen.review_text import COMPLAINTS, PRAISES, aspect_sentences, product_voices
from ml.text.aspects import product_aspects
from ml.text.sentiment import train_sentiment

SHOP = {"customers": 20_000, "products": 1_000, "days": 120, "seed": 7}


@pytest.fixture(scope="module")
def reviews(tmp_path_factory) -> pl.DataFrame:
    out = tmp_path_factory.mktemp("shop")
    generate_shop(out, **SHOP)
    return pl.read_parquet(out / "reviews.parquet")


def test_reviews_are_deterministic_per_seed(tmp_path, reviews):
    generate_shop(tmp_path / "again", **SHOP)
    again = pl.read_parquet(tmp_path / "again" / "reviews.parquet")
    assert again.equals(reviews)


def test_poor_products_get_recurring_complaints():
    rng = np.random.default_rng(0)
    quality = np.array([-1.0] * 500 + [1.0] * 500)
    category = np.zeros(1_000, dtype=int)  # Kitchen & Dining: hard goods
    voices = product_voices(rng, category, quality)
    assert (voices.complaint[:500] != "").mean() > 0.75
    assert (voices.complaint[500:] != "").mean() < 0.1
    assert (voices.praise[500:] != "").mean() > 0.9
    assert set(voices.complaint[voices.complaint != ""]) <= set(COMPLAINTS["hard goods"])
    assert set(voices.praise[voices.praise != ""]) <= set(PRAISES["hard goods"])
    # Unhappy reviewers mention the complaint far more often than happy ones.
    product = np.zeros(4_000, dtype=int)
    rating = np.array([1] * 2_000 + [5] * 2_000)
    said = np.array(aspect_sentences(rng, voices, product, rating, ["mug"] * 4_000)) != ""
    assert said[:2_000].mean() > 0.6 > 0.25 > said[2_000:].mean()


def test_the_aspect_extractor_finds_the_generated_complaints(reviews):
    aspects = product_aspects(reviews)
    complaints = aspects.explode("complaint_aspects").drop_nulls("complaint_aspects")
    found = set(complaints["complaint_aspects"].struct.field("aspect"))
    generated = {aspect for kind in COMPLAINTS.values() for aspect in kind}
    assert len(found & generated) >= 3
    listed = complaints["product_id"].unique().to_list()
    ratings = reviews.group_by("product_id").agg(pl.col("rating").mean())
    with_complaint = ratings.filter(pl.col("product_id").is_in(listed))["rating"].mean()
    without = ratings.filter(~pl.col("product_id").is_in(listed))["rating"].mean()
    assert with_complaint < without


def test_generated_text_follows_the_rating(reviews):
    training = train_sentiment(reviews)
    assert training.metrics["roc_auc"] > 0.95
