"""Product categories as integer codes aligned with a training history's product columns.

The blend family re-ranks popularity by the customer's own categories; the catalogue's
categories come from ``marts.dim_products`` (given, or inferred by the product-text step).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from ml.warehouse import connect
from ml.warehouse.tables import table_exists


def category_codes(product_ids: np.ndarray, categories: pl.DataFrame | None) -> np.ndarray | None:
    """Integer category code of each product id (``-1``: none); None without categories."""
    if categories is None or categories.height == 0:
        return None
    frame = pl.DataFrame({"product_id": np.asarray(product_ids).astype(str)})
    joined = frame.join(
        categories.select(
            pl.col("product_id").cast(pl.String), pl.col("category").cast(pl.String)
        ).unique("product_id", keep="first"),
        on="product_id",
        how="left",
        maintain_order="left",
    )
    names = joined["category"]
    known = sorted(v for v in names.unique().to_list() if v is not None)
    if not known:
        return None
    lookup = {name: code for code, name in enumerate(known)}
    return np.array([lookup.get(v, -1) for v in names.to_list()], dtype=np.int64)


def load_product_categories(
    warehouse: Path | str | None = None, *, table: str = "marts.dim_products"
) -> pl.DataFrame | None:
    """Read ``product_id, category`` of the catalogue, or None when there are none."""
    with connect(warehouse, read_only=True) as con:
        if not table_exists(con, *table.split(".")):
            return None
        arrow = con.sql(
            "SELECT CAST(product_id AS VARCHAR) AS product_id, "
            f"CAST(category AS VARCHAR) AS category FROM {table} "
            "WHERE category IS NOT NULL ORDER BY product_id"
        ).to_arrow_table()
    frame = pl.from_arrow(arrow)
    return frame if frame.height else None
