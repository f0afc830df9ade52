"""Reading an Online Retail export's lines and typing them: the importer's first step.

:func:`read_source_records` reads the CSV (v1 or v2 header, plain or gzip) as strings with
the v2 column names; :func:`clean_lines` types and normalises them, one row per source line.
The policies are in :mod:`ml.ingest.importers.online_retail`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from ml.ingest.importers.csv_records import RECORD, read_csv_records, read_utf8
from ml.ingest.importers.quarantine import RefusedLine

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

CANCELLATION_PREFIX = "C"


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
