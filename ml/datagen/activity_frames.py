"""The contract's ``events``, ``orders`` and ``order_lines`` frames of a simulated
:class:`~ml.datagen.activity.Activity`: its flat arrays become ids, names and timestamps.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ml.datagen.activity import CART, PURCHASE, REMOVE, VIEW, WISHLIST, Activity
from ml.datagen.common import IdTables, gather_ids, lookup, numbered_ids, timestamps
from ml.datagen.vocab import CHANNELS, COUNTRIES
from ml.ingest.contract import EVENT_TYPES, ORDER_STATUSES


def event_arrays(activity: Activity) -> dict[str, np.ndarray]:
    """Every event as flat arrays (time, session, type, view, product), in time order."""
    sessions, views = activity.sessions, activity.views
    view_time = sessions.start[views.session] + views.offset
    cart_time = view_time + views.cart_gap
    checkout_time = sessions.start + sessions.span
    parts = [
        (np.arange(len(views)), view_time, VIEW),
        (np.flatnonzero(views.cart), cart_time, CART),
        (np.flatnonzero(views.wishlist), cart_time, WISHLIST),
        (np.flatnonzero(views.remove), cart_time + views.remove_gap, REMOVE),
        (np.flatnonzero(views.purchase), checkout_time[views.session], PURCHASE),
    ]
    view = np.concatenate([idx for idx, _, _ in parts])
    time = np.concatenate([at[idx] for idx, at, _ in parts])
    kind = np.concatenate([np.full(len(idx), code, dtype=np.int8) for idx, _, code in parts])
    session = views.session[view]
    order = np.lexsort((kind, view, session, time))
    view = view[order]
    return {
        "time": time[order],
        "session": session[order],
        "kind": kind[order],
        "customer": sessions.customer[session[order]],
        "product": views.product[view],
    }


def events_frame(activity: Activity, ids: IdTables) -> pl.DataFrame:
    """The ``events`` entity (contract columns and order), ids in time order."""
    arrays = event_arrays(activity)
    return pl.DataFrame(
        {
            "event_id": numbered_ids("E", len(arrays["time"])),
            "customer_id": gather_ids(ids.customers, arrays.pop("customer")),
            "session_id": gather_ids(
                numbered_ids("S", len(activity.sessions)), arrays.pop("session")
            ),
            "product_id": gather_ids(ids.products, arrays.pop("product")),
            "event_type": lookup(EVENT_TYPES, arrays.pop("kind")),
            "occurred_at": timestamps(arrays.pop("time")),
        }
    )


def orders_frame(activity: Activity, ids: IdTables) -> pl.DataFrame:
    """The ``orders`` entity (contract columns and order)."""
    orders = activity.orders
    return pl.DataFrame(
        {
            "order_id": numbered_ids("O", len(orders)),
            "customer_id": gather_ids(ids.customers, activity.sessions.customer[orders.session]),
            "ordered_at": timestamps(orders.ordered_at),
            "status": lookup(ORDER_STATUSES, orders.status),
            "channel": lookup([c for c, _ in CHANNELS], orders.channel),
            "country": lookup([c for c, _ in COUNTRIES], orders.country),
        }
    )


def order_lines_frame(activity: Activity, ids: IdTables) -> pl.DataFrame:
    """The ``order_lines`` entity (contract columns and order)."""
    orders = activity.orders
    return pl.DataFrame(
        {
            "order_id": gather_ids(numbered_ids("O", len(orders)), orders.line_order),
            "line_no": orders.line_no,
            "product_id": gather_ids(ids.products, activity.views.product[orders.line_view]),
            "quantity": orders.quantity,
            "unit_price": orders.unit_price,
        }
    )
