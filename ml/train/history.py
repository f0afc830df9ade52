"""The matrices of one history: events before a cut-off, aggregated range by range.

:func:`build_training_data` turns the loaded events (:func:`~ml.train.interactions.load_events`)
into the strength and bought matrices every model is fit on. The events are aggregated by
ranges of customers: a pair belongs to one customer, so each range gives its own pairs
exactly, and only one range's group-by is in memory at a time (at 100M events, aggregating
the whole history at once took 8.6 GB on top of the events).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import polars as pl
import scipy.sparse as sp

from ml.train.categories import category_codes
from ml.train.config import InteractionWeighting
from ml.train.interactions import IndexMaps, TrainingData, aggregate

log = logging.getLogger(__name__)

# Events per range of customers aggregated at once (build_training_data): one range up to
# the 10M-event shop, seven at 100M.
AGGREGATION_BLOCK_EVENTS = 16_000_000


def build_training_data(
    events: pl.DataFrame,
    cutoff: datetime,
    weighting: InteractionWeighting,
    categories: pl.DataFrame | None = None,
    *,
    block_events: int = AGGREGATION_BLOCK_EVENTS,
) -> TrainingData:
    """Aggregate events before ``cutoff`` and build the matrices and index maps.

    ``categories`` (``product_id, category``, see :func:`load_product_categories`) gives
    the products' category codes; without it :attr:`TrainingData.categories` is None.

    The events are aggregated by ranges of customers of about ``block_events`` events
    each (see the module). Each range keeps its pairs as codes, a strength and a bought
    flag (13 bytes a pair), and the matrices are assembled from the codes, already in row
    order.
    """
    # Counted, not copied: the history is nearly every event when the cut-off is the end.
    before = pl.col("occurred_at") < cutoff
    n_events, first_event = events.select(
        before.sum().alias("events"), pl.col("occurred_at").filter(before).min().alias("first")
    ).row(0)
    events = coded_ids(events)
    customer_ids = events.schema["customer_id"].categories
    product_ids = events.schema["product_id"].categories
    parts = []
    for in_range in customer_ranges(events, n_events, block_events):
        pairs = aggregate(in_range, cutoff, weighting)
        parts.append(
            pairs.select(
                pl.col("customer_id").to_physical().alias("customer"),
                pl.col("product_id").to_physical().alias("product"),
                pl.col("strength").cast(pl.Float32),
                (pl.col("purchases") > 0).alias("bought"),
            ).drop_nulls(["customer", "product"])
        )
        del pairs
    pairs = pl.concat(parts, rechunk=True)
    del parts
    customers = pairs["customer"].to_numpy()
    products = pairs["product"].to_numpy()
    row_codes = np.flatnonzero(np.bincount(customers, minlength=len(customer_ids)))
    col_codes = np.flatnonzero(np.bincount(products, minlength=len(product_ids)))
    maps = IndexMaps(
        customer_ids=customer_ids.gather(row_codes).to_numpy().astype(str),
        product_ids=product_ids.gather(col_codes).to_numpy().astype(str),
    )
    # Codes to matrix positions: both keep the id order, so the sorted pairs stay sorted.
    row_of = np.full(len(customer_ids), -1, dtype=np.int32)
    row_of[row_codes] = np.arange(len(row_codes), dtype=np.int32)
    column_of = np.full(len(product_ids), -1, dtype=np.int32)
    column_of[col_codes] = np.arange(len(col_codes), dtype=np.int32)
    rows, columns = row_of[customers], column_of[products]
    del customers, products
    strength = _sorted_pairs_csr(maps.shape, rows, columns, pairs["strength"].to_numpy())
    # A long decay can underflow float32 to 0: a stored zero is no signal for any model.
    strength.eliminate_zeros()
    bought_mask = pairs["bought"].to_numpy()
    del pairs
    bought = _sorted_pairs_csr(
        maps.shape,
        rows[bought_mask],
        columns[bought_mask],
        np.ones(int(bought_mask.sum()), dtype=np.float32),
    )
    return TrainingData(
        maps,
        strength,
        bought,
        cutoff,
        int(n_events),
        categories=category_codes(maps.product_ids, categories),
        first_event=first_event,
    )


def customer_ranges(
    events: pl.DataFrame, n_events: int, block_events: int = AGGREGATION_BLOCK_EVENTS
) -> Iterator[pl.LazyFrame]:
    """``events`` (ids coded by :func:`coded_ids`) split into ranges of customer codes of
    about ``block_events`` of the ``n_events`` events each, as lazy frames.

    Everything grouped by customer (pairs, counts) can be computed range by range, with
    only one range's group-by in memory at a time.
    """
    n_customers = len(events.schema["customer_id"].categories)
    blocks = max(1, math.ceil(n_events / block_events))
    bounds = np.linspace(0, n_customers, blocks + 1).round().astype(np.int64)
    code = pl.col("customer_id").to_physical()
    for low, high in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if blocks > 1:
            log.info("customers %d-%d of %d", low, high, n_customers)
        yield events.lazy().filter(code.is_between(low, high, closed="left"))


def distinct_pairs(
    events: pl.DataFrame, cutoff: datetime, *, block_events: int = AGGREGATION_BLOCK_EVENTS
) -> int:
    """How many (customer, product) pairs have an event before ``cutoff``.

    An upper bound of the pairs :func:`build_training_data` keeps (those with a positive
    strength), counted without building them.
    """
    events = coded_ids(events)
    n_products = len(events.schema["product_id"].categories)
    pair = pl.col("customer_id").to_physical().cast(pl.UInt64) * n_products + pl.col(
        "product_id"
    ).to_physical().cast(pl.UInt64)
    total = 0
    for in_range in customer_ranges(events, events.height, block_events):
        counted = in_range.filter(pl.col("occurred_at") < cutoff).select(
            pair.drop_nulls().n_unique()
        )
        total += int(counted.collect().item())
    return total


def coded_ids(events: pl.DataFrame) -> pl.DataFrame:
    """``events`` with ``customer_id`` and ``product_id`` as Enums of their sorted values.

    :func:`load_events` already codes them; frames built elsewhere (tests, benchmarks)
    get the same coding here, so codes follow the id order.
    """
    casts = []
    for name in ("customer_id", "product_id"):
        if not isinstance(events.schema[name], pl.Enum):
            values = events[name].drop_nulls().unique().cast(pl.String).sort()
            casts.append(pl.col(name).cast(pl.String).cast(pl.Enum(values)))
    return events.with_columns(casts) if casts else events


def _sorted_pairs_csr(
    shape: tuple[int, int], rows: np.ndarray, columns: np.ndarray, data: np.ndarray
) -> sp.csr_matrix:
    """A CSR from pairs sorted by row then column, one entry per pair (no COO detour)."""
    index = np.int32 if len(data) < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(shape[0] + 1, dtype=index)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    matrix = sp.csr_matrix(
        # Writable: scipy edits in place (eliminate_zeros), and polars hands out views.
        (np.require(data, np.float32, ["W"]), columns.astype(index, copy=False), indptr),
        shape=shape,
    )
    matrix.has_sorted_indices = True
    return matrix
