"""Evaluation helpers for the product-text models on a real order history.

Pure functions over the input contract's ``orders`` and ``order_lines`` frames (what
:mod:`ml.ingest.importers.online_retail` writes), used by ``bench/bench_product_text.py`` and
the tests:

* :func:`purchases` and :func:`fit_item_factors`: who bought what, and co-purchase item
  factors (implicit ALS) aligned with a product list;
* :func:`kmeans_reference` and :func:`tfidf_kmeans_reference`: the issue's reference
  groupings, to score against the taxonomy on one definition;
* :func:`new_product_hit_rate`: the time-split check of the cold-start rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp

from ml.text.content_neighbours import top_neighbours


def purchases(orders: pl.DataFrame, order_lines: pl.DataFrame) -> pl.DataFrame:
    """Customer purchases: placed orders' positive lines of known customers.

    Returns
    -------
    polars.DataFrame
        ``customer_id, product_id, ordered_at, quantity`` (one row per order line).
    """
    placed = orders.filter(
        (pl.col("status") == "placed") & pl.col("customer_id").is_not_null()
    ).select("order_id", "customer_id", "ordered_at")
    return (
        order_lines.filter(pl.col("quantity") > 0)
        .join(placed, on="order_id", how="inner")
        .select("customer_id", "product_id", "ordered_at", "quantity")
    )


@dataclass
class ItemFactors:
    """Co-purchase item factors aligned with a product list.

    Attributes
    ----------
    factors : numpy.ndarray
        ``(products, k)`` float32; zero rows for products nobody bought.
    buyers : numpy.ndarray
        Distinct buyers of each product.
    """

    factors: np.ndarray
    buyers: np.ndarray


def fit_item_factors(
    bought: pl.DataFrame,
    product_ids: np.ndarray,
    *,
    factors: int = 64,
    iterations: int = 15,
    regularization: float = 1.0,
    seed: int = 42,
) -> ItemFactors:
    """Implicit ALS on the customer x product matrix of distinct purchases.

    Confidence ``1 + log1p(lines)`` per pair, so a wholesaler's hundred lines do not
    drown everyone else. Deterministic for a seed (ALS solves each row independently).
    """
    from implicit.als import AlternatingLeastSquares

    product_ids = np.asarray(product_ids).astype(str)
    position = {pid: i for i, pid in enumerate(product_ids)}
    pairs = (
        bought.filter(pl.col("product_id").is_in(product_ids.tolist()))
        .group_by("customer_id", "product_id")
        .agg(pl.len().alias("lines"))
        .sort("customer_id", "product_id")
    )
    customers, customer_rows = np.unique(pairs["customer_id"].to_numpy(), return_inverse=True)
    cols = np.array([position[p] for p in pairs["product_id"].to_list()], dtype=np.int64)
    confidence = 1.0 + np.log1p(pairs["lines"].to_numpy().astype(np.float32))
    matrix = sp.csr_matrix(
        (confidence.astype(np.float32), (customer_rows, cols)),
        shape=(len(customers), len(product_ids)),
    )
    model = AlternatingLeastSquares(
        factors=factors,
        regularization=regularization,
        iterations=iterations,
        random_state=seed,
        num_threads=1,
    )
    model.fit(matrix, show_progress=False)
    item = np.asarray(model.item_factors, dtype=np.float32)
    buyers = np.diff(matrix.tocsc().indptr)
    item[buyers == 0] = 0.0
    return ItemFactors(item, buyers.astype(np.int64))


def kmeans_reference(vectors: np.ndarray, k: int = 25, seed: int = 0) -> np.ndarray:
    """The issue's reference: k-means with ``k`` clusters on (embedding) vectors."""
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=4, random_state=seed).fit_predict(vectors)


