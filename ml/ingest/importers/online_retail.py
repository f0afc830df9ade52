"""Import the UCI Online Retail / Online Retail II transaction export into the input contract.

The export has one row per invoice line:
``Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country`` (Online
Retail II) or ``InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,
Country`` (the original Online Retail, "v1"). Both are accepted, plain or gzip-compressed,
and become ``customers``, ``products``, ``orders`` and ``order_lines`` Parquet files whose
columns and types are exactly those of :mod:`ml.ingest.contract`.

Policies
--------
Every well-formed source line becomes exactly one order line.
    A record the CSV parser cannot take (more or fewer fields than the header, an
    unterminated quote) is set aside with its rule and record number in
    ``order_lines/import.quarantine.parquet`` (see :mod:`ml.importers.quarantine`), which the
    ingest puts in ``raw.quarantine``; the rest of the file still imports. Nothing else is
    dropped or repaired here: zero quantities, negative prices ("Adjust bad
    debt"), unparseable values and the like pass through, so the ingest can quarantine them
    with the rule they break and ``loaded + quarantined = received`` holds per source line.
    A value that cannot be typed (e.g. a quantity of ``"abc"``) becomes NULL and is counted
    in a warning; the ingest then quarantines that line for the NULL.
Exact duplicate lines are kept as separate order lines.
    The export has no line number, so two identical lines of one invoice cannot be told
    apart from the same item scanned twice; UCI's own totals include them. Each copy gets its
    own ``line_no`` (1-based position within the invoice, in file order).
Stock codes are normalised to upper case (and stripped).
    In this data ``85123a`` and ``85123A`` carry the same descriptions and prices (152 such
    lower-case codes, all duplicates of an upper-case one), and one code has a trailing
    space (``"47503J "``). Gift vouchers therefore appear as ``GIFT_0001_10`` etc.
Non-merchandise codes get ``is_product = false``.
    Postage, fees, discounts, manual adjustments, samples, tests and gift vouchers are kept
    (revenue reconciliation needs them) but flagged so models exclude them. The rule is
    :data:`NON_PRODUCT_CODES` plus :data:`NON_PRODUCT_PATTERN`; codes starting with one of
    :data:`MERCHANDISE_PREFIXES` stay products (``DCGSSBOY`` is "BOYS PARTY BAG"). Real
    products always start with digits or a merchandise prefix (``85123A``, ``79323P``,
    ``DCGS0058``, ``SP1002``).
Product attributes come from the most recent evidence.
    ``name``/``description`` are the most recent non-empty description on a line with a
    positive price, falling back to any line's: zero-price stock-adjustment lines carry
    notes such as ``damaged`` or ``?`` in the description field. ``price`` is the most recent
    positive price (NULL if there is none). "Most recent" orders by invoice time, then file
    position, so ties are deterministic. ``category`` and ``brand`` are NULL: the data set
    has neither.
Orders.
    One per invoice: the invoice's customer (NULL for guest invoices, which are kept),
    earliest timestamp, most frequent country, channel ``online``. Invoices starting with
    ``C`` are ``cancelled`` reversal documents whose lines carry negative quantities (the
    contract's signed-quantity convention); all others, including ``A`` "Adjust bad debt"
    invoices, are ``placed``.
Customers.
    One per distinct non-NULL Customer ID (``13085.0`` from float-typed exports is read as
    ``13085``). ``email`` and ``first_name`` are NULL (no PII in the data set); ``country``
    is the country of most of the customer's invoices (ties alphabetical);
    ``signed_up_at`` is the first invoice time; ``marketing_opt_in`` is true because the
    source has no consent field -- a shop with real consent data supplies its own
    customers file.
Timestamps.
    :data:`TIMESTAMP_FORMATS`: ISO ``2009-12-01 07:45:00`` (Online Retail II) and UCI v1's
    month-first ``12/1/2010 8:26``. Day-first exports are ambiguous and not supported.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import polars as pl

from ml.ingest.contract import ENTITIES, Entity
from ml.ingest.importers.csv_records import RECORD, read_csv_records, read_utf8
from ml.ingest.importers.quarantine import RefusedLine, refused_frame, write_import_quarantine
from ml.warehouse.tables import POLARS_TYPES  # a contract column's type in the Parquet file

logger = logging.getLogger(__name__)

# Canonical source column names (the Online Retail II spelling).
INVOICE = "Invoice"
STOCK_CODE = "StockCode"
DESCRIPTION = "Description"
QUANTITY = "Quantity"
INVOICE_DATE = "InvoiceDate"
PRICE = "Price"
CUSTOMER_ID = "Customer ID"
COUNTRY = "Country"
SOURCE_COLUMNS = (
    INVOICE,
    STOCK_CODE,
    DESCRIPTION,
    QUANTITY,
    INVOICE_DATE,
    PRICE,
    CUSTOMER_ID,
    COUNTRY,
)

# Header spellings accepted, keyed by the header lower-cased without spaces/underscores, so
# v1 (`InvoiceNo`, `UnitPrice`, `CustomerID`) and v2 (`Invoice`, `Price`, `Customer ID`) both map.
HEADER_ALIASES: dict[str, str] = {
    "invoice": INVOICE,
    "invoiceno": INVOICE,
    "stockcode": STOCK_CODE,
    "description": DESCRIPTION,
    "quantity": QUANTITY,
    "invoicedate": INVOICE_DATE,
    "price": PRICE,
    "unitprice": PRICE,
    "customerid": CUSTOMER_ID,
    "country": COUNTRY,
}

# Tried in order; the first that parses a value wins. v2 is ISO, v1 is US month-first.
TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
)

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

CANCELLATION_PREFIX = "C"
CHANNEL = "online"


def import_online_retail(
    path: str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> dict[str, int]:
    """Convert a UCI Online Retail / Online Retail II CSV into the input contract.

    Parameters
    ----------
    path : str or PathLike
        The export, plain CSV or gzip-compressed (detected from the content, not the name),
        with either the Online Retail II or the Online Retail (v1) header.
    out_dir : str or PathLike
        Directory that receives ``customers.parquet``, ``products.parquet``,
        ``orders.parquet`` and ``order_lines.parquet``; created if missing.

    Returns
    -------
    dict of str to int
        Rows written per entity, plus ``source_lines`` (data records in the file) and
        ``refused_lines`` (malformed records set aside for quarantine).

    Raises
    ------
    ValueError
        If the file lacks a required source column (the message names the file and the
        missing columns).
    """
    started = time.perf_counter()
    path, out_dir = Path(path), Path(out_dir)
    raw, refused = read_source_records(path)
    lines = clean_lines(raw)
    tables = {
        "customers": build_customers(lines),
        "products": build_products(lines),
        "orders": build_orders(lines),
        "order_lines": build_order_lines(lines),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        _write_parquet_atomically(frame, out_dir / f"{name}.parquet")
    write_import_quarantine(refused_frame(refused, path.name), out_dir, "order_lines")
    counts = {name: frame.height for name, frame in tables.items()}
    counts["source_lines"] = lines.height + len(refused)
    counts["refused_lines"] = len(refused)
    _log_summary(path, lines, tables, time.perf_counter() - started)
    return counts


# --- reading -------------------------------------------------------------------------------


def read_source(path: Path) -> pl.DataFrame:
    """Read the export's well-formed lines (see :func:`read_source_records`)."""
    return read_source_records(path)[0]


