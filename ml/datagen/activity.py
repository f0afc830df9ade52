"""Browsing sessions and what comes out of them: events, orders and order lines.

A session belongs to a customer (or an anonymous visitor), starts at a time of day that
follows the hourly traffic curve, views a few products chosen from the customer's tastes,
carts some, and may check out: the carted products still in the cart become one order.

Everything is drawn as flat numpy arrays, one entry per session or per viewed product,
so the cost is a few dozen vectorized passes whatever the shop size.
:mod:`ml.datagen.activity_frames` turns the result into the contract's frames.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ml.datagen.catalog import Catalog
from ml.datagen.columns import Columns
from ml.datagen.common import (
    DAY,
    Period,
    rank_within_runs,
    segment_starts,
    uniform_ints,
)
from ml.datagen.people import Customers, country_shares, draw_taste_category
from ml.datagen.vocab import CHANNELS, COUNTRIES, HOURLY_TRAFFIC
from ml.ingest.contract import EVENT_TYPES, ORDER_STATUSES

ANONYMOUS_SESSION_SHARE = 0.12  # of all sessions; their purchases are guest orders
MEAN_VIEWS_PER_SESSION = 3.0
MAX_VIEWS_PER_SESSION = 40
STAPLE_VIEW_SHARE = 0.15  # of the views of customers who have staples
FAVOURITE_BRAND_SHARE = 0.20  # of known customers' views
CART_RATE = 0.25  # viewed -> carted
STAPLE_CART_RATE = 0.55  # a staple is viewed to be re-bought
CHECKOUT_RATE = 0.40  # sessions that check out what is in the cart ...
CHECKOUT_KEEP_RATE = 0.90  # ... keeping most of it: ~36% of carted products are bought
ABANDONED_REMOVE_RATE = 0.10  # carts left behind, emptied first
WISHLIST_RATE = 0.03  # of views not carted
# Mean seconds between the steps of a session.
VIEW_GAP, CART_GAP, REMOVE_GAP, CHECKOUT_GAP = 50.0, 25.0, 60.0, 90.0
ORDER_STATUS_SHARE = {"placed": 0.93, "cancelled": 0.035, "returned": 0.035}
DISCOUNT_SHARE = 0.15  # order lines sold below shelf price
DISCOUNTS = (0.05, 0.10, 0.15, 0.20)
# Units per order line (1, 2, 3): consumables are bought in multiples more often.
QUANTITY_SHARE = {True: (0.65, 0.25, 0.10), False: (0.88, 0.09, 0.03)}

VIEW, CART, REMOVE, PURCHASE, WISHLIST = (
    EVENT_TYPES.index(t)
    for t in ("view", "add_to_cart", "remove_from_cart", "purchase", "wishlist")
)


@dataclass(frozen=True)
class Sessions(Columns):
    """Sessions as parallel arrays, in start order (index ``i`` is session ``S{i+1}``).

    Attributes
    ----------
    customer : numpy.ndarray
        Customer index, -1 for an anonymous visitor.
    start : numpy.ndarray
        Start time (epoch seconds).
    view_count : numpy.ndarray
        Products viewed.
    channel : numpy.ndarray
        Index into ``CHANNELS``.
    checks_out : numpy.ndarray of bool
        Whether the session checks out (buys what is in the cart, if anything).
    span : numpy.ndarray
        Seconds from start to checkout, the last moment of the session.
    """

    customer: np.ndarray
    start: np.ndarray
    view_count: np.ndarray
    channel: np.ndarray
    checks_out: np.ndarray
    span: np.ndarray


@dataclass(frozen=True)
class Views(Columns):
    """Viewed products, session-major and in viewing order within a session.

    Attributes
    ----------
    session : numpy.ndarray
        Session index.
    offset, cart_gap, remove_gap : numpy.ndarray
        Seconds from the session start to the view, from the view to the cart, and from
        the cart to its removal (only used where those happen).
    product : numpy.ndarray
        Product index.
    staple : numpy.ndarray of bool
        Viewed as one of the customer's re-bought staples.
    cart, purchase, remove, wishlist : numpy.ndarray of bool
        Funnel steps that followed the view.
    """

    session: np.ndarray
    offset: np.ndarray
    cart_gap: np.ndarray
    remove_gap: np.ndarray
    product: np.ndarray | None = None
    staple: np.ndarray | None = None
    cart: np.ndarray | None = None
    purchase: np.ndarray | None = None
    remove: np.ndarray | None = None
    wishlist: np.ndarray | None = None


@dataclass(frozen=True)
class Orders(Columns):
    """Orders in time order (index ``i`` is order ``O{i+1}``) and their lines.

    Attributes
    ----------
    session, ordered_at, status, channel, country : numpy.ndarray
        Per order: its session, checkout time, index into ``ORDER_STATUSES``, index into
        ``CHANNELS`` and into ``COUNTRIES``.
    line_order, line_no, line_view, quantity, unit_price : numpy.ndarray
        Per line, grouped by order: the order index, 1-based line number, the view it
        was bought from, units and price paid per unit.
    """

    session: np.ndarray
    ordered_at: np.ndarray
    status: np.ndarray
    channel: np.ndarray
    country: np.ndarray
    line_order: np.ndarray
    line_no: np.ndarray
    line_view: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray


@dataclass(frozen=True)
class Activity:
    """Everything that happened in the shop during the period."""

    sessions: Sessions
    views: Views
    orders: Orders


# --- sessions -------------------------------------------------------------------------


def draw_session_starts(
    rng: np.random.Generator, earliest: np.ndarray, period: Period
) -> np.ndarray:
    """Start times: a uniform day in ``[earliest, end)``, an hour from the traffic curve."""
    n = len(earliest)
    moment = uniform_ints(rng, earliest, period.end, n)
    midnight = moment - moment % DAY
    hourly = np.array(HOURLY_TRAFFIC) / sum(HOURLY_TRAFFIC)
    start = midnight + rng.choice(24, size=n, p=hourly) * 3600 + rng.integers(0, 3600, n)
    # A visit drawn before the sign-up moment becomes the first visit, right after it.
    just_signed_up = earliest + rng.exponential(900.0, n).astype(np.int64)
    return np.minimum(np.where(start < earliest, just_signed_up, start), period.end - 1)


def draw_sessions(rng: np.random.Generator, customers: Customers, period: Period) -> Sessions:
    """Sessions of every customer (Poisson on their active days) plus anonymous ones."""
    active_from = np.maximum(customers.signed_up, period.start)
    active_days = (period.end - active_from) / DAY
    per_customer = rng.poisson(customers.activity * active_days)
    known = np.repeat(np.arange(len(customers), dtype=np.int32), per_customer)
    share = ANONYMOUS_SESSION_SHARE
    anonymous = rng.poisson(len(known) * share / (1 - share))
    customer = np.concatenate([known, np.full(anonymous, -1, dtype=np.int32)])
    earliest = np.concatenate([active_from[known], np.full(anonymous, period.start)])
    n = len(customer)
    start = draw_session_starts(rng, earliest, period)
    views = np.minimum(rng.geometric(1 / MEAN_VIEWS_PER_SESSION, n), MAX_VIEWS_PER_SESSION)
    channel_share = np.array([s for _, s in CHANNELS])
    sessions = Sessions(
        customer=customer,
        start=start,
        view_count=views.astype(np.int32),
        channel=rng.choice(len(CHANNELS), size=n, p=channel_share).astype(np.int8),
        checks_out=rng.random(n) < CHECKOUT_RATE,
        span=np.zeros(n, dtype=np.int64),
    )
    return sessions.subset(np.lexsort((customer, start)))  # stable: ties keep draw order


# --- views -----------------------------------------------------------------------------


def lay_out_views(rng: np.random.Generator, sessions: Sessions) -> tuple[Sessions, Views]:
    """Time every view of every session and the session's checkout moment."""
    counts = sessions.view_count
    first = segment_starts(counts)
    n = int(counts.sum())
    gap = 1 + rng.exponential(VIEW_GAP, n).astype(np.int64)
    gap[first] = 0
    elapsed = np.cumsum(gap)
    views = Views(
        session=np.repeat(np.arange(len(sessions), dtype=np.int32), counts),
        offset=(elapsed - np.repeat(elapsed[first], counts)).astype(np.int32),
        cart_gap=(2 + rng.exponential(CART_GAP, n)).astype(np.int32),
        remove_gap=(5 + rng.exponential(REMOVE_GAP, n)).astype(np.int32),
    )
    # Checkout comes after every possible cart or removal of the session.
    latest = views.offset.astype(np.int64) + views.cart_gap + views.remove_gap
    last_step = np.maximum.reduceat(latest, first) if n else latest
    span = last_step + 10 + rng.exponential(CHECKOUT_GAP, len(sessions)).astype(np.int64)
    return replace(sessions, span=span), views


