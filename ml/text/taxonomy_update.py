"""Carrying the taxonomy to the next night: unchanged products keep their category.

See :mod:`ml.text.taxonomy` for the rules.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ml.text.embeddings import EMBEDDING_DIM
from ml.text.taxonomy_state import (
    GIVEN,
    INFERRED,
    Groups,
    Inputs,
    Method,
    TaxonomyState,
    finish,
    groups_by_head,
    nearest,
    related_groups,
    similarity,
    size_cap,
    stack_centroids,
)
from ml.text.taxonomy_terms import group_key, product_terms, tokens


def update(inputs: Inputs, previous: TaxonomyState):
    config = previous.config
    cats = previous.categories
    groups = Groups(
        keys=cats["key"].to_list(),
        names=cats["category"].to_list(),
        sources=cats["source"].to_list(),
    )
    ids = cats["category_id"].to_list()
    n = len(inputs.ids)
    assigned = np.full(n, -1, dtype=np.int64)
    method = np.full(n, Method.NEAREST, dtype=object)
    # Unchanged products keep their category (and how it was decided).
    position = {cid: i for i, cid in enumerate(ids)}
    before = pl.DataFrame({"product_id": inputs.ids, "text_sha256": inputs.text_sha}).join(
        previous.assignments, on=["product_id", "text_sha256"], how="left", maintain_order="left"
    )
    for row, (cid, how) in enumerate(before.select("category_id", "category_method").iter_rows()):
        if cid is not None and cid in position:
            assigned[row] = position[cid]
            method[row] = how if how == Method.GIVEN else Method.KEPT
    # Given categories of new or changed products (a new given category is added).
    key_index = {key: i for i, key in enumerate(groups.keys)}
    for row in np.flatnonzero(assigned < 0):
        name = inputs.given[row]
        if name is None:
            continue
        key = f"given:{name}"
        if key not in key_index:
            key_index[key] = groups.add(key, name, GIVEN)
        assigned[row] = key_index[key]
        method[row] = Method.GIVEN
    # The rest: own head-noun group if it exists and has room, else the nearest with room.
    n_old = len(ids)
    text_c = stack_centroids(cats["text_centroid"], n_old, EMBEDDING_DIM)
    factor_c = None
    if inputs.factors is not None:
        factor_c = stack_centroids(cats["factor_centroid"], n_old, inputs.factors.shape[1])
    active_total = max(int(inputs.active.sum()), previous.active_products)
    cap = size_cap(active_total, config)
    sizes = np.bincount(
        assigned[assigned >= 0], weights=inputs.active[assigned >= 0], minlength=len(groups.keys)
    ).astype(np.int64)
    open_rows = np.flatnonzero(assigned < 0)
    typeness = previous.typeness_model()
    inferred = np.array([s == INFERRED for s in groups.sources[:n_old]], dtype=bool)
    has_inferred = bool(inferred.any())
    by_head = groups_by_head(groups)
    for row in open_rows:
        words = tokens(inputs.names[row])
        terms = product_terms(words, typeness)
        target = -1
        if terms.head is not None and has_inferred:
            # The most specific group first: theme compound, bound compound, the head alone.
            qualifiers = [q for q in (terms.theme, terms.left) if q is not None] + [None]
            for qualifier in qualifiers:
                g = key_index.get(group_key(qualifier, terms.head), -1)
                if 0 <= g < n_old and inferred[g] and sizes[g] < cap:
                    target = g
                    method[row] = Method.HEAD
                    break
        if target < 0 and n_old:
            sim = similarity(inputs, np.array([row]), text_c, factor_c, config.factor_weight)
            # Inferred groups with room; when the taxonomy is the given one, any given group.
            allowed = inferred & (sizes[:n_old] < cap) if has_inferred else ~inferred
            if not allowed.any():
                allowed = inferred if has_inferred else ~inferred
            related = related_groups(words, typeness, by_head, n_old, allowed)
            target = int(nearest(sim, related if related is not None else allowed[None, :])[0])
            method[row] = Method.OTHER_HEAD if related is not None else Method.NEAREST
        if target < 0:  # no group to join at all
            if "products" not in key_index:
                key_index["products"] = groups.add("products", "Products", INFERRED)
            target = key_index["products"]
        assigned[row] = target
        if target >= len(sizes):
            sizes = np.append(sizes, np.zeros(target + 1 - len(sizes), dtype=np.int64))
        sizes[target] += int(inputs.active[row])
    return finish(
        inputs,
        groups,
        assigned,
        method,
        typeness,
        config,
        previous.model_version,
        (text_c, factor_c, n_old),
    )