def read_source_records(path: Path) -> tuple[pl.DataFrame, list[RefusedLine]]:
    """Read the export with every column as a string, columns renamed to the v2 spelling.

    Parameters
    ----------
    path : Path
        The CSV or CSV.gz export.

    Returns
    -------
    lines : polars.DataFrame
        One row per well-formed data line, the columns of :data:`SOURCE_COLUMNS` (extra
        columns dropped), in file order.
    refused : list of RefusedLine
        Malformed records (wrong field count, broken quoting) with their record number.
    """
    # All strings: ids such as '13085.0' and codes such as '85123A' must not be inferred.
    raw, refused = read_csv_records(path, read_utf8(path))
    raw = raw.drop(RECORD)
    renames = _canonical_header(raw.columns, path)
    return raw.rename(renames).select(SOURCE_COLUMNS), refused


def _canonical_header(columns: list[str], path: Path) -> dict[str, str]:
    """Map the file's header names onto :data:`SOURCE_COLUMNS`, or raise naming what is missing."""
    renames: dict[str, str] = {}
    for column in columns:
        key = column.strip().lower().replace(" ", "").replace("_", "")
        canonical = HEADER_ALIASES.get(key)
        if canonical is not None and canonical not in renames.values():
            renames[column] = canonical
    missing = [c for c in SOURCE_COLUMNS if c not in renames.values()]
    if missing:
        raise ValueError(
            f"{path}: not an Online Retail export, missing column(s) {', '.join(missing)} "
            f"(header: {', '.join(columns)})"
        )
    return renames


