"""Lists for customers the model cannot serve: popular in their segment, else country.

Customers with too little history (or unknown to the model) get the products most bought
in the last ``popularity_days`` by customers of the same RFM segment, else of the same
country, else by everyone, under the same filters as collaborative lists.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from ml.ids import IdIndex
from ml.serving.config import ScoreConfig
from ml.serving.inputs import ScoringInputs
from ml.serving.reasons import POPULAR_IN_COUNTRY, POPULAR_IN_SEGMENT, POPULAR_OVERALL
from ml.serving.topk import cap_per_category, feasible_cap


def cold_start_lists(
    positions: np.ndarray,
    inputs: ScoringInputs,
    eligible: np.ndarray,
    categories: np.ndarray,
    excluded: sp.csr_matrix,
    config: ScoreConfig,
):
    """Popular-in-segment (else country, else overall) lists for cold customers."""
    config = feasible_cap(config, categories[eligible])
    n = config.n
    product_index = IdIndex(inputs.products["product_id"].cast(pl.String).to_numpy().astype(str))
    popular = inputs.popular.with_columns(
        pl.Series("col", product_index.lookup(inputs.popular["product_id"]))
    ).filter(pl.col("col") >= 0)
    popular = popular.filter(pl.Series(eligible[popular["col"].to_numpy()]))
    # Deterministic ranking inside each group: buyers, then product id.
    popular = popular.sort(
        ["group_kind", "group_value", "buyers", "product_id"],
        descending=[False, False, True, False],
    )
    depth = max(5 * n, 50)
    groups = {
        (kind, value): frame["col"].to_numpy()[:depth]
        for (kind, value), frame in popular.group_by(
            ["group_kind", "group_value"], maintain_order=True
        )
    }
    overall = groups.get(("overall", ""), np.empty(0, dtype=np.int64))
    if len(overall) < depth:
        # Top up with eligible products nobody bought recently (stable order).
        rest = np.setdiff1d(np.flatnonzero(eligible), overall, assume_unique=False)
        overall = np.concatenate([overall, rest[: depth - len(overall)]])
    # Each cold customer's group: their RFM segment, else their country, else everyone.
    present = set(groups)
    segments = inputs.customers[positions]["segment"].cast(pl.String)
    countries = inputs.customers[positions]["country"].cast(pl.String)
    seg_ok = segments.is_in([v for k, v in present if k == "segment"]).fill_null(False)
    ctry_ok = countries.is_in([v for k, v in present if k == "country"]).fill_null(False)
    group_keys = (
        pl.DataFrame({"segment": segments, "country": countries, "s": seg_ok, "c": ctry_ok})
        .select(
            kind=pl.when("s")
            .then(pl.lit("segment"))
            .when("c")
            .then(pl.lit("country"))
            .otherwise(pl.lit("overall")),
            value=pl.when("s").then("segment").when("c").then("country").otherwise(pl.lit("")),
        )
        .with_row_index("i")
    )
    code_of = {
        "segment": POPULAR_IN_SEGMENT,
        "country": POPULAR_IN_COUNTRY,
        "overall": POPULAR_OVERALL,
    }
    out = []
    excluded = excluded[positions]
    for (kind, value), members in group_keys.group_by(["kind", "value"], maintain_order=True):
        local = members["i"].to_numpy()
        listing = groups.get((kind, value), overall)
        listing = np.concatenate([listing, overall[~np.isin(overall, listing)]])
        cand = np.broadcast_to(listing, (len(local), len(listing))).copy()
        # Per-customer exclusion: drop products bought within the window.
        ex = excluded[local]
        if ex.nnz:
            ex_keys = (
                np.repeat(np.arange(len(local)), np.diff(ex.indptr)) * len(eligible) + ex.indices
            )
            keys = np.arange(len(local))[:, None] * len(eligible) + cand
            cand = np.where(np.isin(keys, ex_keys), -1, cand)
        # Popularity score: share of the group's top product buyers (1.0 for the top one).
        score_row = np.linspace(1.0, 0.0, len(listing), endpoint=False, dtype=np.float32)
        scores = np.broadcast_to(score_row, cand.shape)
        # Compact exclusions out before capping so the rank order stays.
        order = np.argsort(cand < 0, axis=1, kind="stable")
        cand = np.take_along_axis(cand, order, axis=1)
        scores = np.take_along_axis(scores, order, axis=1)
        ids, kept, _ = cap_per_category(cand, scores, categories, n, config.max_per_category)
        filled = ids >= 0
        count = int(filled.sum())
        out.append(
            (
                positions[np.repeat(local, n).reshape(-1, n)[filled]],
                np.broadcast_to(np.arange(1, n + 1), ids.shape)[filled],
                ids[filled],
                kept[filled],
                np.full(count, code_of[kind], dtype=object),
                np.full(count, -1, dtype=np.int64),
                np.full(count, value if kind != "overall" else None, dtype=object),
            )
        )
    if not out:
        empty = np.empty(0, dtype=np.int64)
        return (
            empty,
            empty,
            empty,
            np.empty(0, np.float32),
            np.empty(0, object),
            empty,
            np.empty(0, object),
        )
    return tuple(np.concatenate([part[i] for part in out]) for i in range(7))
