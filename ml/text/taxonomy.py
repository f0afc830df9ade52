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
      is split by k-means on the same vectors (seeded) and each part named after the
      qualifier most over-represented in it ("Bags (tote)"), else numbered.

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

import logging
from collections import Counter

import numpy as np
import polars as pl

from ml.text.embeddings import MODEL_VERSION
from ml.text.taxonomy_build import build
from ml.text.taxonomy_state import (
    CATEGORY_COLUMNS,
    GIVEN,
    INFERRED,
    MISSING_CATEGORY,
    Inputs,
    Method,
    TaxonomyConfig,
    TaxonomyState,
    category_id,
)
from ml.text.taxonomy_update import update

__all__ = [
    "CATEGORY_COLUMNS",
    "GIVEN",
    "INFERRED",
    "Method",
    "MISSING_CATEGORY",
    "TaxonomyConfig",
    "TaxonomyState",
    "category_id",
    "infer_categories",
]

log = logging.getLogger(__name__)


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
    inputs = Inputs.of(products, text_vectors, item_factors)
    if previous is None:
        result, state = build(inputs, config or TaxonomyConfig(), model_version)
    else:
        if previous.model_version != model_version:
            raise ValueError(
                f"the taxonomy state was built on {previous.model_version} embeddings, these "
                f"are {model_version}: rebuild it (previous=None)"
            )
        result, state = update(inputs, previous)
    counts = Counter(result["category_method"].to_list())
    log.info(
        "categories: %d products in %d groups (%s)",
        result.height,
        result["category_id"].n_unique(),
        ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
    )
    return result, state