# --- cleaning --------------------------------------------------------------------------------


def clean_lines(raw: pl.DataFrame) -> pl.DataFrame:
    """Type and normalise the source lines, one output row per input row, in file order.

    Parameters
    ----------
    raw : polars.DataFrame
        Output of :func:`read_source`.

    Returns
    -------
    polars.DataFrame
        Columns ``source_row`` (0-based), ``order_id``, ``line_no``, ``product_id``,
        ``description``, ``quantity``, ``unit_price``, ``invoiced_at``, ``customer_id``,
        ``country``, ``is_cancellation``.
    """
    lines = raw.with_row_index("source_row").select(
        pl.col("source_row").cast(pl.Int64),
        _blank_to_null(pl.col(INVOICE)).alias("order_id"),
        _blank_to_null(pl.col(STOCK_CODE)).str.to_uppercase().alias("product_id"),
        _blank_to_null(pl.col(DESCRIPTION)).alias("description"),
        _blank_to_null(pl.col(QUANTITY)).cast(pl.Int32, strict=False).alias("quantity"),
        _blank_to_null(pl.col(PRICE)).cast(pl.Float64, strict=False).alias("unit_price"),
        _parse_timestamp(_blank_to_null(pl.col(INVOICE_DATE))).alias("invoiced_at"),
        _normalise_customer_id(pl.col(CUSTOMER_ID)).alias("customer_id"),
        _blank_to_null(pl.col(COUNTRY)).alias("country"),
    )
    lines = lines.with_columns(
        # Position within the invoice in file order: the export carries no line number.
        pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over("order_id").alias("line_no"),
        pl.col("order_id")
        .str.starts_with(CANCELLATION_PREFIX)
        .fill_null(False)
        .alias("is_cancellation"),
    )
    _warn_untyped(raw, lines)
    return lines


def _blank_to_null(text: pl.Expr) -> pl.Expr:
    """Strip surrounding whitespace; an empty result becomes NULL."""
    stripped = text.str.strip_chars()
    return pl.when(stripped.str.len_chars() > 0).then(stripped)


def _normalise_customer_id(text: pl.Expr) -> pl.Expr:
    """'13085.0' (a float-typed export) -> '13085'; blank -> NULL (a guest)."""
    return _blank_to_null(text).str.replace(r"\.0+$", "")


def _parse_timestamp(text: pl.Expr) -> pl.Expr:
    """Parse with the first of :data:`TIMESTAMP_FORMATS` that fits each value; else NULL."""
    return pl.coalesce(
        [text.str.strptime(pl.Datetime("us"), fmt, strict=False) for fmt in TIMESTAMP_FORMATS]
    )


def _warn_untyped(raw: pl.DataFrame, lines: pl.DataFrame) -> None:
    """Log how many non-blank values could not be typed (they pass through as NULL)."""
    typed = {QUANTITY: "quantity", PRICE: "unit_price", INVOICE_DATE: "invoiced_at"}
    for source, column in typed.items():
        present = raw[source].str.strip_chars().str.len_chars().fill_null(0) > 0
        failed = int((present & lines[column].is_null()).sum())
        if failed:
            logger.warning(
                "%d %s value(s) could not be parsed; passed on as NULL for the ingest to quarantine",
                failed,
                source,
            )


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


# --- output ----------------------------------------------------------------------------------


def _write_parquet_atomically(frame: pl.DataFrame, target: Path) -> None:
    """Write next to ``target`` and rename, so a reader never sees a half-written file."""
    partial = target.with_name(f".{target.name}.partial")
    frame.write_parquet(partial)
    os.replace(partial, target)


def _log_summary(
    path: Path, lines: pl.DataFrame, tables: dict[str, pl.DataFrame], seconds: float
) -> None:
    """Log what was read and written, including the codes flagged as non-products."""
    products = tables["products"]
    non_products = products.filter(~pl.col("is_product"))["product_id"].to_list()
    logger.info(
        "%s: %d lines read, %d invoices (%d cancelled), %d customers, %d products "
        "(%d non-product codes), %d guest lines, %d cancellation lines in %.2f s",
        path,
        lines.height,
        tables["orders"].height,
        int((tables["orders"]["status"] == "cancelled").sum()),
        tables["customers"].height,
        products.height,
        len(non_products),
        int(lines["customer_id"].is_null().sum()),
        int(lines["is_cancellation"].sum()),
        seconds,
    )
    logger.info("non-product codes: %s", ", ".join(non_products))
