"""The real Online Retail II file as the product-text tests see it (imported once per session).

Import the fixture into a test module: ``from product_text_data import retail  # noqa: F401``.
Missing data skips locally and fails under ``CI=true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import ONLINE_RETAIL_CSV, shared_data

from ml.ingest.importers.online_retail import import_online_retail
from ml.text.embeddings import embed_products
from ml.text.evaluation import ItemFactors, fit_item_factors, purchases


@dataclass
class RetailCatalog:
    """Merchandise products, purchases, text vectors and item factors of Online Retail II."""

    products: pl.DataFrame  # contract products, merchandise with a name, sorted by id
    orders: pl.DataFrame
    order_lines: pl.DataFrame
    bought: pl.DataFrame  # ml.text.evaluation.purchases
    vectors: np.ndarray  # aligned with products
    factors: ItemFactors  # aligned with products

    @property
    def product_ids(self) -> np.ndarray:
        return self.products["product_id"].to_numpy().astype(str)


def require_online_retail() -> Path:
    """The file's path; skip without it, except under CI where it must be there."""
    return shared_data(ONLINE_RETAIL_CSV)


@pytest.fixture(scope="session")
def retail(tmp_path_factory: pytest.TempPathFactory) -> RetailCatalog:
    """Online Retail II imported into the input contract, embedded, with ALS factors."""
    source = require_online_retail()
    landing = tmp_path_factory.mktemp("online_retail_landing")
    import_online_retail(source, landing)
    products = (
        pl.read_parquet(landing / "products.parquet")
        .filter(pl.col("is_product") & pl.col("name").is_not_null())
        .sort("product_id")
    )
    orders = pl.read_parquet(landing / "orders.parquet")
    order_lines = pl.read_parquet(landing / "order_lines.parquet")
    bought = purchases(orders, order_lines)
    vectors, _, _ = embed_products(products)
    factors = fit_item_factors(bought, products["product_id"].to_numpy())
    return RetailCatalog(products, orders, order_lines, bought, vectors, factors)
