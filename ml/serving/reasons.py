"""Why a product is recommended: the reason codes and the history product behind them.

The dbt output mart turns a code into text with the product name or context.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Reason codes.
BOUGHT_SIMILAR = "bought_similar"  # because you bought X
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