def drop_overflowing(sessions: Sessions, views: Views, period: Period) -> tuple[Sessions, Views]:
    """Drop the few sessions that would end after the period (late-night last-day ones)."""
    keep = sessions.start + sessions.span < period.end
    renumber = np.cumsum(keep, dtype=np.int64) - 1
    kept_view = keep[views.session]
    views = Views(
        session=renumber[views.session[kept_view]].astype(np.int32),
        offset=views.offset[kept_view],
        cart_gap=views.cart_gap[kept_view],
        remove_gap=views.remove_gap[kept_view],
    )
    return sessions.subset(keep), views


def choose_products(
    rng: np.random.Generator,
    sessions: Sessions,
    views: Views,
    customers: Customers,
    catalog: Catalog,
) -> Views:
    """Pick the viewed product: a staple, the favourite brand, or a taste category.

    A product launched after the session started is swapped for an established product
    of the same category, so no product has events before its ``first_seen_at``.
    """
    n = len(views)
    who = sessions.customer[views.session]
    someone = np.maximum(who, 0)
    path = rng.random(n)
    staple = (who >= 0) & (customers.staple_count[someone] > 0) & (path < STAPLE_VIEW_SHARE)
    brand = (who >= 0) & ~staple & (path < STAPLE_VIEW_SHARE + FAVOURITE_BRAND_SHARE)
    category = draw_taste_category(rng, customers, who, catalog)
    product = catalog.by_category.draw(category, rng).astype(np.int32)

    picks = np.flatnonzero(brand)
    product[picks] = catalog.by_brand.draw(customers.favourite_brand[who[picks]], rng)
    picks = np.flatnonzero(staple)
    slot = np.floor(rng.random(len(picks)) * customers.staple_count[who[picks]]).astype(np.int64)
    product[picks] = customers.staples[who[picks], slot]

    unlaunched = np.flatnonzero(catalog.first_seen[product] > sessions.start[views.session])
    product[unlaunched] = catalog.established_by_category.draw(category[unlaunched], rng)
    return replace(views, product=product, staple=staple)


