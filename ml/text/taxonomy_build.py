"""Building the taxonomy from scratch: head-noun groups, orphans, the size cap.

See :mod:`ml.text.taxonomy` for the rules.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import replace

import numpy as np

from ml.text.taxonomy_state import (
    GIVEN,
    INFERRED,
    Groups,
    Inputs,
    Method,
    TaxonomyConfig,
    all_centroids,
    finish,
    groups_by_head,
    nearest,
    related_groups,
    similarity,
    size_cap,
)
from ml.text.taxonomy_terms import (
    ProductTerms,
    bound_qualifiers,
    display_name,
    group_key,
    learn_typeness,
    product_terms,
    tokens,
)

log = logging.getLogger(__name__)


def build(inputs: Inputs, config: TaxonomyConfig, model_version: str):
    n = len(inputs.ids)
    groups = Groups()
    assigned = np.full(n, -1, dtype=np.int64)
    method = np.full(n, Method.NEAREST, dtype=object)
    given_rows = np.array([g is not None for g in inputs.given], dtype=bool)
    # Given categories first: they are kept as they are.
    given_index: dict[str, int] = {}
    for row in np.flatnonzero(given_rows):
        name = inputs.given[row]
        if name not in given_index:
            given_index[name] = groups.add(f"given:{name}", name, GIVEN)
        assigned[row] = given_index[name]
        method[row] = Method.GIVEN
    word_lists = [tokens(name) for name in inputs.names]
    typeness = learn_typeness(word_lists)
    missing = np.flatnonzero(~given_rows)
    classify_into_given = n and given_rows.mean() >= config.given_coverage
    effective = replace(
        config,
        min_group_size=max(config.min_group_size, math.ceil(config.min_group_share * n)),
    )
    if len(missing) and not classify_into_given:
        _head_noun_groups(
            inputs, word_lists, typeness, missing, groups, assigned, method, effective
        )
    # Everything still unassigned joins the nearest group (given or inferred) -- among
    # the groups of another head noun of its name when there are such groups.
    text_c, factor_c = all_centroids(inputs, assigned, len(groups.keys))
    orphans = np.flatnonzero(assigned < 0)
    if len(orphans) and len(groups.keys):
        sim = similarity(inputs, orphans, text_c, factor_c, config.factor_weight)
        by_head = groups_by_head(groups)
        for i, row in enumerate(orphans):
            related = related_groups(word_lists[row], typeness, by_head, len(groups.keys))
            assigned[row] = nearest(sim[i : i + 1], related)[0]
            method[row] = Method.OTHER_HEAD if related is not None else Method.NEAREST
    elif len(orphans):  # nothing to join: one group named after the catalogue
        assigned[orphans] = groups.add("products", "Products", INFERRED)
    _split_oversized(inputs, groups, assigned, method, effective, typeness)
    return finish(inputs, groups, assigned, method, typeness, config, model_version, None)


def _head_noun_groups(inputs, word_lists, typeness, rows, groups, assigned, method, config):
    """Group ``rows`` by head noun / compound key; keys below the minimum stay unassigned."""
    terms = {int(r): product_terms(word_lists[r], typeness) for r in rows}
    bound = bound_qualifiers(
        list(terms.values()),
        [word_lists[r] for r in rows],
        typeness,
        min_binding=config.min_binding,
    )
    theme_counts = Counter((t.theme, t.head) for t in terms.values() if t.head and t.theme)
    bound_counts = Counter(
        (t.left, t.head) for t in terms.values() if t.head and (t.left, t.head) in bound
    )
    keys: dict[int, tuple[str | None, str]] = {}
    for row, t in terms.items():
        if t.head is None:
            continue
        keys[row] = _compound(t, theme_counts, bound_counts, config.min_group_size)
    sizes = Counter(keys.values())
    index: dict[tuple[str | None, str], int] = {}
    for row in sorted(keys):
        key = keys[row]
        if sizes[key] < config.min_group_size:
            continue
        if key not in index:
            index[key] = groups.add(group_key(*key), display_name(*key), INFERRED)
        assigned[row] = index[key]
        method[row] = Method.HEAD


def _compound(t: ProductTerms, theme_counts, bound_counts, min_size) -> tuple[str | None, str]:
    """The product's group key: theme compound, else bound compound, else the head alone."""
    if t.theme and theme_counts[(t.theme, t.head)] >= min_size:
        return (t.theme, t.head)
    if t.left and bound_counts[(t.left, t.head)] >= min_size:
        return (t.left, t.head)
    return (None, t.head)


def _split_oversized(inputs, groups, assigned, method, config, typeness) -> None:
    """Split inferred groups over the size cap by seeded k-means on the hybrid vectors."""
    from sklearn.cluster import KMeans

    cap = size_cap(int(inputs.active.sum()), config)
    for g in range(len(groups.keys)):
        members = np.flatnonzero(assigned == g)
        active_members = int(inputs.active[members].sum())
        if groups.sources[g] != INFERRED or active_members <= cap:
            continue
        parts = int(np.ceil(active_members / cap)) + 1  # +1: k-means parts are uneven
        vectors = inputs.text[members]
        if inputs.factors is not None:
            w = config.factor_weight
            vectors = np.hstack([np.sqrt(1 - w) * vectors, np.sqrt(w) * inputs.factors[members]])
        labels = KMeans(parts, n_init=4, random_state=config.seed).fit_predict(vectors)
        base_key, base_name = groups.keys[g], groups.names[g]
        for part in range(parts):
            rows = members[labels == part]
            label = _distinctive_word(rows, members, inputs, base_key, part, typeness)
            target = g if part == 0 else groups.add(f"{base_key}#{label}", "", INFERRED)
            groups.keys[target] = f"{base_key}#{label}"
            groups.names[target] = f"{base_name} ({label})"
            assigned[rows] = target
            method[rows] = Method.SPLIT
        log.info("group %r over the cap of %d: split in %d", base_name, cap, parts)


def _distinctive_word(rows, members, inputs, base_key, part, typeness) -> str:
    """The qualifier most over-represented in ``rows`` against the whole group.

    Only words standing right before a member's head count (sub-types: "lunch" bags), so a
    part is never named after a colour or a motif; without one the part is numbered.
    """

    def qualifiers(r: int) -> set[str]:
        left = product_terms(tokens(inputs.names[r]), typeness).left
        return {left} if left else set()

    inside = Counter(w for r in rows for w in qualifiers(r))
    overall = Counter(w for r in members for w in qualifiers(r))
    excluded = set(base_key.split())
    scored = [
        (inside[w] / len(rows) - overall[w] / len(members), w) for w in inside if w not in excluded
    ]
    best = max(scored) if scored else None
    return best[1] if best and best[0] > 0 else f"part {part + 1}"
