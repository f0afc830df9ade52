"""Import an Amazon review export (JSON lines, 2014 or 2018 field set) into the input contract.

``affinity import-amazon-reviews REVIEWS.json.gz [--meta META.json.gz] --out DIR`` writes
``customers``, ``products``, ``reviews``, ``orders`` and ``order_lines`` Parquet files with
exactly the columns and types of :mod:`ml.contract`, plus import-quarantine files
(:mod:`ml.ingest.importers.quarantine`) for the lines it refuses.

Field sets
----------
2018 (Ni, Li, McAuley): ``overall, verified, reviewTime, reviewerID, asin, style,
reviewerName, reviewText, summary, unixReviewTime, vote, image``. 2014 (McAuley): the same
without ``verified``/``style``/``vote``/``image``, plus ``helpful``. Metadata: 2018 is JSON
(``asin, title, brand, price`` as text like ``"$7.99"``, ``category`` a list, ``description``
a list); 2014 is a Python literal per line (single quotes; ``price`` a number,
``categories`` a list of paths) and is read as such.

Policies
--------
One review per line.
    ``review_id`` is ``AR`` + 16 hex digits of a SHA-256 over (reviewer, product, time,
    rating, summary, text): stable across re-imports and line order, unique once exact
    duplicates are removed (one reviewer can review the same product twice, e.g. two
    variants on the same day, with different text). ``title`` = ``summary``, ``body`` =
    ``reviewText`` (HTML entities decoded: the export escapes them), ``created_at`` =
    ``unixReviewTime`` (UTC midnight of the review day) or, without it, ``reviewTime``.
Lines that cannot become a review are refused, with rule and line number.
    ``malformed_json`` (not JSON, or not an object), ``missing_value`` (no reviewer, product,
    rating or time), ``bad_integer`` (a rating that is not a whole number),
    ``rating_out_of_range`` (not 1-5), ``unparseable_timestamp``, ``text_too_long`` (longer
    than the contract's limit), ``exact_duplicate`` (same reviewer, product, time, rating,
    summary and text as an earlier line: the 5-core files repeat ~20 % of their lines). They
    go to ``reviews/import.quarantine.parquet``; refused meta lines to
    ``products/import.quarantine.parquet``. Refusing here (rather than passing NULLs on) keeps a
    bad line from creating a customer or an order. Blank lines are not records.
Customers are the reviewers; the reviewer's name is dropped.
    ``reviewerName`` is a public display name ("Shelly F", "houserules18", "Amazon
    Customer"), not a first name a message could address, and nothing downstream needs it:
    it is never written, so no output of the importer carries it (refused lines keep their
    raw JSON for the quarantine without it; only a line that is not JSON at all is kept
    verbatim). ``customer_id`` =
    ``reviewerID``, ``signed_up_at`` = first review, ``email``/``first_name``/``country``
    NULL, ``marketing_opt_in`` true (the source has no consent field, as in the Online Retail
    importer; a shop with consent data supplies its own customers file).
A review of a verified purchase is a purchase.
    Each review with ``verified`` true becomes an order (``AO`` + the review's digits) of one
    line, quantity 1, at the review time (the purchase happened before the review; its date
    is unknown, the review date is its latest possible date), status ``placed``, channel
    ``amazon``. 2014 files have no ``verified`` field: all their reviews count as purchases.
    ``unit_price`` is the product's price from ``--meta``; unknown prices stay NULL, never
    invented (the contract allows an unknown price: the line loads and counts as a
    purchase; money sums leave it out).
Products are the reviewed products plus every product in ``--meta``.
    ``name`` = title, ``brand``, ``price`` (a single amount; ranges, blanks and junk -> NULL),
    ``category`` = the second level of the first category path (the first level is the
    store department, the same for the whole file; fallback: the first level),
    ``description`` = the description text; text fields are cut to the contract's length
    limit (a quarantined product would orphan all its reviews). ``first_seen_at`` = first
    review. Without ``--meta`` only ids and ``first_seen_at`` are known. A repeated asin in
    the metadata keeps its first line (later ones: ``duplicate_key``).
"""

