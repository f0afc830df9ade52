"""Customers: identity, sign-up, consent, and the latent tastes that drive their browsing."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from ml.datagen.catalog import Catalog
from ml.datagen.columns import Columns
from ml.datagen.common import DAY, IdTables, Period, lookup, timestamps
from ml.datagen.vocab import COUNTRIES, EMAIL_DOMAINS, FIRST_NAMES, SURNAMES

# Mean browsing sessions per customer per active day. With ~4.2 events per session and
# the anonymous traffic on top this gives ~0.23 events per customer-day (see __init__).
SESSIONS_PER_CUSTOMER_DAY = 0.055
ACTIVITY_SIGMA = 1.0  # heavy and light shoppers
NEW_CUSTOMER_SHARE = 0.25  # signed up during the period (cold start)
CUSTOMER_HISTORY_DAYS = 1095  # the others signed up during the three years before
OPT_IN_SHARE = 0.76
TASTE_SIZES = (1, 2, 3)  # preferred categories per customer ...
TASTE_SIZE_SHARE = (0.3, 0.45, 0.25)  # ... and how common each count is
STAPLE_COUNT_SHARE = (0.35, 0.3, 0.2, 0.15)  # consumables re-bought: 0, 1, 2 or 3
EXPLORATION_SHARE = 0.15  # views outside one's tastes, following overall traffic


@dataclass(frozen=True)
class Customers(Columns):
    """Customers as parallel arrays; index ``i`` is customer id ``C{i+1}`` (earliest first).

    Attributes
    ----------
    signed_up : numpy.ndarray
        Sign-up time (epoch seconds).
    first_name, surname, country, email_number, email_domain : numpy.ndarray
        Indexes into the vocabularies; ``email_number`` is unique per customer.
    opt_in : numpy.ndarray of bool
        Marketing consent.
    activity : numpy.ndarray
        Expected sessions per active day.
    taste_categories, taste_cumweights : numpy.ndarray
        ``(n, 3)`` preferred categories and the cumulative weight of each (Dirichlet).
    favourite_brand : numpy.ndarray
        A brand of the main preferred category.
    staples, staple_count : numpy.ndarray
        ``(n, 3)`` consumable products the customer re-buys, and how many are in use.
    """

    signed_up: np.ndarray
    first_name: np.ndarray
    surname: np.ndarray
    country: np.ndarray
    email_number: np.ndarray
    email_domain: np.ndarray
    opt_in: np.ndarray
    activity: np.ndarray
    taste_categories: np.ndarray
    taste_cumweights: np.ndarray
    favourite_brand: np.ndarray
    staples: np.ndarray
    staple_count: np.ndarray


def country_shares() -> np.ndarray:
    """Shares of ``COUNTRIES`` normalised to sum to 1."""
    share = np.array([s for _, s in COUNTRIES])
    return share / share.sum()


def draw_sign_ups(rng: np.random.Generator, n: int, period: Period) -> np.ndarray:
    """Sign-up times: most before the period, ``NEW_CUSTOMER_SHARE`` during it."""
    is_new = rng.random(n) < NEW_CUSTOMER_SHARE
    history = CUSTOMER_HISTORY_DAYS * DAY
    # Late sign-ups stop before the end so new customers have time to shop.
    window = np.where(is_new, max(1, int(period.seconds * 0.9)), history)
    offset = np.floor(rng.random(n) * window).astype(np.int64)
    return np.where(is_new, period.start + offset, period.start - history + offset)


def draw_tastes(
    rng: np.random.Generator, n: int, catalog: Catalog
) -> tuple[np.ndarray, np.ndarray]:
    """Up to three preferred categories per customer with Dirichlet(1) weights.

    Categories are drawn without replacement in proportion to overall traffic
    (Gumbel top-k), so popular categories are popular tastes too.
    """
    with np.errstate(divide="ignore"):
        log_traffic = np.log(catalog.category_traffic).astype(np.float32)
    keys = log_traffic + rng.gumbel(size=(n, len(log_traffic))).astype(np.float32)
    top = np.argsort(-keys, axis=1)[:, :3].astype(np.int16)
    size = rng.choice(TASTE_SIZES, size=n, p=TASTE_SIZE_SHARE)
    weights = rng.gamma(1.0, size=(n, 3))
    weights[np.arange(3)[None, :] >= size[:, None]] = 0.0
    weights[catalog.category_traffic[top] == 0] = 0.0  # tiny catalogs: empty categories
    cumulative = np.cumsum(weights, axis=1)
    return top, cumulative / cumulative[:, -1:]


def draw_taste_category(
    rng: np.random.Generator, customers: Customers, who: np.ndarray, catalog: Catalog
) -> np.ndarray:
    """One category per entry of ``who`` (customer index, -1 anonymous) from their tastes.

    Anonymous visitors and ``EXPLORATION_SHARE`` of the draws follow overall traffic.
    """
    n = len(who)
    known = who >= 0
    someone = np.maximum(who, 0)
    u = rng.random(n)
    # The last cumulative weight is 1, so two comparisons pick the column.
    column = (u > customers.taste_cumweights[someone, 0]).astype(np.int8)
    column += u > customers.taste_cumweights[someone, 1]
    tasted = customers.taste_categories[someone, column]
    overall = rng.choice(len(catalog.category_traffic), size=n, p=catalog.category_traffic)
    explore = ~known | (rng.random(n) < EXPLORATION_SHARE)
    return np.where(explore, overall, tasted).astype(np.int16)


def draw_staples(
    rng: np.random.Generator, customers: Customers, catalog: Catalog
) -> tuple[np.ndarray, np.ndarray]:
    """Consumable products each customer keeps re-buying (from established products)."""
    n = len(customers)
    n_categories = len(catalog.category_traffic)
    consumable_cats = np.bincount(catalog.category[catalog.consumable], minlength=n_categories) > 0
    count = rng.choice(len(STAPLE_COUNT_SHARE), size=n, p=STAPLE_COUNT_SHARE)
    if not consumable_cats.any():
        return np.zeros((n, 3), dtype=np.int32), np.zeros(n, dtype=np.int8)
    who = np.repeat(np.arange(n), 3)
    category = draw_taste_category(rng, customers, who, catalog)
    fallback_p = catalog.category_traffic * consumable_cats
    fallback = rng.choice(len(fallback_p), size=len(who), p=fallback_p / fallback_p.sum())
    category = np.where(consumable_cats[category], category, fallback)
    staples = catalog.established_by_category.draw(category, rng).reshape(n, 3)
    return staples.astype(np.int32), count.astype(np.int8)


def build_customers(
    n: int, period: Period, catalog: Catalog, rng: np.random.Generator
) -> Customers:
    """Draw ``n`` customers; ids are assigned in sign-up order."""
    signed_up = np.sort(draw_sign_ups(rng, n, period), kind="stable")
    mu = np.log(SESSIONS_PER_CUSTOMER_DAY) - ACTIVITY_SIGMA**2 / 2  # mean stays the target
    taste_categories, taste_cumweights = draw_tastes(rng, n, catalog)
    main_taste = taste_categories[:, 0]
    partial = Customers(
        signed_up=signed_up,
        first_name=rng.integers(0, len(FIRST_NAMES), n),
        surname=rng.integers(0, len(SURNAMES), n),
        country=rng.choice(len(COUNTRIES), size=n, p=country_shares()),
        # A permutation makes every address unique whatever names collide.
        email_number=rng.permutation(n) + 1,
        email_domain=rng.integers(0, len(EMAIL_DOMAINS), n),
        opt_in=rng.random(n) < OPT_IN_SHARE,
        activity=rng.lognormal(mu, ACTIVITY_SIGMA, n),
        taste_categories=taste_categories,
        taste_cumweights=taste_cumweights,
        favourite_brand=catalog.brand[catalog.by_category.draw(main_taste, rng)],
        staples=np.zeros((n, 3), dtype=np.int32),
        staple_count=np.zeros(n, dtype=np.int8),
    )
    staples, staple_count = draw_staples(rng, partial, catalog)
    return replace(partial, staples=staples, staple_count=staple_count)


def customers_frame(customers: Customers, ids: IdTables) -> pl.DataFrame:
    """The ``customers`` entity (contract columns and order)."""
    frame = pl.DataFrame(
        {
            "customer_id": ids.customers,
            "first_name": lookup(FIRST_NAMES, customers.first_name),
            "surname": lookup(SURNAMES, customers.surname),
            "email_number": customers.email_number,
            "domain": lookup(EMAIL_DOMAINS, customers.email_domain),
            "country": lookup([c for c, _ in COUNTRIES], customers.country),
            "signed_up_at": timestamps(customers.signed_up),
            "marketing_opt_in": customers.opt_in,
        }
    )
    email = pl.concat_str(
        [
            pl.col("first_name").str.to_lowercase(),
            pl.lit("."),
            pl.col("surname").str.to_lowercase(),
            pl.col("email_number").cast(pl.Utf8),
            pl.lit("@"),
            pl.col("domain"),
        ]
    )
    return frame.select(
        "customer_id",
        email.alias("email"),
        "first_name",
        "country",
        "signed_up_at",
        "marketing_opt_in",
    )
