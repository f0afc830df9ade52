"""Import the Women's E-Commerce Clothing Reviews CSV (Kaggle, CC0) into the input contract.

``affinity import-womens-clothing PATH --out DIR [--reviewed-at YYYY-MM-DD]`` writes
``customers``, ``products`` and ``reviews`` Parquet files (contract columns and types) and,
for records it refuses, ``reviews/import.quarantine.parquet``.

The source: an unnamed row index, ``Clothing ID``, ``Age``, ``Title``, ``Review Text``,
``Rating``, ``Recommended IND``, ``Positive Feedback Count``, ``Division Name``,
``Department Name``, ``Class Name``. It has no reviewer ids and no dates.

Policies
--------
Reviews without reviewers belong to one documented placeholder customer.
    The contract requires a customer on every review, and the data set has no reviewer at
    all. Inventing one customer per review would add ~23,000 people who never bought
    anything to every customer table; instead every review belongs to
    :data:`PLACEHOLDER_CUSTOMER_ID` (``WC-ANONYMOUS``), written to ``customers`` with no
    personal data and ``marketing_opt_in`` false: it is nobody to contact, and campaigns
    never select it. Per-customer review features are meaningless for it; per-product ones
    (sentiment, aspects) are what this data set is for.
Undated reviews get one placeholder date.
    ``created_at`` is ``--reviewed-at`` (default :data:`DEFAULT_REVIEWED_AT`, the year the
    data set was published) for every review. Time-based evaluation and 30-day trends need
    real dates; with a single date the sentiment model falls back to a seeded random split
    (:func:`ml.text.dataset.split_reviews`).
Reviewer attributes are dropped.
    ``Age`` is personal data about the reviewer and not in the contract; ``Recommended
    IND`` and ``Positive Feedback Count`` are not in the contract either.
Ids.
    ``review_id`` = ``WC`` + the source's row index, zero-padded (``WC00042``); without an
    index column, the record number. ``product_id`` = ``Clothing ID`` as written.
Products.
    One per Clothing ID: ``category`` = its most frequent ``Class Name`` (ties
    alphabetical; NULL for the products without taxonomy), ``name``, ``description``,
    ``brand`` and ``price`` NULL (the data set has none).
Refused records (rule, record number): malformed CSV records (``wrong_column_count``,
    ``malformed_row``), ``missing_value`` (no Clothing ID or rating), ``bad_integer``
    (rating not a whole number), ``rating_out_of_range``, ``text_too_long``, and
    ``exact_duplicate`` (every field but the row index equal to an earlier record that has a
    title or text; rating-only records of one product cannot be told apart from different
    reviewers and are kept).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

import polars as pl

from ml.ingest.contract import MAX_TEXT_CHARS
from ml.ingest.importers.csv_records import RECORD, read_csv_records, read_utf8
from ml.ingest.importers.output import conform, write_entities
from ml.ingest.importers.quarantine import RefusedLine, refused_frame, write_import_quarantine

logger = logging.getLogger(__name__)

PLACEHOLDER_CUSTOMER_ID = "WC-ANONYMOUS"
DEFAULT_REVIEWED_AT = "2018-01-01"
REVIEW_ID_PREFIX = "WC"
INDEX_COLUMN = "column_1"  # the CSV's unnamed first column (see csv_records.unique_header)
PRODUCT = "Clothing ID"
TITLE = "Title"
TEXT = "Review Text"
RATING = "Rating"
CLASS = "Class Name"
REQUIRED_COLUMNS = (PRODUCT, TITLE, TEXT, RATING, CLASS)


def import_womens_clothing(
    path: str | Path, out_dir: str | Path, *, reviewed_at: str = DEFAULT_REVIEWED_AT
) -> dict[str, int]:
    """Convert the Women's Clothing reviews CSV into the input contract.

    Parameters
    ----------
    path : str or Path
        The CSV, plain or gzip-compressed.
    out_dir : str or Path
        Landing folder to write; created if missing.
    reviewed_at : str
        Placeholder review date ``YYYY-MM-DD`` for every review (the data has none).

    Returns
    -------
    dict of str to int
        Rows per entity, ``source_lines`` (data records) and ``refused_lines``;
        ``source_lines = reviews + refused_lines``.

    Raises
    ------
    ValueError
        If the file cannot be read or lacks a required column (named in the message), or
        ``reviewed_at`` is not a date.
    """
    started = time.perf_counter()
    path, out_dir = Path(path), Path(out_dir)
    try:
        created_at = datetime.strptime(reviewed_at, "%Y-%m-%d")
    except ValueError as exc:
        raise ValueError(f"--reviewed-at {reviewed_at!r} is not a date YYYY-MM-DD") from exc
    records, refused = read_csv_records(path, read_utf8(path))
    missing = [c for c in REQUIRED_COLUMNS if c not in records.columns]
    if missing:
        raise ValueError(
            f"{path}: not the Women's Clothing reviews CSV, missing column(s) "
            f"{', '.join(missing)} (header: {', '.join(records.columns[1:])})"
        )
    typed = type_records(records)
    refused += refused_records(typed)
    reviews = typed.filter(pl.col("_rule").is_null())
    tables = {
        "customers": placeholder_customers(),
        "products": products_frame(reviews),
        "reviews": reviews_frame(reviews, created_at),
    }
    counts = write_entities(tables, out_dir)
    write_import_quarantine(refused_frame(refused, path.name), out_dir, "reviews")
    counts["source_lines"] = reviews.height + len(refused)
    counts["refused_lines"] = len(refused)
    logger.info(
        "%s: %d records, %d reviews of %d products, %d refused in %.2f s",
        path,
        counts["source_lines"],
        counts["reviews"],
        counts["products"],
        counts["refused_lines"],
        time.perf_counter() - started,
    )
    return counts


def type_records(records: pl.DataFrame) -> pl.DataFrame:
    """Typed review values plus ``_rule``/``_detail`` for records that cannot become reviews."""
    stripped = {
        name: pl.col(name).str.strip_chars().replace("", None)
        for name in (PRODUCT, TITLE, TEXT, RATING, CLASS)
    }
    index = (
        pl.col(INDEX_COLUMN).str.strip_chars().cast(pl.Int64, strict=False)
        if INDEX_COLUMN in records.columns
        else pl.lit(None, dtype=pl.Int64)
    )
    typed = records.select(
        RECORD,
        index.fill_null(pl.col(RECORD)).alias("_index"),
        stripped[PRODUCT].alias("product_id"),
        stripped[TITLE].alias("title"),
        stripped[TEXT].alias("body"),
        stripped[RATING].alias("_rating_text"),
        stripped[RATING].cast(pl.Float64, strict=False).alias("_rating_number"),
        stripped[CLASS].alias("class_name"),
        # Everything but the row index: equal values mean the same review written twice.
        pl.concat_str(
            [pl.col(c).fill_null("\x00") for c in records.columns[1:] if c != INDEX_COLUMN],
            separator="\x1f",
        ).alias("_identity"),
        pl.concat_str([pl.col(c).fill_null("") for c in records.columns[1:]], separator=",").alias(
            "_raw"
        ),
    )
    rating = pl.col("_rating_number")
    checks = [
        (pl.col("product_id").is_null(), "missing_value", pl.lit("no Clothing ID")),
        (pl.col("_rating_text").is_null(), "missing_value", pl.lit("no Rating")),
        (
            rating.is_null() | (rating != rating.floor()),
            "bad_integer",
            pl.lit("Rating ") + pl.col("_rating_text") + pl.lit(" is not a whole number"),
        ),
        (
            (rating < 1) | (rating > 5),
            "rating_out_of_range",
            pl.lit("Rating ") + pl.col("_rating_text") + pl.lit(" is not 1-5"),
        ),
        (
            (pl.col("title").str.len_chars() > MAX_TEXT_CHARS)
            | (pl.col("body").str.len_chars() > MAX_TEXT_CHARS),
            "text_too_long",
            pl.lit(f"Title or Review Text longer than {MAX_TEXT_CHARS:,} characters"),
        ),
        (
            # Rating-only records (no title, no text) of one product by same-aged reviewers
            # are different people as far as anyone can tell: only equal text is a repeat.
            (pl.col("title").is_not_null() | pl.col("body").is_not_null())
            & (pl.col(RECORD) != pl.col(RECORD).min().over("_identity")),
            "exact_duplicate",
            pl.lit("every field but the row index equals record ")
            + pl.col(RECORD).min().over("_identity").cast(pl.String),
        ),
    ]
    rule, detail = pl.when(checks[0][0]), pl.when(checks[0][0])
    rule, detail = rule.then(pl.lit(checks[0][1])), detail.then(checks[0][2])
    for condition, name, text in checks[1:]:
        rule = rule.when(condition).then(pl.lit(name))
        detail = detail.when(condition).then(text)
    typed = typed.with_columns(rule.alias("_rule"), detail.alias("_detail"))
    return typed.with_columns(rating.cast(pl.Int32, strict=False).alias("rating"))


def refused_records(typed: pl.DataFrame) -> list[RefusedLine]:
    """The records :func:`type_records` flagged, as refused lines (fields joined by commas)."""
    flagged = typed.filter(pl.col("_rule").is_not_null())
    return [
        RefusedLine(row[RECORD], row["_rule"], row["_detail"], row["_raw"])
        for row in flagged.iter_rows(named=True)
    ]


def placeholder_customers() -> pl.DataFrame:
    """The one customer every review belongs to: no personal data, never contacted."""
    customer = pl.DataFrame(
        {
            "customer_id": [PLACEHOLDER_CUSTOMER_ID],
            "email": [None],
            "first_name": [None],
            "country": [None],
            "signed_up_at": [None],
            "marketing_opt_in": [False],
        },
        schema_overrides={"signed_up_at": pl.Datetime("us")},
    )
    return conform(customer, "customers")


def products_frame(reviews: pl.DataFrame) -> pl.DataFrame:
    """One product per Clothing ID, categorised by its most frequent Class Name."""
    counts = (
        reviews.drop_nulls("class_name")
        .group_by("product_id", "class_name")
        .agg(pl.len().alias("_n"))
        .sort(["product_id", "_n", "class_name"], descending=[False, True, False])
        .unique(subset="product_id", keep="first", maintain_order=True)
    )
    products = (
        reviews.select("product_id")
        .unique()
        .join(
            counts.select("product_id", pl.col("class_name").alias("category")),
            on="product_id",
            how="left",
        )
        .with_columns(
            *(pl.lit(None, dtype=pl.String).alias(c) for c in ("name", "description", "brand")),
            pl.lit(None, dtype=pl.Float64).alias("price"),
            pl.lit(True).alias("is_active"),
            pl.lit(True).alias("is_product"),
            pl.lit(None, dtype=pl.Datetime("us")).alias("first_seen_at"),
        )
    )
    return conform(products, "products")


def reviews_frame(reviews: pl.DataFrame, created_at: datetime) -> pl.DataFrame:
    """The reviews entity: placeholder customer and date, id from the source's row index."""
    frame = reviews.with_columns(
        (pl.lit(REVIEW_ID_PREFIX) + pl.col("_index").cast(pl.String).str.zfill(5)).alias(
            "review_id"
        ),
        pl.lit(PLACEHOLDER_CUSTOMER_ID).alias("customer_id"),
        pl.lit(created_at, dtype=pl.Datetime("us")).alias("created_at"),
    )
    return conform(frame, "reviews")
