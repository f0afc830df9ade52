"""Load interaction events, weight them, split them in time and build sparse matrices.

The warehouse's ``marts.interactions`` is the decayed strength *as of the run date*. The
time split needs the same aggregation at earlier cut-offs, and the tuning explores the
weighting itself, so this module re-aggregates ``marts.interaction_events`` in polars with
a :class:`~ml.train.config.InteractionWeighting` whose defaults equal the dbt vars.

The run's cut-offs and the evaluation windows' truth are :mod:`ml.train.split`'s.

Everything is columnar (DuckDB -> Arrow -> polars -> numpy -> ``scipy.sparse``); no Python
loop touches a row. Customers and products get contiguous indices in sorted id order, so the
same events always give the same matrices.

The loaded events hold ids and kinds as polars Enums whose categories are the sorted distinct
values: every group-by, join and sort of training then works on 1-4 byte codes, not strings
(at 100M events the string columns alone were ~4 GB, and their group-bys several more).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp
from implicit.nearest_neighbours import bm25_weight, tfidf_weight

from ml.ids import IdIndex
from ml.train.config import ConfidenceScaling, InteractionWeighting
from ml.warehouse import connect
from ml.warehouse.tables import table_exists

log = logging.getLogger(__name__)

EVENT_COLUMNS = ("customer_id", "product_id", "occurred_at", "event_kind", "quantity")
# Loaded as Enums of their sorted distinct values (see the module docstring).
CODED_COLUMNS = ("customer_id", "product_id", "event_kind")
SECONDS_PER_DAY = 86_400.0


class MissingWarehouseTable(RuntimeError):
    """The warehouse lacks a table training needs."""


def load_events(
    until: datetime,
    warehouse: Path | str | None = None,
    *,
    table: str = "marts.interaction_events",
) -> pl.DataFrame:
    """Read the interaction events that happened before ``until``.

    Parameters
    ----------
    until : datetime
        Exclusive upper bound on ``occurred_at``.
    warehouse : path-like, optional
        DuckDB file (default: the Affinity warehouse).
    table : str
        Qualified table name.

    Returns
    -------
    polars.DataFrame
        Columns :data:`EVENT_COLUMNS`, sorted by time then ids (deterministic order);
        ``customer_id``, ``product_id`` and ``event_kind`` are Enums of their sorted
        distinct values, so codes follow the id order.

    Raises
    ------
    MissingWarehouseTable
        When the table does not exist yet (run the dbt build first).
    """
    with connect(warehouse, read_only=True) as con:
        if not table_exists(con, *table.split(".")):
            raise MissingWarehouseTable(
                f"{table} is not in the warehouse: build the marts first "
                "(`affinity run`, or `dbt build` in dbt_project/)."
            )
        # DuckDB swaps each id for its position in the sorted distinct ids, so polars
        # receives 4-byte codes, never 90M id strings (at 100M events, choosing the windows
        # on string ids peaked at 18.9 GB, on codes 6.5 GB).
        enums, joins, coded = {}, [], []
        for name in CODED_COLUMNS:
            values = pl.from_arrow(
                con.sql(
                    f"SELECT DISTINCT CAST({name} AS VARCHAR) AS value FROM {table} "
                    f"WHERE occurred_at < ? AND {name} IS NOT NULL",
                    params=[until],
                ).to_arrow_table()
            )["value"].sort()
            enums[name] = pl.Enum(values)
            codes = pl.DataFrame(
                {"value": values, "code": pl.int_range(len(values), dtype=pl.UInt32, eager=True)}
            )
            con.register(f"_codes_{name}", codes.to_arrow())
            joins.append(
                f"LEFT JOIN _codes_{name} AS {name}_codes "
                f"ON CAST(e.{name} AS VARCHAR) = {name}_codes.value"
            )
            coded.append(f"{name}_codes.code")
        customer, product, kind = coded
        arrow = con.sql(
            f"SELECT {customer} AS customer_id, {product} AS product_id, e.occurred_at, "
            f"{kind} AS event_kind, CAST(e.quantity AS DOUBLE) AS quantity "
            f"FROM {table} AS e {' '.join(joins)} WHERE e.occurred_at < ? "
            # The codes follow the id order: the same order as the ids themselves.
            f"ORDER BY e.occurred_at, {customer}, {product}, {kind}",
            params=[until],
        ).to_arrow_table()
    events = pl.from_arrow(arrow)
    del arrow
    return events.with_columns(*(pl.col(name).cat.to(enums[name]) for name in CODED_COLUMNS))


class HandedEvents:
    """The loaded events, handed to one consumer that can let go of them.

    A frame passed as an argument stays alive in the caller until the call returns. The
    training's events are 3.2 GB at 100M events, so the trainer hands them over in this
    box and :func:`~ml.train.candidates.run_candidates` frees them before the serving
    re-fit, the stage's largest moment.
    """

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame: pl.DataFrame | None = frame

    def take(self) -> pl.DataFrame:
        """The frame; the box no longer holds it (a second call raises)."""
        frame, self._frame = self._frame, None
        if frame is None:
            raise RuntimeError("these events were already taken: load them again (load_events)")
        return frame


def hash_enum_categories(digest, frame: pl.DataFrame) -> None:
    """Add each Enum column's categories to a ``hashlib`` digest of ``frame``'s rows.

    An Enum's rows hash by code: the categories say which value each code stands for, so
    frames with the same codes but other ids get other digests.
    """
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Enum):
            digest.update(f"\n{name}:".encode())
            digest.update("\x1f".join(dtype.categories.to_list()).encode())


def _per_kind(kinds: pl.DataType, values: dict[str, float]) -> pl.Expr:
    """``event_kind`` mapped to ``values`` (0 for other kinds), for String or Enum kinds."""
    if isinstance(kinds, pl.Enum):
        # By code: a kind the data lacks is simply absent from the categories.
        by_code = {
            code: values.get(kind, 0.0) for code, kind in enumerate(kinds.categories.to_list())
        }
        return (
            pl.col("event_kind")
            .to_physical()
            .replace_strict(by_code, default=0.0, return_dtype=pl.Float64)
        )
    return pl.col("event_kind").replace_strict(values, default=0.0, return_dtype=pl.Float64)


def aggregate(
    events: pl.DataFrame | pl.LazyFrame, cutoff: datetime, weighting: InteractionWeighting
) -> pl.DataFrame:
    """Aggregate events before ``cutoff`` into one strength per customer and product.

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        Events with :data:`EVENT_COLUMNS`.
    cutoff : datetime
        Exclusive end of the history; ages are measured from it.
    weighting : InteractionWeighting
        Kind weights, quantity transform, recency half-life and repeat damping.

    Returns
    -------
    polars.DataFrame
        ``customer_id, product_id, strength, purchases, last_at`` (one row per pair with a
        positive strength), sorted by ids.
    """
    weights = weighting.kind_weights()
    quantity = pl.col("quantity").fill_null(1.0).clip(lower_bound=0.0)
    quantity_factor = {
        "log1p": quantity.log1p(),
        "sqrt": quantity.sqrt(),
        "one": pl.lit(1.0),
        "linear": quantity,
    }[weighting.purchase_quantity]
    kind_weight = _per_kind(events.collect_schema()["event_kind"], weights)
    factor = pl.when(pl.col("event_kind") == "purchase").then(quantity_factor).otherwise(1.0)
    if weighting.half_life_days is None:
        decay = pl.lit(1.0)
    else:
        age_days = (pl.lit(cutoff) - pl.col("occurred_at")).dt.total_microseconds() / (
            SECONDS_PER_DAY * 1e6
        )
        decay = (-math.log(2.0) * age_days / weighting.half_life_days).exp()
    aggregated = (
        events.lazy()
        .filter(pl.col("occurred_at") < cutoff)
        .with_columns((kind_weight * factor * decay).alias("strength"))
        .group_by("customer_id", "product_id")
        .agg(
            pl.col("strength").sum(),
            (pl.col("event_kind") == "purchase").sum().alias("purchases"),
            pl.col("occurred_at").max().alias("last_at"),
        )
        .filter(pl.col("strength") > 0)
    )
    if weighting.repeat_exponent != 1.0:
        aggregated = aggregated.with_columns(pl.col("strength").pow(weighting.repeat_exponent))
    if weighting.strength_transform == "log":
        aggregated = aggregated.with_columns(pl.col("strength").log1p())
    elif weighting.strength_transform == "binary":
        aggregated = aggregated.with_columns(pl.lit(1.0).alias("strength"))
    elif weighting.strength_transform != "counts":
        raise ValueError(
            f"unknown strength_transform {weighting.strength_transform!r}: "
            "use counts, log or binary"
        )
    return aggregated.sort("customer_id", "product_id").collect()


@dataclass(frozen=True)
class IndexMaps:
    """Contiguous indices: ``customer_ids[row]`` and ``product_ids[col]`` (ids only, no PII)."""

    customer_ids: np.ndarray
    product_ids: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.customer_ids), len(self.product_ids)

    def customer_rows(self, customer_ids) -> np.ndarray:
        """Return the row of each customer id, ``-1`` for ids not in the map."""
        return _lookup(self.customer_ids, customer_ids)

    def product_cols(self, product_ids) -> np.ndarray:
        """Return the column of each product id, ``-1`` for ids not in the map."""
        return _lookup(self.product_ids, product_ids)


def _lookup(sorted_ids: np.ndarray, wanted) -> np.ndarray:
    """Positions of ``wanted`` in the sorted array ``sorted_ids`` (``-1`` when absent).

    A hash lookup (:class:`ml.ids.IdIndex`): ``wanted`` as a polars Series is never turned
    into Python strings (at 100M events, numpy copies of the pairs' ids cost gigabytes).
    """
    return IdIndex(sorted_ids).lookup(wanted)


def pairs_to_csr(
    maps: IndexMaps, pairs: pl.DataFrame, value: str | None = None, *, dtype=np.float32
) -> sp.csr_matrix:
    """Build a customers x products CSR from id pairs (pairs outside the maps are dropped).

    Parameters
    ----------
    maps : IndexMaps
        Row and column indices.
    pairs : polars.DataFrame
        ``customer_id, product_id`` and optionally the ``value`` column.
    value : str, optional
        Column holding the cell values; ``None`` puts ones.
    """
    rows = maps.customer_rows(pairs["customer_id"].to_numpy())
    cols = maps.product_cols(pairs["product_id"].to_numpy())
    data = np.ones(len(pairs), dtype=dtype) if value is None else pairs[value].to_numpy()
    keep = (rows >= 0) & (cols >= 0)
    matrix = sp.csr_matrix(
        (data[keep].astype(dtype), (rows[keep], cols[keep])), shape=maps.shape, dtype=dtype
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


@dataclass(frozen=True)
class TrainingData:
    """The matrices of one history (everything before ``cutoff``).

    Attributes
    ----------
    maps : IndexMaps
        Customers and products seen before the cut-off.
    strength : scipy.sparse.csr_matrix
        Customers x products aggregated strength (before confidence scaling).
    bought : scipy.sparse.csr_matrix
        Ones where the customer purchased the product before the cut-off (filtered from
        recommendations).
    cutoff : datetime
        Exclusive end of the history.
    n_events : int
        Events before the cut-off.
    categories : numpy.ndarray or None
        Category code of each product column (``-1``: none), when the catalogue has
        categories (the blend family uses them).
    first_event : datetime or None
        The earliest event of the history (its span ties the search's half-lives to
        the data).
    """

    maps: IndexMaps
    strength: sp.csr_matrix
    bought: sp.csr_matrix
    cutoff: datetime
    n_events: int
    categories: np.ndarray | None = None
    first_event: datetime | None = None

    @property
    def span_days(self) -> float:
        """Days between the first event and the cut-off (0 without events)."""
        if self.first_event is None:
            return 0.0
        return max((self.cutoff - self.first_event).total_seconds() / SECONDS_PER_DAY, 0.0)

    @property
    def item_popularity(self) -> np.ndarray:
        """Distinct buyers per product (the popularity baseline's score)."""
        return np.asarray(self.bought.sum(axis=0)).ravel().astype(np.float32)


def confidence_matrix(strength: sp.csr_matrix, scaling: ConfidenceScaling) -> sp.csr_matrix:
    """Turn strengths into the confidences a model is fit on.

    Parameters
    ----------
    strength : scipy.sparse.csr_matrix
        Customers x products aggregated strength.
    scaling : ConfidenceScaling
        Scheme and scale.

    Returns
    -------
    scipy.sparse.csr_matrix
        float32 customers x products confidences, same sparsity.
    """
    matrix = strength.astype(np.float32).tocsr(copy=True)
    if scaling.normalize and matrix.nnz:
        matrix.data /= np.float32(matrix.data.mean())
    if scaling.scheme == "linear":
        pass
    elif scaling.scheme == "log":
        matrix.data = np.log1p(matrix.data / scaling.epsilon)
    elif scaling.scheme in ("bm25", "tfidf"):
        # implicit's weightings treat rows as documents: apply them to products x customers,
        # as implicit's own examples do, so buyers of many products and products with many
        # buyers each count less.
        item_users = matrix.T.tocsr()
        if scaling.scheme == "bm25":
            weighted = bm25_weight(item_users, K1=scaling.bm25_k1, B=scaling.bm25_b)
        else:
            weighted = tfidf_weight(item_users)
        matrix = weighted.T.tocsr().astype(np.float32)
        # Weightings can drive a cell to <= 0 (an id seen everywhere); keep it weakly positive.
        matrix.data = np.maximum(matrix.data, 1e-3)
    else:
        raise ValueError(
            f"unknown confidence scheme {scaling.scheme!r}: use linear, log, bm25 or tfidf"
        )
    matrix.data = (scaling.alpha * matrix.data).astype(np.float32)
    matrix.sort_indices()
    return matrix


def load_segments(
    warehouse: Path | str | None = None, *, table: str = "marts.customer_rfm_segments"
) -> pl.DataFrame | None:
    """Read ``customer_id, segment`` from the RFM segments mart, or None if it is absent."""
    with connect(warehouse, read_only=True) as con:
        if not table_exists(con, *table.split(".")):
            log.warning("%s is not in the warehouse: no per-segment metrics", table)
            return None
        arrow = con.sql(
            "SELECT CAST(customer_id AS VARCHAR) AS customer_id, "
            f"CAST(segment AS VARCHAR) AS segment FROM {table}"
        ).to_arrow_table()
    return pl.from_arrow(arrow).unique("customer_id", keep="first")


def segments_of(customer_ids: np.ndarray, segments: pl.DataFrame | None) -> np.ndarray | None:
    """Return each customer's segment (``"unknown"`` when missing), or None without segments."""
    if segments is None:
        return None
    frame = pl.DataFrame({"customer_id": np.asarray(customer_ids).astype(str)})
    joined = frame.join(segments, on="customer_id", how="left", maintain_order="left")
    return joined["segment"].fill_null("unknown").to_numpy().astype(str)
