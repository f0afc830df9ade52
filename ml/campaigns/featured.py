"""The products a campaign features to each audience member, kept columnar.

A 1M-member audience with three products each used to be 3M Python dicts of five fields
(at 100M events, a 4-5 GB spike of the campaigns stage). :class:`FeaturedProducts` keeps
the rows as codes into the distinct products and reasons, and makes a member's dicts only
when the copy writer asks for them; the audience table's product lists are built in polars.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import polars as pl

from ml.campaigns.definitions import Campaign, category_key

# What each featured product carries (the copy writer's brief reads them).
FIELDS = ("product_id", "name", "reason", "category", "price")


class FeaturedProducts(Mapping[str, list[dict[str, Any]]]):
    """Customer id -> featured products (dicts of :data:`FIELDS`), in audience order.

    Parameters
    ----------
    customer_ids : list of str
        The audience, in its order (the mapping's keys).
    rows : polars.DataFrame
        ``customer_id, product_id, product_name, category, price, reason``: each featured
        row, grouped by customer in rank order.
    fallback : list of dict
        What a customer without rows features (the bestsellers).
    """

    def __init__(
        self, customer_ids: list[str], rows: pl.DataFrame, fallback: list[dict[str, Any]]
    ) -> None:
        self._customer_ids = customer_ids
        self._members = set(customer_ids)
        self._fallback = fallback
        counts = rows.group_by("customer_id", maintain_order=True).len()
        lengths = counts["len"].to_numpy()
        ends = np.cumsum(lengths)
        # Each customer's rows are rows[start:end].
        self._span = dict(
            zip(
                counts["customer_id"].to_list(),
                zip((ends - lengths).tolist(), ends.tolist(), strict=True),
                strict=True,
            )
        )
        products = rows.select("product_id", "product_name", "category", "price").unique(
            subset="product_id", keep="first", maintain_order=True
        )
        self._products = list(products.iter_rows())
        product_codes = pl.Enum(products["product_id"])
        self._product_of_row = rows["product_id"].cast(product_codes).to_physical().to_numpy()
        reasons = rows["reason"].drop_nulls().unique().sort()
        self._reasons = [*reasons.to_list(), None]  # the last code: no reason
        self._reason_of_row = (
            rows["reason"].cast(pl.Enum(reasons)).to_physical().fill_null(len(reasons)).to_numpy()
        )
        self._lists = rows.group_by("customer_id", maintain_order=True).agg(
            pl.col("product_id").alias("product_ids"), pl.col("product_name").alias("product_names")
        )

    def __getitem__(self, customer_id: str) -> list[dict[str, Any]]:
        if customer_id not in self._members:
            raise KeyError(customer_id)
        span = self._span.get(customer_id)
        if span is None:
            return self._fallback
        featured = []
        for row in range(*span):
            product_id, name, category, price = self._products[self._product_of_row[row]]
            reason = self._reasons[self._reason_of_row[row]]
            featured.append(
                {
                    "product_id": product_id,
                    "name": name,
                    "reason": reason,
                    "category": category,
                    "price": price,
                }
            )
        return featured

    def __iter__(self) -> Iterator[str]:
        return iter(self._customer_ids)

    def __len__(self) -> int:
        return len(self._customer_ids)

    def product_lists(self) -> pl.DataFrame:
        """``product_ids, product_names`` (lists of strings), one row per customer in order."""
        fallback_ids = [p["product_id"] for p in self._fallback]
        fallback_names = [p["name"] for p in self._fallback]
        lists = pl.DataFrame({"customer_id": self._customer_ids}, schema={"customer_id": pl.String})
        lists = lists.join(self._lists, on="customer_id", how="left", maintain_order="left")
        return lists.select(
            pl.col("product_ids").fill_null(_list_literal(fallback_ids)),
            pl.col("product_names").fill_null(_list_literal(fallback_names)),
        )


def _list_literal(values: list[str]) -> pl.Expr:
    return pl.lit(pl.Series([values], dtype=pl.List(pl.String)))


def featured_products(
    campaign: Campaign,
    customer_ids: list[str],
    recommendations: pl.DataFrame,
    bestsellers: pl.DataFrame,
    n: int,
) -> FeaturedProducts:
    """Top ``n`` products to feature per customer (campaign category only, if it has one).

    Customers without a matching recommendation get the bestsellers (of the category).
    """
    recs = recommendations.filter(pl.col("customer_id").is_in(customer_ids))
    best = bestsellers
    if campaign.category is not None:
        category = category_key(campaign.category)
        recs = recs.filter(category_key(pl.col("category")) == category)
        best = best.filter(category_key(pl.col("category")) == category)
    rows = (
        recs.sort("customer_id", "rank")
        .filter(pl.int_range(pl.len()).over("customer_id") < n)
        .select("customer_id", "product_id", "product_name", "category", "price", "reason")
    )
    reason = f"popular in {campaign.category}" if campaign.category else "popular right now"
    fallback = [
        {
            "product_id": r["product_id"],
            "name": r["product_name"],
            "reason": reason,
            "category": r["category"],
            "price": r["price"],
        }
        for r in best.head(n).iter_rows(named=True)
    ]
    return FeaturedProducts(customer_ids, rows, fallback)
