"""The ``product_text`` stage: embeddings of every product's text and inferred categories.

Runs right after the ingest, before the dbt features: ``dim_products`` takes its
categories from here, so it reads the typed input itself (``raw.products``, cleaned as
``stg_raw__products`` cleans it) and writes, in schema ``ml``:

* ``product_embeddings``: the embedding store (one row per distinct text, keyed by the
  sha256 of the text and the model version); only new or changed texts are embedded;
* ``product_categories``: per product and logical date, ``category_id``, ``category``,
  ``category_source`` (``given`` or ``inferred``) and how it was decided;
* ``taxonomy_categories`` / ``_assignments`` / ``_typeness`` / ``_meta``: the taxonomy
  state of each logical date. A run reads the state of the latest date *before* its own,
  so a re-run of a date gives the same categories, and a product keeps its category from
  one night to the next unless its text changes.

Co-purchase signal: a seeded truncated SVD of the customer x product purchase matrix of
the same input (no dependency on a model trained later in the pipeline).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from ml.dates import as_of_end, to_date
from ml.text.embeddings import STORE_SCHEMA, embed_products, empty_store
from ml.text.taxonomy import TaxonomyState, infer_categories
from ml.warehouse import connect
from ml.warehouse.frames import read_partition, replace_table, write_frame_partition
from ml.warehouse.tables import ML_SCHEMA, read_frame, table_exists

log = logging.getLogger(__name__)

EMBEDDINGS_TABLE = "product_embeddings"
CATEGORIES_TABLE = "product_categories"
STATE_TABLES = ("categories", "assignments", "typeness", "meta")
# Dimensions of the co-purchase signal (enough to separate what is bought together).
COPURCHASE_FACTORS = 32
SEED = 42


@dataclass
class ProductTextReport:
    """What one ``product_text`` run did."""

    logical_date: date
    products: int
    embedded: int
    reused: int
    inferred: int
    categories: int
    rebuilt: bool
    seconds: float


def load_catalogue(con: duckdb.DuckDBPyConnection, logical_date: date) -> pl.DataFrame:
    """Merchandise with a name or description known by the end of the logical date."""
    return read_frame(
        con,
        """
        SELECT trim(product_id) AS product_id,
               nullif(trim(name), '') AS name,
               nullif(trim(description), '') AS description,
               nullif(trim(brand), '') AS brand,
               nullif(nullif(trim(category), ''), 'Uncategorized') AS category,
               coalesce(is_active, true) AS is_active
        FROM raw.products
        WHERE coalesce(is_product, true) AND (first_seen_at IS NULL OR first_seen_at < ?)
          -- Nothing to read: such a product keeps no category and is never suggested.
          AND coalesce(nullif(trim(name), ''), nullif(trim(description), '')) IS NOT NULL
        ORDER BY 1
        """,
        [as_of_end(logical_date)],
    )


def copurchase_factors(
    con: duckdb.DuckDBPyConnection, product_ids: list[str], logical_date: date
) -> np.ndarray | None:
    """Item vectors from a seeded truncated SVD of who bought what (None without sales).

    Rows follow ``product_ids``; products nobody bought get zero vectors.
    """
    pairs = read_frame(
        con,
        """
        SELECT DISTINCT trim(o.customer_id) AS customer_id, trim(l.product_id) AS product_id
        FROM raw.order_lines AS l
        JOIN raw.orders AS o USING (order_id)
        WHERE o.customer_id IS NOT NULL AND l.quantity > 0 AND o.status = 'placed'
          AND o.ordered_at < ?
        """,
        [as_of_end(logical_date)],
    )
    position = {product: i for i, product in enumerate(product_ids)}
    cols = np.array([position.get(p, -1) for p in pairs["product_id"].to_list()], dtype=np.int64)
    keep = cols >= 0
    customers, rows = np.unique(pairs["customer_id"].to_numpy()[keep], return_inverse=True)
    k = min(COPURCHASE_FACTORS, len(customers) - 1, len(product_ids) - 1)
    if k < 2:
        return None
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows, cols[keep])),
        shape=(len(customers), len(product_ids)),
    )
    start = np.random.default_rng(SEED).standard_normal(min(matrix.shape)).astype(np.float32)
    _, singular, item_vectors = svds(matrix.astype(np.float64), k=k, v0=start)
    order = np.argsort(-singular)
    vectors = (item_vectors[order].T * singular[order]).astype(np.float32)
    # An SVD's vectors are defined up to sign: fix it so the result is reproducible.
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(vectors.shape[1])])
    return vectors * np.where(signs == 0, 1, signs)


def load_state(con: duckdb.DuckDBPyConnection, logical_date: date) -> TaxonomyState | None:
    """The taxonomy of the latest date before ``logical_date`` (None: build one)."""
    frames = {}
    for name in STATE_TABLES:
        frame = read_partition(con, f"taxonomy_{name}", logical_date, before=True)
        if frame is None or frame.is_empty():
            return None
        frames[name] = frame
    return TaxonomyState.from_frames(frames)


def load_store(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    if not table_exists(con, ML_SCHEMA, EMBEDDINGS_TABLE):
        return empty_store()
    return read_frame(con, f"SELECT * FROM {ML_SCHEMA}.{EMBEDDINGS_TABLE}").cast(STORE_SCHEMA)


def understand_products(logical_date: date | str) -> ProductTextReport:
    """Embed new product texts and categorise every product as of ``logical_date``."""
    started = time.perf_counter()
    day = to_date(logical_date)
    with connect() as con:
        catalogue = load_catalogue(con, day)
        vectors, store, update = embed_products(catalogue, load_store(con))
        replace_table(con, EMBEDDINGS_TABLE, store)
        previous = load_state(con, day)
        factors = copurchase_factors(con, catalogue["product_id"].to_list(), day)
        categories, state = infer_categories(catalogue, vectors, factors, previous=previous)
        write_frame_partition(con, CATEGORIES_TABLE, categories, day)
        for name, frame in state.to_frames().items():
            write_frame_partition(con, f"taxonomy_{name}", frame, day)
    report = ProductTextReport(
        day,
        catalogue.height,
        update.embedded,
        update.reused,
        int((categories["category_source"] == "inferred").sum()),
        categories["category_id"].n_unique(),
        previous is None,
        time.perf_counter() - started,
    )
    log.info(
        "product text for %s: %d products (%d embedded, %d reused), %d inferred in %d "
        "categories (%s) in %.1fs",
        day,
        report.products,
        report.embedded,
        report.reused,
        report.inferred,
        report.categories,
        "taxonomy built" if report.rebuilt else "taxonomy carried forward",
        report.seconds,
    )
    return report