def first_looks(views: Views, n_products: int) -> np.ndarray:
    """True for the first view of a product within its session (only those can be carted)."""
    key = views.session.astype(np.int64) * n_products + views.product
    _, first = np.unique(key, return_index=True)  # stable: the earliest view wins
    mask = np.zeros(len(views), dtype=bool)
    mask[first] = True
    return mask


def run_funnel(
    rng: np.random.Generator, sessions: Sessions, views: Views, n_products: int
) -> Views:
    """Decide, per view, cart / purchase / removal from cart / wishlist."""
    n = len(views)
    cart_rate = np.where(views.staple, STAPLE_CART_RATE, CART_RATE)
    cart = first_looks(views, n_products) & (rng.random(n) < cart_rate)
    checks_out = sessions.checks_out[views.session]
    purchase = cart & checks_out & (rng.random(n) < CHECKOUT_KEEP_RATE)
    # At checkout the whole cart is bought, so what was not bought was removed first.
    remove = cart & ~purchase & (checks_out | (rng.random(n) < ABANDONED_REMOVE_RATE))
    wishlist = ~cart & (rng.random(n) < WISHLIST_RATE)
    return replace(views, cart=cart, purchase=purchase, remove=remove, wishlist=wishlist)


# --- orders ----------------------------------------------------------------------------