def tfidf_kmeans_reference(texts: list[str], k: int = 25, seed: int = 0) -> np.ndarray:
    """The issue's other reference: k-means on TF-IDF vectors of the names."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=4, random_state=seed).fit_predict(matrix)


@dataclass
class RuleEvaluation:
    """One targeting rule for new products, measured on the window's real buyers.

    Attributes
    ----------
    rule : str
        ``content neighbours``, ``random products`` or ``popular products``.
    hit_rate : float
        Share of (buyer, new product) pairs whose buyer had bought one of the rule's
        products for it before the window: how many real buyers the rule reaches.
    reach : float
        Customers reached per new product (bought one of its rule products before).
    precision : float
        Share of reached customers who bought the new product in the window.
    """

    rule: str
    hit_rate: float
    reach: float
    precision: float


@dataclass
class NewProductEvaluation:
    """Time-split check of the cold-start rule against random-product baselines.

    Attributes
    ----------
    new_products : int
        Products first sold in the window with at least one buyer known before it.
    pairs : int
        (buyer, new product) pairs in the window (buyers known before the window).
    base_rate : float
        Share of all customers active before the window who bought a given new product
        in it (what targeting everyone would convert).
    rules : list of RuleEvaluation
        Content neighbours first, then the baselines.
    """

    new_products: int
    pairs: int
    base_rate: float
    rules: list[RuleEvaluation]

    def rule(self, name: str) -> RuleEvaluation:
        return next(r for r in self.rules if r.rule == name)


def new_product_hit_rate(
    bought: pl.DataFrame,
    product_ids: np.ndarray,
    text_vectors: np.ndarray,
    *,
    window_days: int = 30,
    neighbours: int = 10,
    seed: int = 0,
) -> NewProductEvaluation:
    """Time-split check of the cold-start rule on a real order history.

    Products first sold in the last ``window_days`` days of ``bought`` are "new". Each
    gets its ``neighbours`` nearest products by text among those sold before the window
    (what the pipeline knew the day it launched). A (buyer, new product) pair is a hit
    when the buyer had bought one of those before the window. The baselines replace the
    neighbours by as many products drawn at random (uniformly, and weighted by buyers)
    from those sold before the window, with a fixed seed.

    Parameters
    ----------
    bought : polars.DataFrame
        :func:`purchases`.
    product_ids : numpy.ndarray
        Products, aligned with ``text_vectors``.
    text_vectors : numpy.ndarray
        Unit text embeddings.
    window_days, neighbours, seed : int
    """
    product_ids = np.asarray(product_ids).astype(str)
    index = {pid: i for i, pid in enumerate(product_ids)}
    bought = bought.filter(pl.col("product_id").is_in(product_ids.tolist()))
    end: datetime = bought["ordered_at"].max()
    cutoff = end - timedelta(days=window_days)
    first_sold = bought.group_by("product_id").agg(pl.col("ordered_at").min().alias("first"))
    new_ids = first_sold.filter(pl.col("first") >= cutoff)["product_id"].sort().to_list()
    old_ids = first_sold.filter(pl.col("first") < cutoff)["product_id"].sort().to_list()
    before = bought.filter(pl.col("ordered_at") < cutoff)
    window = bought.filter(pl.col("ordered_at") >= cutoff)
    new_rows = np.array([index[p] for p in new_ids], dtype=np.int64)
    old_rows = np.array([index[p] for p in old_ids], dtype=np.int64)
    ids, _ = top_neighbours(text_vectors, new_rows, old_rows, neighbours)
    # Who bought each old product before the window, and each new product in it.
    buyers_before = {
        index[p]: set(customers)
        for p, customers in before.group_by("product_id")
        .agg(pl.col("customer_id").unique())
        .iter_rows()
    }
    active = set(before["customer_id"].unique().to_list())
    buyers_of = {
        p: set(customers) & active
        for p, customers in window.filter(pl.col("product_id").is_in(new_ids))
        .group_by("product_id")
        .agg(pl.col("customer_id").unique())
        .iter_rows()
    }
    popularity = np.array([len(buyers_before.get(r, ())) for r in old_rows], dtype=np.float64)
    rng = np.random.default_rng(seed)
    totals = {name: [0, 0, 0] for name in RULES}  # hits, reached, reached buyers
    pairs = products_seen = 0
    for i, pid in enumerate(new_ids):
        customers = buyers_of.get(pid, set())
        if not customers:
            continue
        products_seen += 1
        pairs += len(customers)
        chosen = [int(j) for j in ids[i] if j >= 0]
        picks = {
            RULES[0]: chosen,
            RULES[1]: rng.choice(old_rows, size=len(chosen), replace=False).tolist(),
            RULES[2]: rng.choice(
                old_rows, size=len(chosen), replace=False, p=popularity / popularity.sum()
            ).tolist(),
        }
        for name, rows in picks.items():
            reached = set().union(*(buyers_before.get(r, set()) for r in rows))
            totals[name][0] += len(customers & reached)
            totals[name][1] += len(reached)
            totals[name][2] += len(customers & reached)
    rules = [
        RuleEvaluation(
            rule=name,
            hit_rate=hits / pairs if pairs else 0.0,
            reach=reached / products_seen if products_seen else 0.0,
            precision=reached_buyers / reached if reached else 0.0,
        )
        for name, (hits, reached, reached_buyers) in totals.items()
    ]
    base = pairs / (len(active) * products_seen) if products_seen else 0.0
    return NewProductEvaluation(products_seen, pairs, base, rules)


RULES = ("content neighbours", "random products", "popular products")