from __future__ import annotations

import hashlib
import html
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ml.ingest.contract import MAX_TEXT_CHARS
from ml.ingest.importers.amazon_meta import parse_meta_lines
from ml.ingest.importers.json_records import Refused, json_lines, parse_object, required_text
from ml.ingest.importers.output import conform, write_entities
from ml.ingest.importers.quarantine import (
    RefusedLine,
    json_line,
    refused_frame,
    write_import_quarantine,
)

logger = logging.getLogger(__name__)

REVIEW_ID_PREFIX = "AR"
ORDER_ID_PREFIX = "AO"
CHANNEL = "amazon"
NAME_FIELD = "reviewerName"  # personal data: never written anywhere
REVIEW_TIME_FORMAT = "%m %d, %Y"  # reviewTime: "09 1, 2016"


@dataclass(frozen=True)
class ParsedReview:
    """One review line turned into contract values (before duplicate removal)."""

    line: int
    customer_id: str
    product_id: str
    rating: int
    title: str | None
    body: str | None
    created_at: datetime
    verified: bool | None

    @property
    def identity(self) -> tuple:
        """What makes two lines the same review (the exact-duplicate key)."""
        return (
            self.customer_id,
            self.product_id,
            self.created_at,
            self.rating,
            self.title,
            self.body,
        )

    @property
    def digest(self) -> str:
        """16 hex digits identifying the review (see the module docstring)."""
        text = "\x1f".join("" if v is None else str(v) for v in self.identity)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def import_amazon_reviews(
    reviews_path: str | Path, out_dir: str | Path, meta_path: str | Path | None = None
) -> dict[str, int]:
    """Convert an Amazon review export (and optionally its metadata) into the input contract.

    Parameters
    ----------
    reviews_path : str or Path
        Reviews as JSON lines, plain or gzip (detected from the content).
    out_dir : str or Path
        Landing folder to write; created if missing.
    meta_path : str or Path, optional
        Product metadata as JSON lines (2018) or Python-literal lines (2014).

    Returns
    -------
    dict of str to int
        Rows written per entity, plus ``source_lines`` / ``refused_lines`` (review records
        read / refused) and, with ``--meta``, ``meta_lines`` / ``refused_meta_lines``.
        ``source_lines = reviews + refused_lines`` always holds.

    Raises
    ------
    ValueError
        If a file cannot be read at all (missing, corrupt gzip, binary), naming it.
    """
    started = time.perf_counter()
    reviews_path, out_dir = Path(reviews_path), Path(out_dir)
    reviews, refused = parse_review_lines(reviews_path)
    meta, refused_meta, meta_lines = (
        parse_meta_lines(Path(meta_path)) if meta_path else (pl.DataFrame(), [], 0)
    )
    review_frame = reviews_frame(reviews)
    products = products_frame(review_frame, meta)
    tables = {
        "customers": customers_frame(review_frame),
        "products": conform(products, "products"),
        "orders": orders_frame(review_frame),
        "order_lines": order_lines_frame(review_frame, products),
        "reviews": conform(review_frame, "reviews"),
    }
    counts = write_entities(tables, out_dir)
    write_import_quarantine(refused_frame(refused, reviews_path.name), out_dir, "reviews")
    meta_name = Path(meta_path).name if meta_path else "meta"
    write_import_quarantine(refused_frame(refused_meta, meta_name), out_dir, "products")
    counts["source_lines"] = len(reviews) + len(refused)
    counts["refused_lines"] = len(refused)
    if meta_path:
        counts["meta_lines"] = meta_lines
        counts["refused_meta_lines"] = len(refused_meta)
    _log_summary(reviews_path, counts, refused, time.perf_counter() - started)
    return counts


# --- reading -------------------------------------------------------------------------------


