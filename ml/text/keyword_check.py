"""Keyword check of a product grouping: do products of one kind land in a group of their own?

Issue 15's ten keyword groups (Christmas, bags, candles/lights, mugs, cards/wrap,
jewellery, cake/baking, signs, cushions, frames) are matched on product names
(:data:`KEYWORD_GROUPS`). For each keyword group K, with ``P_K`` the products whose name
matches and ``c*`` the category holding most of them:

``purity``
    ``|P_K in c*| / |c*|``: how much of the keyword's main category is that kind of
    product. A catch-all group scores low; this is the figure the target is set on.
``recall``
    ``|P_K in c*| / |P_K|``: how much of the keyword's products that one category holds
    (a taxonomy with "Lunch bags" and "Jumbo bags" splits bags over several groups, so
    this is low by design; reported, not targeted).
``concentration``
    Share of ``P_K`` in categories where K-products are the majority: the keyword's
    products that sit in *some* category about them.

The same function scores any grouping (k-means clusters too), so references and the
taxonomy are compared on one definition.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

KEYWORD_GROUPS: dict[str, str] = {
    "christmas": r"\b(christmas|xmas)\b",
    "bags": r"\bbags?\b",
    "candles/lights": r"\b(candles?|t-lights?|tea ?lights?|lights?)\b",
    "mugs": r"\bmugs?\b",
    "cards/wrap": r"\b(cards?|wrap|wrapping)\b",
    "jewellery": r"\b(necklaces?|neckl|bracelets?|earrings?|rings?|bangles?|brooch(es)?|pendants?|jewellery)\b",
    "cake/baking": r"\b(cakes?|cupcakes?|baking|bake)\b",
    "signs": r"\bsigns?\b",
    "cushions": r"\bcushions?\b",
    "frames": r"\bframes?\b",
}


def keyword_matches(names: list[str], pattern: str) -> np.ndarray:
    """Boolean mask of names (case-insensitive) matching ``pattern``."""
    compiled = re.compile(pattern, re.IGNORECASE)
    return np.array([bool(compiled.search(name or "")) for name in names], dtype=bool)


def keyword_purity(
    names: list[str], groups: np.ndarray | list, keyword_groups: dict[str, str] | None = None
) -> pl.DataFrame:
    """Purity, recall and concentration of each keyword group under a grouping.

    Parameters
    ----------
    names : list of str
        Product names.
    groups : array-like
        Group label of each product (any hashable values; same order as ``names``).
    keyword_groups : dict, optional
        Keyword group -> regex (default :data:`KEYWORD_GROUPS`).

    Returns
    -------
    polars.DataFrame
        ``keyword_group, products, main_group, main_group_size, purity, recall,
        concentration``; groups with no matching product are left out.
    """
    keyword_groups = keyword_groups or KEYWORD_GROUPS
    labels = pl.Series("group", list(groups)).cast(pl.String).to_numpy().astype(str)
    if len(labels) != len(names):
        raise ValueError(f"{len(labels)} group labels for {len(names)} names")
    unique, codes = np.unique(labels, return_inverse=True)
    sizes = np.bincount(codes, minlength=len(unique))
    rows = []
    for keyword, pattern in keyword_groups.items():
        match = keyword_matches(names, pattern)
        total = int(match.sum())
        if total == 0:
            continue
        hits = np.bincount(codes[match], minlength=len(unique))
        # Ties: the smaller group (then the first label) is the keyword's main group.
        main = int(np.lexsort((np.arange(len(unique)), sizes, -hits))[0])
        majority = hits * 2 > sizes
        rows.append(
            {
                "keyword_group": keyword,
                "products": total,
                "main_group": str(unique[main]),
                "main_group_size": int(sizes[main]),
                "purity": hits[main] / sizes[main],
                "recall": hits[main] / total,
                "concentration": hits[majority].sum() / total,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "keyword_group": pl.String,
            "products": pl.Int64,
            "main_group": pl.String,
            "main_group_size": pl.Int64,
            "purity": pl.Float64,
            "recall": pl.Float64,
            "concentration": pl.Float64,
        },
    )
