"""Inferred product categories: head-noun groups, stable from one night to the next.

Entry point: :func:`infer_categories` (pure: polars/numpy in, polars out, plus a
:class:`TaxonomyState` to carry to the next night). Per product it returns
``category_id`` (stable), ``category`` (a readable name), ``category_source`` (``given`` or
``inferred``) and ``category_method`` (how it was decided, for review).

Building (no previous state)
    * Products with a given category keep it (``given``). When given categories cover at
      least ``TaxonomyConfig.given_coverage`` of the catalogue, the others are classified
      into those categories (nearest centroid) rather than into new ones.
    * Otherwise the products without one are grouped by what they are
      (:mod:`ml.text.taxonomy_terms`): by head noun, split into compounds where a seasonal
      theme or a bound qualifier gives at least ``min_group_size`` members ("Christmas
      decorations", "Lunch bags", "T-light holders"). Groups smaller than
      ``min_group_size`` (or ``min_group_share`` of the catalogue) dissolve: their products
      (and products without a head noun) join the nearest group by hybrid similarity
      (text embedding cosine, blended with the co-purchase item-factor cosine, weight
      ``factor_weight``, where both sides have factors) -- among the groups of another
      type noun of their name when there are such ("KEY HOLDER" joins a holder group),
      else among all groups.
    * No group may hold more than ``max_group_share`` of the active products: a larger one
      is split by k-means on the same vectors (seeded) and each part named after its most
      distinctive word.

Nightly update (previous state given)
    * A product whose text hash is unchanged keeps its category.
    * A new or changed product gets its given category, else the group of its own
      head-noun key if that group exists and has room, else the nearest group with room
      (among its other type nouns' groups first, as above).
      Typeness, names, ids and centroids come from the state, so existing products never
      move. A rebuild (``previous=None``) re-derives everything; ids of groups whose key
      is unchanged stay the same (``category_id`` is a hash of the key).

The state persists as four plain tables (:meth:`TaxonomyState.to_frames`).
``category_method`` is one of ``given``, ``kept``, ``head noun``, ``other head noun``,
``nearest group``, ``size split``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import polars as pl

from ml.text.embeddings import EMBEDDING_DIM, MODEL_VERSION, normalise_rows, product_text, text_keys
from ml.text.taxonomy_terms import (
    ProductTerms,
    TypenessModel,
    bound_qualifiers,
    display_name,
    group_key,
    heads_by_typeness,
    learn_typeness,
    product_terms,
    tokens,
)

log = logging.getLogger(__name__)

GIVEN = "given"
INFERRED = "inferred"
# Category values that mean "no category" (compared lower-cased, stripped).
MISSING_CATEGORY = frozenset(
    {"", "uncategorized", "uncategorised", "unknown", "none", "n/a", "null"}
)

# How a product's category was decided (``category_method``).
METHOD_GIVEN = "given"
METHOD_KEPT = "kept"  # unchanged text, category carried from the previous night
METHOD_HEAD = "head noun"
METHOD_OTHER_HEAD = "other head noun"  # its own head has no group; another noun's does
METHOD_NEAREST = "nearest group"
METHOD_SPLIT = "size split"

CATEGORY_COLUMNS = {
    "product_id": pl.String,
    "category_id": pl.String,
    "category": pl.String,
    "category_source": pl.String,
    "category_method": pl.String,
}


@dataclass(frozen=True)
class TaxonomyConfig:
    """Rules of the inferred taxonomy.

    Parameters
    ----------
    min_group_size : int
        Smallest group a head noun or compound may form; smaller ones dissolve into the
        nearest group.
    min_group_share : float
        The same as a share of the products (the larger of the two applies), so a 50,000
        product catalogue gets groups of 50 or more rather than thousands of small ones.
    max_group_share : float
        No group holds more than this share of the active products.
    min_binding : float
        A qualifier forms a compound with a head when at least this share of the names
        containing it have it right before that head (see
        :func:`ml.text.taxonomy_terms.bound_qualifiers`).
    factor_weight : float
        Weight of the item-factor cosine in the hybrid similarity (text gets the rest)
        where both the product and the group have factors. 0.1 measured best on Online
        Retail (leave-one-out nearest-group accuracy 0.903 vs 0.889 text only, 0.883 at
        0.3; ``bench/results/product_text.md``).
    given_coverage : float
        When given categories cover at least this share of the products, the others are
        classified into the given categories instead of new ones.
    seed : int
        Seed of the k-means that splits oversized groups.
    """

    min_group_size: int = 8
    min_group_share: float = 0.001
    max_group_share: float = 0.10
    min_binding: float = 0.4
    factor_weight: float = 0.1
    given_coverage: float = 0.5
    seed: int = 0


@dataclass
class TaxonomyState:
    """What the next night needs: groups with centroids, assignments and word typeness.

    Attributes
    ----------
    model_version : str
        Embedding model of the text centroids (a different model needs a rebuild).
    categories : polars.DataFrame
        ``category_id, category, key, source, members, text_centroid`` (``Array(Float32,
        256)``) and ``factor_centroid`` (``List(Float32)``, null without factors).
    assignments : polars.DataFrame
        ``product_id, text_sha256, category_id, category_source, category_method``.
    typeness : polars.DataFrame
        ``word, typeness`` learnt at the last rebuild.
    prior : float
        Typeness of a word unseen at the last rebuild.
    active_products : int
        Active products at the last run (the size cap's base).
    """

    model_version: str
    categories: pl.DataFrame
    assignments: pl.DataFrame
    typeness: pl.DataFrame
    prior: float
    active_products: int = 0
    config: TaxonomyConfig = field(default_factory=TaxonomyConfig)

    def typeness_model(self) -> TypenessModel:
        return TypenessModel(dict(self.typeness.iter_rows()), self.prior)

    def to_frames(self) -> dict[str, pl.DataFrame]:
        """The state as four plain tables (e.g. ``ml.taxonomy_<name>`` in the warehouse)."""
        meta = pl.DataFrame(
            {
                "model_version": [self.model_version],
                "prior": [self.prior],
                "active_products": [self.active_products],
                "config": [json.dumps(asdict(self.config), sort_keys=True)],
            }
        )
        return {
            "categories": self.categories,
            "assignments": self.assignments,
            "typeness": self.typeness,
            "meta": meta,
        }

    @classmethod
    def from_frames(cls, frames: dict[str, pl.DataFrame]) -> TaxonomyState:
        """Rebuild a state from :meth:`to_frames` (read back from storage)."""
        meta = frames["meta"].row(0, named=True)
        categories = frames["categories"].with_columns(
            pl.col("text_centroid").cast(pl.Array(pl.Float32, EMBEDDING_DIM)),
            pl.col("factor_centroid").cast(pl.List(pl.Float32)),
        )
        return cls(
            model_version=meta["model_version"],
            categories=categories,
            assignments=frames["assignments"],
            typeness=frames["typeness"],
            prior=float(meta["prior"]),
            active_products=int(meta["active_products"]),
            config=TaxonomyConfig(**json.loads(meta["config"])),
        )


def category_id(key: str, source: str = INFERRED) -> str:
    """Stable id of a group: a hash of its source and key."""
    return "cat-" + hashlib.sha256(f"{source}:{key}".encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- entry point


def infer_categories(
    products: pl.DataFrame,
    text_vectors: np.ndarray,
    item_factors: np.ndarray | None = None,
    previous: TaxonomyState | None = None,
    config: TaxonomyConfig | None = None,
    model_version: str = MODEL_VERSION,
) -> tuple[pl.DataFrame, TaxonomyState]:
    """Categorise every product; build the taxonomy, or carry ``previous`` forward.

    Parameters
    ----------
    products : polars.DataFrame
        ``product_id``, ``name`` (or ``product_name``), optional ``description``,
        ``brand``, ``category`` (missing values: :data:`MISSING_CATEGORY`) and
        ``is_active`` (default true). Pass merchandise only (no postage or fee codes).
    text_vectors : numpy.ndarray
        ``(len(products), d)`` text embeddings in the same row order
        (:func:`ml.text.embeddings.embed_products`).
    item_factors : numpy.ndarray, optional
        ``(len(products), k)`` co-purchase item factors in the same row order; all-zero
        rows for products the recommender does not know.
    previous : TaxonomyState, optional
        Last night's state; ``None`` builds from scratch.
    config : TaxonomyConfig, optional
        Ignored when ``previous`` is given (the state's own config applies).
    model_version : str
        Version of the embeddings in ``text_vectors``.

    Returns
    -------
    categories : polars.DataFrame
        :data:`CATEGORY_COLUMNS`, one row per product, in input order.
    state : TaxonomyState
    """
    if "product_id" not in products.columns:
        raise ValueError("products needs a product_id column")
    if len(text_vectors) != products.height:
        raise ValueError(
            f"text_vectors has {len(text_vectors)} rows for {products.height} products: "
            "embed the same frame, in the same order"
        )
    if products["product_id"].is_duplicated().any():
        raise ValueError("product_id must be unique in products")
    inputs = _Inputs.of(products, text_vectors, item_factors)
    if previous is None:
        result, state = _build(inputs, config or TaxonomyConfig(), model_version)
    else:
        if previous.model_version != model_version:
            raise ValueError(
                f"the taxonomy state was built on {previous.model_version} embeddings, these "
                f"are {model_version}: rebuild it (previous=None)"
            )
        result, state = _update(inputs, previous)
    counts = Counter(result["category_method"].to_list())
    log.info(
        "categories: %d products in %d groups (%s)",
        result.height,
        result["category_id"].n_unique(),
        ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
    )
    return result, state


# --------------------------------------------------------------------------- inputs


@dataclass
class _Inputs:
    ids: np.ndarray
    names: list[str]
    given: list[str | None]
    active: np.ndarray
    text_sha: list[str]
    text: np.ndarray
    factors: np.ndarray | None
    has_factors: np.ndarray

    @classmethod
    def of(cls, products: pl.DataFrame, text_vectors, item_factors) -> _Inputs:
        name_col = "name" if "name" in products.columns else "product_name"
        names = products[name_col].cast(pl.String).fill_null("").to_list()
        if "category" in products.columns:
            raw = products["category"].cast(pl.String).to_list()
            given = [
                None if c is None or c.strip().lower() in MISSING_CATEGORY else c.strip()
                for c in raw
            ]
        else:
            given = [None] * products.height
        active = (
            products["is_active"].fill_null(True).to_numpy().astype(bool)
            if "is_active" in products.columns
            else np.ones(products.height, dtype=bool)
        )
        factors, has = None, np.zeros(products.height, dtype=bool)
        if item_factors is not None:
            if len(item_factors) != products.height:
                raise ValueError(
                    f"item_factors has {len(item_factors)} rows for {products.height} "
                    "products: align it with products (zero rows for unknown products)"
                )
            factors = normalise_rows(np.asarray(item_factors, dtype=np.float32))
            has = np.linalg.norm(factors, axis=1) > 0
        return cls(
            ids=products["product_id"].cast(pl.String).to_numpy().astype(str),
            names=names,
            given=given,
            active=active,
            text_sha=text_keys(product_text(products)).to_list(),
            text=normalise_rows(np.asarray(text_vectors, dtype=np.float32)),
            factors=factors,
            has_factors=has,
        )


# --------------------------------------------------------------------------- groups


@dataclass
class _Groups:
    """Categories under construction: keys, names, sources and member rows."""

    keys: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add(self, key: str, name: str, source: str) -> int:
        self.keys.append(key)
        self.names.append(name)
        self.sources.append(source)
        return len(self.keys) - 1


def _centroids(vectors: np.ndarray, assigned: np.ndarray, n_groups: int, mask=None):
    """Unit mean vector of each group's members (rows with ``mask``), zero when none."""
    use = assigned >= 0 if mask is None else (assigned >= 0) & mask
    sums = np.zeros((n_groups, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, assigned[use], vectors[use])
    return normalise_rows(sums.astype(np.float32))


def _similarity(inputs: _Inputs, rows, text_c, factor_c, weight: float) -> np.ndarray:
    """Hybrid cosine of ``rows`` to each group: text, blended with factors where both have."""
    sim = inputs.text[rows] @ text_c.T
    if inputs.factors is not None and factor_c is not None and weight > 0:
        both = inputs.has_factors[rows][:, None] & (np.linalg.norm(factor_c, axis=1) > 0)[None, :]
        factor_sim = inputs.factors[rows] @ factor_c.T
        sim = np.where(both, (1 - weight) * sim + weight * factor_sim, sim)
    return sim


def _nearest(sim: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """Best group per row (ties: lowest index); ``allowed`` masks groups without room."""
    if allowed is not None:
        sim = np.where(allowed, sim, -np.inf)
    return np.argmax(sim, axis=1)


def _build(inputs: _Inputs, config: TaxonomyConfig, model_version: str):
    n = len(inputs.ids)
    groups = _Groups()
    assigned = np.full(n, -1, dtype=np.int64)
    method = np.full(n, METHOD_NEAREST, dtype=object)
    given_rows = np.array([g is not None for g in inputs.given], dtype=bool)
    # Given categories first: they are kept as they are.
    given_index: dict[str, int] = {}
    for row in np.flatnonzero(given_rows):
        name = inputs.given[row]
        if name not in given_index:
            given_index[name] = groups.add(f"given:{name}", name, GIVEN)
        assigned[row] = given_index[name]
        method[row] = METHOD_GIVEN
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
    text_c, factor_c = _all_centroids(inputs, assigned, len(groups.keys))
    orphans = np.flatnonzero(assigned < 0)
    if len(orphans) and len(groups.keys):
        sim = _similarity(inputs, orphans, text_c, factor_c, config.factor_weight)
        by_head = _groups_by_head(groups)
        for i, row in enumerate(orphans):
            related = _related_groups(word_lists[row], typeness, by_head, len(groups.keys))
            assigned[row] = _nearest(sim[i : i + 1], related)[0]
            method[row] = METHOD_OTHER_HEAD if related is not None else METHOD_NEAREST
    elif len(orphans):  # nothing to join: one group named after the catalogue
        assigned[orphans] = groups.add("products", "Products", INFERRED)
    _split_oversized(inputs, groups, assigned, method, effective, typeness)
    return _finish(inputs, groups, assigned, method, typeness, config, model_version, None)


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
        method[row] = METHOD_HEAD


def _groups_by_head(groups: _Groups) -> dict[str, list[int]]:
    """Inferred groups by the head noun of their key ("t-light holder" -> "holder")."""
    out: dict[str, list[int]] = {}
    for g, (key, source) in enumerate(zip(groups.keys, groups.sources, strict=True)):
        if source == INFERRED and "#" not in key and key != "products":
            out.setdefault(key.split()[-1], []).append(g)
    return out


# A word must be the head of at least this share of its names to pull an orphan into its
# groups: type nouns (bag 0.5+, holder 0.9) do, motif words (heart, butterfly ~0.3) do not.
RELATED_HEAD_TYPENESS = 0.5


def _related_groups(words, typeness, by_head, n_groups, allowed=None) -> np.ndarray | None:
    """Mask of the groups of the most type-like head noun in ``words`` that has groups."""
    for head in heads_by_typeness(words, typeness):
        if typeness.score(head) < RELATED_HEAD_TYPENESS:
            break
        mask = np.zeros(n_groups, dtype=bool)
        mask[by_head.get(head, [])] = True
        if allowed is not None:
            mask &= allowed
        if mask.any():
            return mask[None, :]
    return None


def _compound(t: ProductTerms, theme_counts, bound_counts, min_size) -> tuple[str | None, str]:
    """The product's group key: theme compound, else bound compound, else the head alone."""
    if t.theme and theme_counts[(t.theme, t.head)] >= min_size:
        return (t.theme, t.head)
    if t.left and bound_counts[(t.left, t.head)] >= min_size:
        return (t.left, t.head)
    return (None, t.head)


def _all_centroids(inputs: _Inputs, assigned, n_groups):
    text_c = _centroids(inputs.text, assigned, n_groups)
    factor_c = None
    if inputs.factors is not None:
        factor_c = _centroids(inputs.factors, assigned, n_groups, inputs.has_factors)
    return text_c, factor_c


def _cap(active_products: int, config: TaxonomyConfig) -> int:
    return max(config.min_group_size, int(config.max_group_share * active_products))


def _split_oversized(inputs, groups, assigned, method, config, typeness) -> None:
    """Split inferred groups over the size cap by seeded k-means on the hybrid vectors."""
    from sklearn.cluster import KMeans

    cap = _cap(int(inputs.active.sum()), config)
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
            method[rows] = METHOD_SPLIT
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


# --------------------------------------------------------------------------- update


def _update(inputs: _Inputs, previous: TaxonomyState):
    config = previous.config
    cats = previous.categories
    groups = _Groups(
        keys=cats["key"].to_list(),
        names=cats["category"].to_list(),
        sources=cats["source"].to_list(),
    )
    ids = cats["category_id"].to_list()
    n = len(inputs.ids)
    assigned = np.full(n, -1, dtype=np.int64)
    method = np.full(n, METHOD_NEAREST, dtype=object)
    # Unchanged products keep their category (and how it was decided).
    position = {cid: i for i, cid in enumerate(ids)}
    before = pl.DataFrame({"product_id": inputs.ids, "text_sha256": inputs.text_sha}).join(
        previous.assignments, on=["product_id", "text_sha256"], how="left", maintain_order="left"
    )
    for row, (cid, how) in enumerate(before.select("category_id", "category_method").iter_rows()):
        if cid is not None and cid in position:
            assigned[row] = position[cid]
            method[row] = how if how == METHOD_GIVEN else METHOD_KEPT
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
        method[row] = METHOD_GIVEN
    # The rest: own head-noun group if it exists and has room, else the nearest with room.
    n_old = len(ids)
    text_c = _stack(cats["text_centroid"], n_old, EMBEDDING_DIM)
    factor_c = None
    if inputs.factors is not None:
        factor_c = _stack(cats["factor_centroid"], n_old, inputs.factors.shape[1])
    active_total = max(int(inputs.active.sum()), previous.active_products)
    cap = _cap(active_total, config)
    sizes = np.bincount(
        assigned[assigned >= 0], weights=inputs.active[assigned >= 0], minlength=len(groups.keys)
    ).astype(np.int64)
    open_rows = np.flatnonzero(assigned < 0)
    typeness = previous.typeness_model()
    inferred = np.array([s == INFERRED for s in groups.sources[:n_old]], dtype=bool)
    has_inferred = bool(inferred.any())
    by_head = _groups_by_head(groups)
    for row in open_rows:
        words = tokens(inputs.names[row])
        terms = product_terms(words, typeness)
        target = -1
        if terms.head is not None and has_inferred:
            for qualifier in (terms.theme, terms.left, None):
                g = key_index.get(group_key(qualifier, terms.head), -1)
                if 0 <= g < n_old and inferred[g] and sizes[g] < cap:
                    target = g
                    method[row] = METHOD_HEAD
                    break
        if target < 0 and n_old:
            sim = _similarity(inputs, np.array([row]), text_c, factor_c, config.factor_weight)
            # Inferred groups with room; when the taxonomy is the given one, any given group.
            allowed = inferred & (sizes[:n_old] < cap) if has_inferred else ~inferred
            if not allowed.any():
                allowed = inferred if has_inferred else ~inferred
            related = _related_groups(words, typeness, by_head, n_old, allowed)
            target = int(_nearest(sim, related if related is not None else allowed[None, :])[0])
            method[row] = METHOD_OTHER_HEAD if related is not None else METHOD_NEAREST
        if target < 0:  # no group to join at all
            if "products" not in key_index:
                key_index["products"] = groups.add("products", "Products", INFERRED)
            target = key_index["products"]
        assigned[row] = target
        if target >= len(sizes):
            sizes = np.append(sizes, np.zeros(target + 1 - len(sizes), dtype=np.int64))
        sizes[target] += int(inputs.active[row])
    return _finish(
        inputs,
        groups,
        assigned,
        method,
        typeness,
        config,
        previous.model_version,
        (text_c, factor_c, n_old),
    )


def _stack(series: pl.Series, rows: int, dim: int) -> np.ndarray:
    """Centroid column -> ``(rows, dim)`` float32 (null -> zeros)."""
    out = np.zeros((rows, dim), dtype=np.float32)
    for i, value in enumerate(series.to_list()):
        if value is not None and len(value) == dim:
            out[i] = np.asarray(value, dtype=np.float32)
    return out


# --------------------------------------------------------------------------- result


def _finish(inputs, groups, assigned, method, typeness, config, model_version, carried):
    """The per-product frame and the state (centroids recomputed only on a rebuild)."""
    n_groups = len(groups.keys)
    ids = [
        category_id(k.removeprefix("given:"), s)
        for k, s in zip(groups.keys, groups.sources, strict=True)
    ]
    if carried is None:
        text_c, factor_c = _all_centroids(inputs, assigned, n_groups)
    else:  # frozen between rebuilds; groups new tonight (given ones) get their members' mean
        old_text, old_factor, n_old = carried
        fresh_text, fresh_factor = _all_centroids(inputs, assigned, n_groups)
        text_c = np.vstack([old_text, fresh_text[n_old:]])
        factor_c = None
        if fresh_factor is not None:
            old = (
                old_factor
                if old_factor is not None
                else np.zeros((n_old, fresh_factor.shape[1]), np.float32)
            )
            factor_c = np.vstack([old, fresh_factor[n_old:]])
    product_source = np.where(np.asarray(method) == METHOD_GIVEN, GIVEN, INFERRED)
    result = pl.DataFrame(
        {
            "product_id": inputs.ids,
            "category_id": np.array(ids, dtype=object)[assigned],
            "category": np.array(groups.names, dtype=object)[assigned],
            "category_source": product_source,
            "category_method": np.asarray(method, dtype=object),
        },
        schema=CATEGORY_COLUMNS,
    )
    members = np.bincount(assigned, minlength=n_groups)
    categories = pl.DataFrame(
        {
            "category_id": ids,
            "category": groups.names,
            "key": groups.keys,
            "source": groups.sources,
            "members": members.astype(np.int64),
            "text_centroid": pl.Series(text_c, dtype=pl.Array(pl.Float32, text_c.shape[1])),
            "factor_centroid": pl.Series(
                [None] * n_groups if factor_c is None else [row.tolist() for row in factor_c],
                dtype=pl.List(pl.Float32),
            ),
        }
    )
    assignments = pl.DataFrame({"product_id": inputs.ids, "text_sha256": inputs.text_sha}).hstack(
        result.select("category_id", "category_source", "category_method")
    )
    state = TaxonomyState(
        model_version=model_version,
        categories=categories,
        assignments=assignments.sort("product_id"),
        typeness=pl.DataFrame(
            {"word": list(typeness.typeness), "typeness": list(typeness.typeness.values())},
            schema={"word": pl.String, "typeness": pl.Float64},
        ),
        prior=typeness.prior,
        active_products=int(inputs.active.sum()),
        config=config,
    )
    return result, state