def parse_review_lines(path: Path) -> tuple[list[ParsedReview], list[RefusedLine]]:
    """Parse every review line; set aside the ones that cannot become a review.

    Returns
    -------
    reviews : list of ParsedReview
        The first line of each distinct review, in file order.
    refused : list of RefusedLine
        Every other line with its rule (exact duplicates name the line they repeat).
    """
    reviews: list[ParsedReview] = []
    refused: list[RefusedLine] = []
    first_line: dict[tuple, int] = {}
    for number, text in json_lines(path):
        try:
            record = parse_object(text)
        except Refused as exc:
            refused.append(RefusedLine(number, exc.rule, str(exc), text))
            continue
        try:
            review = parse_review(number, record)
        except Refused as exc:
            refused.append(RefusedLine(number, exc.rule, str(exc), without_name(record)))
            continue
        original = first_line.setdefault(review.identity, number)
        if original == number:
            reviews.append(review)
        else:
            detail = f"same reviewer, product, time, rating, summary and text as record {original}"
            refused.append(RefusedLine(number, "exact_duplicate", detail, without_name(record)))
    return reviews, refused


def without_name(record: dict[str, Any]) -> str:
    """A refused review as JSON without the reviewer's name (nothing needs it, even there)."""
    return json_line({key: value for key, value in record.items() if key != NAME_FIELD})


def parse_review(line: int, record: dict[str, Any]) -> ParsedReview:
    """Turn one review object into contract values, or raise :class:`Refused`."""
    customer_id = required_text(record, "reviewerID")
    product_id = required_text(record, "asin")
    rating = _rating(record.get("overall"))
    created_at = _review_time(record)
    title, body = _text(record.get("summary"), "summary"), _text(record.get("reviewText"), "text")
    verified = record.get("verified")
    return ParsedReview(
        line,
        customer_id,
        product_id,
        rating,
        title,
        body,
        created_at,
        verified if isinstance(verified, bool) else None,
    )


def _rating(value: Any) -> int:
    if value is None or value == "":
        raise Refused("missing_value", "no overall rating")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise Refused("bad_integer", f"overall rating {value!r} is not a number") from exc
    if not math.isfinite(number) or number != int(number):
        raise Refused("bad_integer", f"overall rating {value!r} is not a whole number")
    if not 1 <= number <= 5:
        raise Refused("rating_out_of_range", f"overall rating {value!r} is not 1-5")
    return int(number)


def _review_time(record: dict[str, Any]) -> datetime:
    unix = record.get("unixReviewTime")
    if unix not in (None, ""):
        try:
            return datetime.fromtimestamp(int(unix), UTC).replace(tzinfo=None)
        except (TypeError, ValueError, OverflowError, OSError) as exc:
            raise Refused("unparseable_timestamp", f"unixReviewTime {unix!r}") from exc
    text = record.get("reviewTime")
    if text in (None, ""):
        raise Refused("missing_value", "no unixReviewTime or reviewTime")
    try:
        return datetime.strptime(str(text).strip(), REVIEW_TIME_FORMAT)
    except ValueError as exc:
        raise Refused("unparseable_timestamp", f"reviewTime {text!r}") from exc


def _text(value: Any, name: str) -> str | None:
    """Decoded, stripped text (NULL when blank); refuse text over the contract's limit."""
    if value is None:
        return None
    text = html.unescape(str(value)).strip()
    if len(text) > MAX_TEXT_CHARS:
        raise Refused(
            "text_too_long", f"{name} has {len(text):,} characters (> {MAX_TEXT_CHARS:,})"
        )
    return text or None


# --- entities --------------------------------------------------------------------------------


