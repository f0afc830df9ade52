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
    ``order_lines/import.quarantine.parquet`` (see :mod:`ml.ingest.importers.quarantine`), which the
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
    :data:`~ml.ingest.importers.online_retail_entities.NON_PRODUCT_CODES` plus
    :data:`~ml.ingest.importers.online_retail_entities.NON_PRODUCT_PATTERN`; codes
    starting with one of
    :data:`~ml.ingest.importers.online_retail_entities.MERCHANDISE_PREFIXES` stay products
    (``DCGSSBOY`` is "BOYS PARTY BAG"). Real products always start with digits or a
    merchandise prefix (``85123A``, ``79323P``, ``DCGS0058``, ``SP1002``).
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
    :data:`~ml.ingest.importers.online_retail_source.TIMESTAMP_FORMATS`: ISO
    ``2009-12-01 07:45:00`` (Online Retail II) and UCI v1's month-first
    ``12/1/2010 8:26``. Day-first exports are ambiguous and not supported.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import polars as pl

from ml.ingest.importers.online_retail_entities import (
    build_customers,
    build_order_lines,
    build_orders,
    build_products,
)
from ml.ingest.importers.online_retail_source import clean_lines, read_source_records
from ml.ingest.importers.quarantine import refused_frame, write_import_quarantine

logger = logging.getLogger(__name__)


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
