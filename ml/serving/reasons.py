"""Why a product is recommended: the reason codes and the history product behind them.

A reason names what the customer really did, and nothing else:

* ``bought_similar`` / ``bought_before``: the named product is one the customer bought
  (``bought_before``: the recommended product itself, bought before the exclusion
  window); the context is the day they last bought it;
* ``viewed_similar``: a customer with no purchase, and a product they viewed (possibly
  the recommended one itself: "because you viewed X");
* ``popular_*`` / ``recommended_for_you``: no product of theirs is named.

The dbt output mart turns a code into text with the product name or context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

# Reason codes.
BOUGHT_SIMILAR = "bought_similar"  # because you bought X (context: when)
BOUGHT_BEFORE = "bought_before"  # you bought it before, outside the exclusion window
VIEWED_SIMILAR = "viewed_similar"  # because you viewed X (history without purchases)
RECOMMENDED_FOR_YOU = "recommended_for_you"  # collaborative, no history product to name
POPULAR_IN_SEGMENT = "popular_in_segment"
POPULAR_IN_COUNTRY = "popular_in_country"
POPULAR_OVERALL = "popular_overall"
NEW_SIMILAR_BOUGHT = "new_similar_bought"  # a new product, like one you bought (exploration)

# Cap on (customers x history length) gathered at once when computing reasons.
_REASON_BLOCK = 400_000


def reason_products(
    recommended: np.ndarray, history: sp.csr_matrix, unit_factors: np.ndarray
) -> np.ndarray:
    """For each recommendation, the history product with the closest item factors.

    Parameters
    ----------
    recommended : numpy.ndarray
        ``(users, n)`` item indices, ``-1`` for padding.
    history : scipy.sparse.csr_matrix
        ``(users, items)`` products in each user's history (sorted indices).
    unit_factors : numpy.ndarray
        Unit-length item factors.

    Returns
    -------
    numpy.ndarray
        ``(users, n)`` item indices (``-1`` where no history or no recommendation). Ties
        go to the lowest item index. A recommended product that is itself in the history
        is its own reason (cosine 1).
    """
    users, n = recommended.shape
    reasons = np.full((users, n), -1, dtype=np.int64)
    lengths = np.diff(history.indptr)
    # Customers sorted by history length, in blocks of bounded padded size: a few heavy
    # buyers do not inflate the padding of everyone else.
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    start = 0
    while start < len(order):
        longest = lengths[order[start]]
        stop = start + 1
        while stop < len(order):
            candidate_longest = lengths[order[min(stop + 255, len(order) - 1)]]
            if (min(stop + 256, len(order)) - start) * candidate_longest > _REASON_BLOCK:
                break
            stop = min(stop + 256, len(order))
            longest = candidate_longest
        block = order[start:stop]
        longest = lengths[block].max()
        offsets = np.arange(longest)
        valid = offsets[None, :] < lengths[block][:, None]
        positions = np.where(valid, history.indptr[block][:, None] + offsets[None, :], 0)
        past = history.indices[positions]  # (b, L)
        recs = recommended[block]
        rec_vectors = unit_factors[np.maximum(recs, 0)]  # (b, n, f)
        past_vectors = unit_factors[past]  # (b, L, f)
        similarity = np.matmul(rec_vectors, past_vectors.transpose(0, 2, 1))  # (b, n, L)
        # Its own cosine is 1 only up to rounding: make "bought before" win exactly.
        similarity = np.where(past[:, None, :] == recs[:, :, None], np.inf, similarity)
        similarity = np.where(valid[:, None, :], similarity, -np.inf)  # padding last
        best = np.argmax(similarity, axis=2)
        chosen = np.take_along_axis(past, best, axis=1)
        reasons[block] = np.where(recs >= 0, chosen, -1)
        start = stop
    return reasons


def reason_codes(recommended: np.ndarray, reasons: np.ndarray, buyer: np.ndarray) -> np.ndarray:
    """The code of each recommendation from its reason product and the customer's history.

    Parameters
    ----------
    recommended, reasons : numpy.ndarray
        Product positions of the recommendations and of their reason products (``-1``:
        none), flat and aligned.
    buyer : numpy.ndarray of bool
        Whether the customer bought anything (then the reasons were drawn from their
        purchases, else from their views).

    Returns
    -------
    numpy.ndarray of str
        ``bought_before`` only for a bought product recommended again, ``bought_similar``
        for another bought product, ``viewed_similar`` for a viewed one (itself
        included: a viewed product is never "bought before"), ``recommended_for_you``
        when no product is named.
    """
    # Pick from the four names by an integer index: an object gather of shared strings,
    # not a where() over fixed-width text converted to objects (10x slower at 10M rows).
    names = np.array(
        [RECOMMENDED_FOR_YOU, BOUGHT_BEFORE, BOUGHT_SIMILAR, VIEWED_SIMILAR], dtype=object
    )
    same = reasons == recommended
    which = np.where(buyer, np.where(same, 1, 2), 3)
    return names[np.where(reasons < 0, 0, which)]


@dataclass
class LastBought:
    """The day each customer last bought each product, looked up by positions.

    Attributes
    ----------
    keys : numpy.ndarray
        Sorted ``customer_position * n_products + product_position`` of bought pairs.
    day_codes : numpy.ndarray
        Index into ``labels`` of each pair's last purchase day, aligned with ``keys``.
    labels : numpy.ndarray
        The distinct days as ``YYYY-MM-DD`` objects, then ``None`` (a pair with no day).
        Formatting the few hundred distinct days, not 10M pairs, and gathering shared
        strings keeps this cheap at scale.
    n_products : int
        Catalogue size (the key's stride).
    """

    keys: np.ndarray
    day_codes: np.ndarray
    labels: np.ndarray
    n_products: int

    @classmethod
    def from_history(
        cls,
        rows: np.ndarray,
        cols: np.ndarray,
        bought: np.ndarray,
        history: pl.DataFrame,
        n_products: int,
    ) -> LastBought:
        """Build from the scoring history (``last_bought_at`` per customer x product)."""
        keep = bought & (rows >= 0) & (cols >= 0)
        day = history["last_bought_at"].dt.date()
        keep &= day.is_not_null().to_numpy()
        epoch_days = day.to_physical().fill_null(0).to_numpy()[keep]
        distinct, day_codes = np.unique(epoch_days, return_inverse=True)
        labels = np.empty(len(distinct) + 1, dtype=object)
        labels[:-1] = np.datetime_as_string(distinct.astype("datetime64[D]")).astype(object)
        labels[-1] = None
        keys = rows[keep].astype(np.int64) * n_products + cols[keep]
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], day_codes[order], labels, n_products)

    def dates(self, customers: np.ndarray, products: np.ndarray) -> np.ndarray:
        """Last purchase day of each (customer, product) position pair (None if never)."""
        wanted = np.asarray(customers, np.int64) * self.n_products + np.asarray(products)
        if len(self.keys) == 0:
            return np.full(len(wanted), None, dtype=object)
        at = np.clip(np.searchsorted(self.keys, wanted), 0, len(self.keys) - 1)
        found = self.keys[at] == wanted
        return self.labels[np.where(found, self.day_codes[at], len(self.labels) - 1)]
