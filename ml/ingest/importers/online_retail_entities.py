"""Building the contract's entities from an Online Retail export's typed lines.

Customers, products, orders and order lines from the output of
:func:`ml.ingest.importers.online_retail_source.clean_lines`, with the flag that tells
merchandise from postage, fees and vouchers (:func:`is_product_code`). The policies are in
:mod:`ml.ingest.importers.online_retail`.
"""

from __future__ import annotations

import polars as pl

from ml.ingest.contract import ENTITIES, Entity
from ml.warehouse.tables import POLARS_TYPES  # a contract column's type in the Parquet file

# Non-merchandise stock codes seen in Online Retail (v1) and Online Retail II, upper-cased:
# postage, carriage, discount, manual entries, fees, charity, samples, bad-debt adjustments,
# stock adjustments, test items.
NON_PRODUCT_CODES = frozenset(
    {
        "POST",  # postage
        "DOT",  # dotcom postage
        "C2",  # carriage
        "C3",  # carriage
        "M",  # manual entry
        "D",  # discount
        "S",  # samples
        "B",  # adjust bad debt
        "PADS",  # "pads to match all cushions", priced 0.001
        "CRUK",  # Cancer Research UK commission
        "BANK CHARGES",
        "AMAZONFEE",
        "ADJUST",
        "ADJUST2",
        "TEST001",
        "TEST002",
        "GIFT",
    }
)
# Families of non-merchandise codes: purely alphabetic codes (fees and entries, see above),
# adjustments, tests, carriage, gift vouchers (`gift_0001_10` = a GBP 10 voucher).
NON_PRODUCT_PATTERN = r"^(?:[A-Z]+(?: [A-Z]+)*|ADJUST\d*|TEST\d+|C\d+|GIFT_\d+_\d+)$"
# Purely alphabetic codes that are nevertheless merchandise (DCGSSBOY: "BOYS PARTY BAG").
MERCHANDISE_PREFIXES = ("DCGS",)

CHANNEL = "online"


# --- non-product codes -------------------------------------------------------------------


def is_product_code(code: pl.Expr) -> pl.Expr:
    """True for merchandise stock codes, false for postage, fees, adjustments, vouchers, tests.

    Parameters
    ----------
    code : polars.Expr
        Normalised (stripped, upper-case) stock codes.

    Returns
    -------
    polars.Expr
        Boolean; see :data:`NON_PRODUCT_CODES`, :data:`NON_PRODUCT_PATTERN` and
        :data:`MERCHANDISE_PREFIXES`.
    """
    is_merchandise_prefix = pl.any_horizontal(
        [code.str.starts_with(prefix) for prefix in MERCHANDISE_PREFIXES]
    )
    looks_like_fee = code.str.contains(NON_PRODUCT_PATTERN) & ~is_merchandise_prefix
    return ~(code.is_in(sorted(NON_PRODUCT_CODES)) | looks_like_fee)


# --- entities --------------------------------------------------------------------------------


def build_order_lines(lines: pl.DataFrame) -> pl.DataFrame:
    """One order line per source line: invoice, position, normalised code, signed quantity, price."""
    return _conform(lines, ENTITIES["order_lines"])


def build_orders(lines: pl.DataFrame) -> pl.DataFrame:
    """One order per invoice: customer (NULL = guest), earliest time, status, channel, country."""
    invoices = lines.filter(pl.col("order_id").is_not_null())
    orders = invoices.group_by("order_id").agg(
        # Constant within an invoice in the data; min() keeps a conflicting export deterministic.
        pl.col("customer_id").min(),
        pl.col("invoiced_at").min().alias("ordered_at"),
        pl.col("is_cancellation").first(),
    )
    orders = orders.join(_most_frequent(invoices, "order_id", "country"), on="order_id", how="left")
    orders = orders.with_columns(
        pl.when(pl.col("is_cancellation"))
        .then(pl.lit("cancelled"))
        .otherwise(pl.lit("placed"))
        .alias("status"),
        pl.lit(CHANNEL).alias("channel"),
    )
    return _conform(orders, ENTITIES["orders"])


def build_customers(lines: pl.DataFrame) -> pl.DataFrame:
    """One customer per Customer ID: country of most of their invoices, first invoice time."""
    known = lines.filter(pl.col("customer_id").is_not_null())
    customers = known.group_by("customer_id").agg(pl.col("invoiced_at").min().alias("signed_up_at"))
    # Count invoices, not lines, so one big order does not outvote several small ones.
    invoice_countries = known.select("customer_id", "order_id", "country").unique()
    customers = customers.join(
        _most_frequent(invoice_countries, "customer_id", "country"), on="customer_id", how="left"
    )
    customers = customers.with_columns(
        pl.lit(None, dtype=pl.String).alias("email"),
        pl.lit(None, dtype=pl.String).alias("first_name"),
        # The source has no consent field; a shop with consent data supplies its own file.
        pl.lit(True).alias("marketing_opt_in"),
    )
    return _conform(customers, ENTITIES["customers"])


def build_products(lines: pl.DataFrame) -> pl.DataFrame:
    """One product per normalised stock code: latest sold description and positive price."""
    has_description = pl.col("description").is_not_null()
    is_priced = pl.col("unit_price") > 0
    # Oldest first, so `.last()` within each group is the most recent (file order breaks ties).
    chronological = lines.filter(pl.col("product_id").is_not_null()).sort(
        "invoiced_at", "source_row", nulls_last=False
    )
    products = chronological.group_by("product_id").agg(
        pl.col("invoiced_at").min().alias("first_seen_at"),
        pl.col("unit_price").filter(is_priced).last().alias("price"),
        pl.col("description").filter(has_description & is_priced).last().alias("sold_description"),
        pl.col("description").filter(has_description).last().alias("any_description"),
    )
    products = products.with_columns(
        pl.coalesce("sold_description", "any_description").alias("name"),
        pl.lit(None, dtype=pl.String).alias("category"),
        pl.lit(None, dtype=pl.String).alias("brand"),
        pl.lit(True).alias("is_active"),
        is_product_code(pl.col("product_id")).alias("is_product"),
    ).with_columns(pl.col("name").alias("description"))
    return _conform(products, ENTITIES["products"])


def _most_frequent(frame: pl.DataFrame, key: str, value: str) -> pl.DataFrame:
    """Per ``key``, the most frequent non-NULL ``value`` (ties: alphabetically first)."""
    counts = frame.drop_nulls(value).group_by(key, value).agg(pl.len().alias("_n"))
    ranked = counts.sort([key, "_n", value], descending=[False, True, False])
    return ranked.unique(subset=key, keep="first", maintain_order=True).select(key, value)


def _conform(frame: pl.DataFrame, entity: Entity) -> pl.DataFrame:
    """Select the contract's columns in its order and types, sorted by the primary key."""
    columns = [pl.col(c.name).cast(POLARS_TYPES[c.dtype]) for c in entity.columns]
    return frame.select(columns).sort(list(entity.primary_key), nulls_last=True)
