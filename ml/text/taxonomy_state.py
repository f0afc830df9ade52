"""The taxonomy's shared pieces: config, state, inputs, group similarity, the result.

See :mod:`ml.text.taxonomy` for the rules; :mod:`ml.text.taxonomy_build` builds groups and
:mod:`ml.text.taxonomy_update` carries them forward.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from ml.text.embeddings import EMBEDDING_DIM, normalise_rows, product_text, text_keys
from ml.text.taxonomy_terms import TypenessModel, heads_by_typeness

GIVEN = "given"
INFERRED = "inferred"
# Category values that mean "no category" (compared lower-cased, stripped).
MISSING_CATEGORY = frozenset(
    {"", "uncategorized", "uncategorised", "unknown", "none", "n/a", "null"}
)


class Method:
    """How a product's category was decided: the values of ``category_method``."""

    GIVEN = "given"
    KEPT = "kept"  # unchanged text, category carried from the previous night
    HEAD = "head noun"
    OTHER_HEAD = "other head noun"  # its own head has no group; another noun's does
    NEAREST = "nearest group"
    SPLIT = "size split"


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


@dataclass
@dataclass
class Inputs:
    ids: np.ndarray
    names: list[str]
    given: list[str | None]
    active: np.ndarray
    text_sha: list[str]
    text: np.ndarray
    factors: np.ndarray | None
    has_factors: np.ndarray

    @classmethod
    def of(cls, products: pl.DataFrame, text_vectors, item_factors) -> Inputs:
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


@dataclass
@dataclass
class Groups:
    """Categories under construction: keys, names, sources and member rows."""

    keys: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add(self, key: str, name: str, source: str) -> int:
        self.keys.append(key)
        self.names.append(name)
        self.sources.append(source)
        return len(self.keys) - 1


def centroids(vectors: np.ndarray, assigned: np.ndarray, n_groups: int, mask=None):
    """Unit mean vector of each group's members (rows with ``mask``), zero when none."""
    use = assigned >= 0 if mask is None else (assigned >= 0) & mask
    sums = np.zeros((n_groups, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, assigned[use], vectors[use])
    return normalise_rows(sums.astype(np.float32))


def similarity(inputs: Inputs, rows, text_c, factor_c, weight: float) -> np.ndarray:
    """Hybrid cosine of ``rows`` to each group: text, blended with factors where both have."""
    sim = inputs.text[rows] @ text_c.T
    if inputs.factors is not None and factor_c is not None and weight > 0:
        both = inputs.has_factors[rows][:, None] & (np.linalg.norm(factor_c, axis=1) > 0)[None, :]
        factor_sim = inputs.factors[rows] @ factor_c.T
        sim = np.where(both, (1 - weight) * sim + weight * factor_sim, sim)
    return sim


def nearest(sim: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """Best group per row (ties: lowest index); ``allowed`` masks groups without room."""
    if allowed is not None:
        sim = np.where(allowed, sim, -np.inf)
    return np.argmax(sim, axis=1)


def groups_by_head(groups: Groups) -> dict[str, list[int]]:
    """Inferred groups by the head noun of their key ("t-light holder" -> "holder")."""
    out: dict[str, list[int]] = {}
    for g, (key, source) in enumerate(zip(groups.keys, groups.sources, strict=True)):
        if source == INFERRED and "#" not in key and key != "products":
            out.setdefault(key.split()[-1], []).append(g)
    return out


# A word must be the head of at least this share of its names to pull an orphan into its
# groups: type nouns (bag 0.5+, holder 0.9) do, motif words (heart, butterfly ~0.3) do not.
RELATED_HEAD_TYPENESS = 0.5


def related_groups(words, typeness, by_head, n_groups, allowed=None) -> np.ndarray | None:
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


def all_centroids(inputs: Inputs, assigned, n_groups):
    text_c = centroids(inputs.text, assigned, n_groups)
    factor_c = None
    if inputs.factors is not None:
        factor_c = centroids(inputs.factors, assigned, n_groups, inputs.has_factors)
    return text_c, factor_c


def size_cap(active_products: int, config: TaxonomyConfig) -> int:
    return max(config.min_group_size, int(config.max_group_share * active_products))


def stack_centroids(series: pl.Series, rows: int, dim: int) -> np.ndarray:
    """Centroid column -> ``(rows, dim)`` float32 (null -> zeros)."""
    out = np.zeros((rows, dim), dtype=np.float32)
    for i, value in enumerate(series.to_list()):
        if value is not None and len(value) == dim:
            out[i] = np.asarray(value, dtype=np.float32)
    return out


def finish(inputs, groups, assigned, method, typeness, config, model_version, carried):
    """The per-product frame and the state (centroids recomputed only on a rebuild)."""
    n_groups = len(groups.keys)
    ids = [
        category_id(k.removeprefix("given:"), s)
        for k, s in zip(groups.keys, groups.sources, strict=True)
    ]
    if carried is None:
        text_c, factor_c = all_centroids(inputs, assigned, n_groups)
    else:  # frozen between rebuilds; groups new tonight (given ones) get their members' mean
        old_text, old_factor, n_old = carried
        fresh_text, fresh_factor = all_centroids(inputs, assigned, n_groups)
        text_c = np.vstack([old_text, fresh_text[n_old:]])
        factor_c = None
        if fresh_factor is not None:
            old = (
                old_factor
                if old_factor is not None
                else np.zeros((n_old, fresh_factor.shape[1]), np.float32)
            )
            factor_c = np.vstack([old, fresh_factor[n_old:]])
    product_source = np.where(np.asarray(method) == Method.GIVEN, GIVEN, INFERRED)
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