def reviews_frame(reviews: list[ParsedReview]) -> pl.DataFrame:
    """Reviews with contract columns plus ``verified`` and ``digest`` (for orders)."""
    schema = {
        "digest": pl.String,
        "customer_id": pl.String,
        "product_id": pl.String,
        "rating": pl.Int32,
        "title": pl.String,
        "body": pl.String,
        "created_at": pl.Datetime("us"),
        "verified": pl.Boolean,
    }
    rows = [
        (r.digest, r.customer_id, r.product_id, r.rating, r.title, r.body, r.created_at, r.verified)
        for r in reviews
    ]
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_columns((pl.lit(REVIEW_ID_PREFIX) + pl.col("digest")).alias("review_id"))


def customers_frame(reviews: pl.DataFrame) -> pl.DataFrame:
    """One customer per reviewer: first review time; no name, email or country."""
    customers = reviews.group_by("customer_id").agg(
        pl.col("created_at").min().alias("signed_up_at")
    )
    customers = customers.with_columns(
        pl.lit(None, dtype=pl.String).alias("email"),
        pl.lit(None, dtype=pl.String).alias("first_name"),
        pl.lit(None, dtype=pl.String).alias("country"),
        pl.lit(True).alias("marketing_opt_in"),  # no consent field in the source
    )
    return conform(customers, "customers")


def products_frame(reviews: pl.DataFrame, meta: pl.DataFrame) -> pl.DataFrame:
    """Reviewed products and metadata products, with their first review time."""
    seen = reviews.group_by("product_id").agg(pl.col("created_at").min().alias("first_seen_at"))
    if meta.width == 0:
        products = seen.with_columns(
            *(pl.lit(None, dtype=pl.String).alias(c) for c in ("name", "description")),
            *(pl.lit(None, dtype=pl.String).alias(c) for c in ("category", "brand")),
            pl.lit(None, dtype=pl.Float64).alias("price"),
        )
    else:
        products = meta.join(seen, on="product_id", how="full", coalesce=True)
    return products.with_columns(pl.lit(True).alias("is_active"), pl.lit(True).alias("is_product"))


def orders_frame(reviews: pl.DataFrame) -> pl.DataFrame:
    """One placed order per purchase review, at the review time."""
    orders = _purchases(reviews).select(
        (pl.lit(ORDER_ID_PREFIX) + pl.col("digest")).alias("order_id"),
        "customer_id",
        pl.col("created_at").alias("ordered_at"),
        pl.lit("placed").alias("status"),
        pl.lit(CHANNEL).alias("channel"),
        pl.lit(None, dtype=pl.String).alias("country"),
    )
    return conform(orders, "orders")


def order_lines_frame(reviews: pl.DataFrame, products: pl.DataFrame) -> pl.DataFrame:
    """The single line of each purchase order: quantity 1 at the product's known price."""
    lines = _purchases(reviews).join(
        products.select("product_id", "price"), on="product_id", how="left"
    )
    lines = lines.select(
        (pl.lit(ORDER_ID_PREFIX) + pl.col("digest")).alias("order_id"),
        pl.lit(1).alias("line_no"),
        "product_id",
        pl.lit(1).alias("quantity"),
        pl.col("price").alias("unit_price"),  # NULL when unknown: never invented
    )
    return conform(lines, "order_lines")


def _purchases(reviews: pl.DataFrame) -> pl.DataFrame:
    """Reviews that are purchases: verified, or of a 2014 file (no ``verified`` field)."""
    return reviews.filter(pl.col("verified").fill_null(True))


def _log_summary(path: Path, counts: dict[str, int], refused: list[RefusedLine], seconds: float):
    rules: dict[str, int] = {}
    for line in refused:
        rules[line.rule] = rules.get(line.rule, 0) + 1
    logger.info(
        "%s: %d review lines, %d reviews, %d refused (%s), %d customers, %d products, "
        "%d purchase orders in %.2f s",
        path,
        counts["source_lines"],
        counts["reviews"],
        counts["refused_lines"],
        ", ".join(f"{rule}: {n}" for rule, n in sorted(rules.items())) or "none",
        counts["customers"],
        counts["products"],
        counts["orders"],
        seconds,
    )
