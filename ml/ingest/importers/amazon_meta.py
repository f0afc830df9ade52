"""Amazon product metadata (``--meta``): titles, brands, prices and categories per asin.

2018 files are JSON lines (``price`` as text like ``"$7.99"``, ``category`` a list,
``description`` a list); 2014 files are one Python literal per line (single quotes;
``price`` a number, ``categories`` a list of paths). One product per asin: a repeated asin
keeps its first line, later ones are refused as ``duplicate_key``.
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from typing import Any

import polars as pl

from ml.ingest.contract import MAX_TEXT_CHARS
from ml.ingest.importers.json_records import Refused, json_lines, parse_object, required_text
from ml.ingest.importers.quarantine import RefusedLine

# A single amount: "$1,299.99", "12.5"; ranges ("$5.99 - $10.99") and page junk are not.
PRICE_PATTERN = re.compile(r"^\s*\$?\s*(\d{1,3}(?:,\d{3})*|\d+)(\.\d+)?\s*$")


def parse_meta_lines(path: Path) -> tuple[pl.DataFrame, list[RefusedLine], int]:
    """Parse product metadata: one product per asin (first line wins), refused lines aside.

    Returns
    -------
    products : polars.DataFrame
        ``product_id, name, description, category, brand, price``.
    refused : list of RefusedLine
    lines : int
        Non-blank lines read.
    """
    rows: list[dict[str, Any]] = []
    refused: list[RefusedLine] = []
    first_line: dict[str, int] = {}
    lines = 0
    for number, text in json_lines(path):
        lines += 1
        try:
            record = parse_object(text, python_literals=True)
            product_id = required_text(record, "asin")
        except Refused as exc:
            refused.append(RefusedLine(number, exc.rule, str(exc), text))
            continue
        original = first_line.setdefault(product_id, number)
        if original != number:
            refused.append(
                RefusedLine(number, "duplicate_key", f"asin already on record {original}", text)
            )
            continue
        rows.append(
            {
                "product_id": product_id,
                "name": _clipped(record.get("title")),
                "description": _clipped(record.get("description")),
                "category": meta_category(record),
                "brand": _clipped(record.get("brand")),
                "price": parse_price(record.get("price")),
            }
        )
    schema = {
        "product_id": pl.String,
        "name": pl.String,
        "description": pl.String,
        "category": pl.String,
        "brand": pl.String,
        "price": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row"), refused, lines


def _clipped(value: Any) -> str | None:
    """Text of a scalar or list field, entities decoded, cut to the contract's limit."""
    if isinstance(value, list):
        value = "\n".join(str(v) for v in value if v is not None)
    if value is None:
        return None
    text = html.unescape(str(value)).strip()
    return text[:MAX_TEXT_CHARS] or None


def parse_price(value: Any) -> float | None:
    """A single non-negative amount (``12.5``, ``"$1,299.99"``), else None (never invented)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value >= 0 else None
    match = PRICE_PATTERN.match(str(value))
    if match is None:
        return None
    return float(match.group(1).replace(",", "") + (match.group(2) or ""))


def meta_category(record: dict[str, Any]) -> str | None:
    """Second level of the first category path (2018 ``category``, 2014 ``categories``)."""
    path = record.get("category")
    if path is None:
        paths = record.get("categories")
        path = paths[0] if isinstance(paths, list) and paths else None
    if not isinstance(path, list):
        return None
    levels = [html.unescape(str(level)).strip() for level in path if str(level).strip()]
    if not levels:
        return None
    return levels[1] if len(levels) > 1 else levels[0]