def draw_quantities(rng: np.random.Generator, consumable: np.ndarray) -> np.ndarray:
    """Units per line: 1, 2 or 3, multiples more likely for consumables."""
    share = np.where(consumable[:, None], QUANTITY_SHARE[True], QUANTITY_SHARE[False])
    u = rng.random(len(consumable))
    return (1 + (u > share[:, 0]) + (u > share[:, 0] + share[:, 1])).astype(np.int32)


def draw_unit_prices(rng: np.random.Generator, shelf_price: np.ndarray) -> np.ndarray:
    """Shelf price, with a small discount on ``DISCOUNT_SHARE`` of the lines."""
    n = len(shelf_price)
    discount = np.where(rng.random(n) < DISCOUNT_SHARE, rng.choice(DISCOUNTS, size=n), 0.0)
    return np.round(shelf_price * (1 - discount), 2)


def place_orders(
    rng: np.random.Generator,
    sessions: Sessions,
    views: Views,
    customers: Customers,
    catalog: Catalog,
) -> Orders:
    """One order per session with purchases; its lines are the purchased products."""
    bought = np.flatnonzero(views.purchase)  # session-major, viewing order
    session = np.unique(views.session[bought])
    ordered_at = sessions.start[session] + sessions.span[session]
    by_time = np.lexsort((session, ordered_at))
    session, ordered_at = session[by_time], ordered_at[by_time]
    n_orders = len(session)

    order_of_session = np.full(len(sessions), -1, dtype=np.int64)
    order_of_session[session] = np.arange(n_orders)
    line_order = order_of_session[views.session[bought]]
    by_order = np.lexsort((bought, line_order))
    line_view, line_order = bought[by_order], line_order[by_order]
    line_no = rank_within_runs(np.bincount(line_order, minlength=n_orders)) + 1

    product = views.product[line_view]
    who = sessions.customer[session]
    status_share = np.array([ORDER_STATUS_SHARE[s] for s in ORDER_STATUSES])
    guest_country = rng.choice(len(COUNTRIES), size=n_orders, p=country_shares())
    return Orders(
        session=session,
        ordered_at=ordered_at,
        status=rng.choice(len(ORDER_STATUSES), size=n_orders, p=status_share).astype(np.int8),
        channel=sessions.channel[session],
        country=np.where(who >= 0, customers.country[np.maximum(who, 0)], guest_country),
        line_order=line_order,
        line_no=line_no.astype(np.int32),
        line_view=line_view,
        quantity=draw_quantities(rng, catalog.consumable[product]),
        unit_price=draw_unit_prices(rng, catalog.price[product]),
    )


def simulate_activity(
    rng: np.random.Generator, customers: Customers, catalog: Catalog, period: Period
) -> Activity:
    """Draw sessions, views, funnel steps and orders for the whole period."""
    sessions = draw_sessions(rng, customers, period)
    sessions, views = drop_overflowing(*lay_out_views(rng, sessions), period)
    views = choose_products(rng, sessions, views, customers, catalog)
    views = run_funnel(rng, sessions, views, len(catalog))
    orders = place_orders(rng, sessions, views, customers, catalog)
    return Activity(sessions=sessions, views=views, orders=orders)
