"""The product catalog: categories, brands, names, prices, popularity and launch dates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ml.datagen.columns import Columns
from ml.datagen.common import DAY, IdTables, Period, SegmentedSampler, lookup, timestamps
from ml.datagen.vocab import BRANDS, CATEGORIES, STYLE_WORDS

# Log-scale spread of product popularity: sigma 1.6 puts about half of all traffic on
# the top 10% of products, the long tail real shops show.
POPULARITY_SIGMA = 1.6
NEW_PRODUCT_SHARE = 0.12  # launched during the period (cold start)
INACTIVE_SHARE = 0.05
INACTIVE_TRAFFIC_FACTOR = 0.3  # discontinued products still get some (old-link) traffic
CATALOG_HISTORY_DAYS = 730  # established products appeared up to two years before the start
QUALITY_SIGMA = 0.5  # latent product quality, moves review ratings


@dataclass(frozen=True)
class Catalog(Columns):
    """Products as parallel arrays; index ``i`` is product id ``P{i+1}`` (oldest first).

    Attributes
    ----------
    category, brand, style, material, noun : numpy.ndarray
        Indexes into ``CATEGORIES``, ``BRANDS``, ``STYLE_WORDS`` and the flattened
        per-category ``materials`` / ``nouns`` vocabularies.
    price, popularity, quality : numpy.ndarray
        Shelf price, browsing weight and latent quality.
    first_seen : numpy.ndarray
        Launch time (epoch seconds).
    is_active, consumable : numpy.ndarray of bool
    category_traffic : numpy.ndarray
        Share of browsing per category (0 for categories without products).
    by_category, established_by_category, by_brand : SegmentedSampler
        Popularity-weighted draws within a category (all products, or only those launched
        before the period) and within a brand.
    """

    category: np.ndarray
    brand: np.ndarray
    style: np.ndarray
    material: np.ndarray
    noun: np.ndarray
    price: np.ndarray
    popularity: np.ndarray
    quality: np.ndarray
    first_seen: np.ndarray
    is_active: np.ndarray
    consumable: np.ndarray
    category_traffic: np.ndarray
    by_category: SegmentedSampler
    established_by_category: SegmentedSampler
    by_brand: SegmentedSampler


def flat_vocabulary(field: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Flatten a per-category word list; return words, per-category offsets and counts."""
    groups = [getattr(c, field) for c in CATEGORIES]
    counts = np.array([len(g) for g in groups])
    return [w for g in groups for w in g], np.cumsum(counts) - counts, counts


def pick_within_category(rng: np.random.Generator, category: np.ndarray, field: str) -> np.ndarray:
    """Pick uniformly, per product, one word of its category's ``field`` vocabulary."""
    _, offsets, counts = flat_vocabulary(field)
    return offsets[category] + np.floor(rng.random(len(category)) * counts[category]).astype(int)


def draw_categories(rng: np.random.Generator, n_products: int) -> np.ndarray:
    """Category per product: one product per category first (when possible), then by share."""
    share = np.array([c.share for c in CATEGORIES])
    seeded = np.arange(min(n_products, len(CATEGORIES)))
    rest = rng.choice(len(CATEGORIES), size=n_products - len(seeded), p=share / share.sum())
    return np.concatenate([seeded, rest]).astype(np.int16)


