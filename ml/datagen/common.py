"""Shared building blocks: the simulated period, seeded random streams, ids, sampling."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

DAY = 86_400  # seconds
MICROS = 1_000_000

# Zero-padded widths of generated ids ('C0000001', 'P000001', ...); wider numbers just grow.
ID_WIDTHS = {"C": 7, "P": 6, "O": 8, "E": 10, "S": 9, "R": 8, "CMP": 3}


@dataclass(frozen=True)
class Period:
    """The simulated time window, as naive-UTC epoch seconds.

    Parameters
    ----------
    start : int
        First second of the first day (inclusive).
    end : int
        Midnight after the last day (exclusive).
    """

    start: int
    end: int

    @classmethod
    def ending(cls, end_date: str, days: int) -> Period:
        """Return the ``days`` whole days whose last day is ``end_date`` (YYYY-MM-DD)."""
        last_day = datetime.strptime(end_date, "%Y-%m-%d").replace(tzinfo=UTC)
        end = int((last_day + timedelta(days=1)).timestamp())
        return cls(start=end - days * DAY, end=end)

    @property
    def seconds(self) -> int:
        return self.end - self.start


def random_stream(seed: int, name: str) -> np.random.Generator:
    """Return an independent generator for one part of the shop.

    Each part draws from its own stream, so changing one part (say, the defect rate)
    never shifts the random numbers of another and clean rows stay byte-identical.
    """
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def id_expr(prefix: str, number: pl.Expr) -> pl.Expr:
    """Polars expression formatting 1-based ``number`` as ``<prefix><zero-padded number>``."""
    return pl.lit(prefix) + number.cast(pl.Utf8).str.zfill(ID_WIDTHS[prefix])


def numbered_ids(prefix: str, count: int) -> pl.Series:
    """Ids ``<prefix>1 .. <prefix><count>``, the same strings :func:`id_expr` gives.

    Entities are numbered once and references gather from this table, which is far
    cheaper than formatting an id per referencing row.
    """
    width = ID_WIDTHS[prefix]
    number = pl.int_range(1, count + 1, dtype=pl.Int64)
    if count < 10**width:
        # Adding 10**width and dropping the leading '1' zero-pads twice as fast as zfill.
        digits = (number + 10**width).cast(pl.Utf8).str.slice(1)
    else:
        digits = number.cast(pl.Utf8).str.zfill(width)
    return pl.select((pl.lit(prefix) + digits).alias(prefix)).to_series()


def gather_ids(ids: pl.Series, index: np.ndarray) -> pl.Series:
    """``ids[index]`` for 0-based indexes; null where the index is negative (anonymous)."""
    position = pl.Series(index, dtype=pl.Int64)
    if (index < 0).any():
        position = pl.select(pl.when(position >= 0).then(position)).to_series()
    return ids.gather(position)


@dataclass(frozen=True)
class IdTables:
    """Id strings of the entities other entities refer to, by 0-based index."""

    customers: pl.Series
    products: pl.Series

    @classmethod
    def numbered(cls, customers: int, products: int) -> IdTables:
        return cls(numbered_ids("C", customers), numbered_ids("P", products))


def timestamps(seconds: np.ndarray) -> pl.Series:
    """Epoch seconds as a naive-UTC ``Datetime('us')`` series."""
    return pl.Series(seconds.astype("datetime64[s]").astype("datetime64[us]"))


def lookup(values: tuple[str, ...] | list[str], index: np.ndarray) -> pl.Series:
    """Gather strings of a small vocabulary by index, without Python loops."""
    return pl.Series(values, dtype=pl.Utf8).gather(index)


def uniform_ints(
    rng: np.random.Generator, low: np.ndarray | int, high: np.ndarray | int, size: int
) -> np.ndarray:
    """Draw integers uniformly from ``[low, high)`` element-wise (``high > low``)."""
    return (low + np.floor(rng.random(size) * (np.asarray(high) - low))).astype(np.int64)


def segment_starts(counts: np.ndarray) -> np.ndarray:
    """Index of the first element of each run, for runs of the given lengths."""
    return np.cumsum(counts) - counts


def rank_within_runs(counts: np.ndarray) -> np.ndarray:
    """0-based position of every element inside its run (runs laid out back to back)."""
    total = int(counts.sum())
    return np.arange(total) - np.repeat(segment_starts(counts), counts)


@dataclass(frozen=True)
class SegmentedSampler:
    """Weighted sampling of items within a segment, vectorized over many draws.

    Items are grouped by segment (a category, a brand) and laid out on one number line:
    segment ``s`` spans ``(s, s + 1]`` and each item takes a slice proportional to its
    weight. A draw for segment ``s`` is one ``searchsorted`` of ``s + u``, so millions
    of draws across different segments cost a single vectorized call.

    Parameters
    ----------
    members : numpy.ndarray
        Item indices, grouped by segment in ascending order.
    bounds : numpy.ndarray
        Upper end of each member's slice on the number line (ascending).
    sizes : numpy.ndarray
        Number of members per segment id (0 for empty segments).
    """

    members: np.ndarray
    bounds: np.ndarray
    sizes: np.ndarray

    @classmethod
    def build(
        cls,
        segment: np.ndarray,
        weight: np.ndarray,
        n_segments: int,
        eligible: np.ndarray | None = None,
    ) -> SegmentedSampler:
        """Build the sampler over items with ``segment`` ids and positive ``weight``.

        Parameters
        ----------
        segment : numpy.ndarray
            Segment id of every item, in ``[0, n_segments)``.
        weight : numpy.ndarray
            Positive sampling weight of every item.
        n_segments : int
            Number of segment ids.
        eligible : numpy.ndarray of bool, optional
            Only these items can be drawn.
        """
        items = np.arange(len(segment)) if eligible is None else np.flatnonzero(eligible)
        members = items[np.argsort(segment[items], kind="stable")]
        seg, w = segment[members], weight[members].astype(np.float64)
        sizes = np.bincount(seg, minlength=n_segments)
        present = sizes[sizes > 0]
        first = segment_starts(present)
        run = np.repeat(np.arange(len(present)), present)
        cum = np.cumsum(w)
        before = (cum[first] - w[first])[run]
        total = np.add.reduceat(w, first)[run]
        share = (cum - before) / total
        share[first + present - 1] = 1.0  # exact segment ends, whatever the rounding
        return cls(members=members, bounds=seg + share, sizes=sizes)

    def draw(self, segment: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw one item per entry of ``segment`` (every segment must be non-empty)."""
        target = segment + rng.random(len(segment))
        position = np.searchsorted(self.bounds, target, side="right")
        return self.members[np.minimum(position, len(self.members) - 1)]