def draw_prices(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    """Lognormal price per category, in charm pricing (x.99) above 5."""
    median = np.array([c.price_median for c in CATEGORIES])[category]
    sigma = np.array([c.price_sigma for c in CATEGORIES])[category]
    raw = median * np.exp(sigma * rng.standard_normal(len(category)))
    return np.where(raw > 5, np.round(raw) - 0.01, np.round(np.maximum(raw, 0.5), 2))


def draw_launch_times(
    rng: np.random.Generator, category: np.ndarray, popularity: np.ndarray, period: Period
) -> np.ndarray:
    """Launch time per product: most before the period, ``NEW_PRODUCT_SHARE`` during it.

    The most popular product of every category is always established, so each category
    has at least one product every session can see.
    """
    n = len(category)
    is_new = rng.random(n) < NEW_PRODUCT_SHARE
    by_category_then_popularity = np.lexsort((-popularity, category))
    cat_sorted = category[by_category_then_popularity]
    leaders = by_category_then_popularity[np.r_[True, cat_sorted[1:] != cat_sorted[:-1]]]
    is_new[leaders] = False
    history = CATALOG_HISTORY_DAYS * DAY
    # New launches stop a little before the end so they can still collect some events.
    launch_window = max(1, int(period.seconds * 0.85))
    offset = np.floor(rng.random(n) * np.where(is_new, launch_window, history)).astype(np.int64)
    return np.where(is_new, period.start + offset, period.start - history + offset)


def build_catalog(n_products: int, period: Period, rng: np.random.Generator) -> Catalog:
    """Draw ``n_products`` products; ids are assigned oldest launch first."""
    category = draw_categories(rng, n_products)
    popularity = rng.lognormal(0.0, POPULARITY_SIGMA, n_products)
    brand = pick_within_category(rng, category, "brands")  # BRANDS is that flat list
    style = rng.integers(0, len(STYLE_WORDS), n_products)
    material = pick_within_category(rng, category, "materials")
    noun = pick_within_category(rng, category, "nouns")
    price = draw_prices(rng, category)
    is_active = rng.random(n_products) >= INACTIVE_SHARE
    quality = rng.normal(0.0, QUALITY_SIGMA, n_products)
    first_seen = draw_launch_times(rng, category, popularity, period)

    order = np.argsort(first_seen, kind="stable")
    category, brand, style, material, noun = (
        a[order] for a in (category, brand, style, material, noun)
    )
    price, popularity, quality = price[order], popularity[order], quality[order]
    first_seen, is_active = first_seen[order], is_active[order]

    traffic = np.where(is_active, popularity, popularity * INACTIVE_TRAFFIC_FACTOR)
    has_products = np.bincount(category, minlength=len(CATEGORIES)) > 0
    category_traffic = np.array([c.share for c in CATEGORIES]) * has_products
    n_cat = len(CATEGORIES)
    return Catalog(
        category=category,
        brand=brand,
        style=style,
        material=material,
        noun=noun,
        price=price,
        popularity=popularity,
        quality=quality,
        first_seen=first_seen,
        is_active=is_active,
        consumable=np.array([c.consumable for c in CATEGORIES])[category],
        category_traffic=category_traffic / category_traffic.sum(),
        by_category=SegmentedSampler.build(category, traffic, n_cat),
        established_by_category=SegmentedSampler.build(
            category, traffic, n_cat, eligible=first_seen < period.start
        ),
        by_brand=SegmentedSampler.build(brand, traffic, len(BRANDS)),
    )


def product_nouns(catalog: Catalog) -> pl.Series:
    """Lower-cased product type per product ("mug"), as reviews refer to it."""
    nouns, _, _ = flat_vocabulary("nouns")
    return lookup([n.lower() for n in nouns], catalog.noun)


def products_frame(catalog: Catalog, ids: IdTables) -> pl.DataFrame:
    """The ``products`` entity (contract columns and order)."""
    materials, _, _ = flat_vocabulary("materials")
    nouns, _, _ = flat_vocabulary("nouns")
    frame = pl.DataFrame(
        {
            "product_id": ids.products,
            "style": lookup(STYLE_WORDS, catalog.style),
            "material": lookup(materials, catalog.material),
            "noun": lookup(nouns, catalog.noun),
            "category": lookup([c.name for c in CATEGORIES], catalog.category),
            "brand": lookup(BRANDS, catalog.brand),
            "blurb": lookup([c.blurb for c in CATEGORIES], catalog.category),
            "price": catalog.price,
            "is_active": catalog.is_active,
            "first_seen_at": timestamps(catalog.first_seen),
        }
    )
    name = pl.concat_str([pl.col("style"), pl.col("material"), pl.col("noun")], separator=" ")
    article = pl.when(name.str.contains("^[AEIOU]")).then(pl.lit("An ")).otherwise(pl.lit("A "))
    description = pl.concat_str(
        [
            article,
            name.str.to_lowercase(),
            pl.lit(" by "),
            pl.col("brand"),
            pl.lit(". "),
            pl.col("blurb"),
        ]
    )
    return frame.select(
        "product_id",
        name.alias("name"),
        description.alias("description"),
        "category",
        "brand",
        "price",
        "is_active",
        pl.lit(True).alias("is_product"),
        "first_seen_at",
    )
