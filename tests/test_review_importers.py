"""The Amazon review and Women's Clothing importers, on synthetic lines and the real files."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import duckdb
import polars as pl
import pytest
from test_reviews_support import AMAZON_BEAUTY, WOMENS_CLOTHING, require

from ml.config import paths
from ml.ingest import ingest
from ml.ingest.contract import ENTITIES
from ml.ingest.importers.amazon_meta import parse_price
from ml.ingest.importers.amazon_reviews import import_amazon_reviews
from ml.ingest.importers.quarantine import IMPORT_QUARANTINE_FILE
from ml.ingest.importers.womens_clothing import PLACEHOLDER_CUSTOMER_ID, import_womens_clothing
from ml.warehouse.tables import POLARS_TYPES

AMAZON_ENTITIES = ("customers", "products", "orders", "order_lines", "reviews")


def review_2018(**fields) -> dict:
    base = {
        "overall": 5.0,
        "verified": True,
        "reviewTime": "09 1, 2016",
        "reviewerID": "A1",
        "asin": "B1",
        "style": {"Size:": " 7.0 oz"},
        "reviewerName": "Shelly Fakename",
        "reviewText": "Smells lovely, cr&egrave;me texture.",
        "summary": "Five Stars",
        "unixReviewTime": 1472688000,
    }
    return base | fields


def write_lines(path, lines: list[str]) -> None:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def read_outputs(out_dir, entities=AMAZON_ENTITIES) -> dict[str, pl.DataFrame]:
    return {e: pl.read_parquet(out_dir / f"{e}.parquet") for e in entities}


def test_amazon_2018_lines_map_onto_the_contract(tmp_path):
    lines = [
        json.dumps(review_2018()),
        json.dumps(review_2018()),  # exact duplicate of line 1
        json.dumps(review_2018(reviewerID="A2", overall=2.0, verified=False, summary="Meh")),
        "{not json",
        json.dumps(review_2018(reviewerID="A3", overall=4.5)),
        json.dumps(review_2018(reviewerID="A4", overall=7)),
        json.dumps(review_2018(reviewerID="", asin="B2")),
        "",  # blank lines are not records
        json.dumps(review_2018(reviewerID="A5", unixReviewTime=None, reviewTime="13 45, 2016")),
        json.dumps([1, 2]),
        json.dumps(review_2018(reviewerID="A6", asin="B2", unixReviewTime=None)),
    ]
    source = tmp_path / "reviews.json.gz"
    write_lines(source, lines)

    counts = import_amazon_reviews(source, tmp_path / "out")

    assert counts["source_lines"] == 10
    assert counts["reviews"] == 3 and counts["refused_lines"] == 7
    assert counts["source_lines"] == counts["reviews"] + counts["refused_lines"]
    tables = read_outputs(tmp_path / "out")
    for entity, frame in tables.items():
        assert frame.schema == {c.name: POLARS_TYPES[c.dtype] for c in ENTITIES[entity].columns}
    reviews = tables["reviews"].sort("customer_id")
    assert reviews["customer_id"].to_list() == ["A1", "A2", "A6"]
    assert reviews["body"][0] == "Smells lovely, crème texture."  # HTML entity decoded
    assert reviews["rating"].to_list() == [5, 2, 5]
    assert str(reviews["created_at"][2]) == "2016-09-01 00:00:00"  # from reviewTime
    assert reviews["review_id"].str.starts_with("AR").all()
    # Only verified reviews are purchases; the price is unknown and stays NULL.
    assert tables["orders"]["customer_id"].sort().to_list() == ["A1", "A6"]
    assert tables["order_lines"]["unit_price"].is_null().all()
    assert tables["order_lines"]["quantity"].to_list() == [1, 1]
    assert tables["customers"]["first_name"].is_null().all()

    refused = pl.read_parquet(tmp_path / "out" / "reviews" / IMPORT_QUARANTINE_FILE)
    assert list(zip(refused["source_row"], refused["rule"], strict=True)) == [
        (2, "exact_duplicate"),
        (4, "malformed_json"),
        (5, "bad_integer"),
        (6, "rating_out_of_range"),
        (7, "missing_value"),
        (9, "unparseable_timestamp"),
        (10, "malformed_json"),
    ]
    assert "as record 1" in refused["detail"][0]


def test_amazon_2014_lines_and_python_literal_meta(tmp_path):
    review = {
        "reviewerID": "A1",
        "asin": "B1",
        "reviewerName": "J. Fakename",
        "helpful": [2, 3],
        "reviewText": "Runs small but the colour is lovely.",
        "overall": 4.0,
        "summary": "Nice",
        "unixReviewTime": 1252800000,
        "reviewTime": "09 13, 2009",
    }
    write_lines(tmp_path / "reviews.json", [json.dumps(review)])
    meta = [
        repr({"asin": "B1", "title": "Rose Soap", "price": 12.5,
              "categories": [["Beauty", "Bath & Body", "Soaps"]], "brand": "Acme"}),
        repr({"asin": "B9", "title": "Unreviewed Cream", "price": "$1,299.99",
              "category": ["All Beauty", "Skin Care"], "description": ["Rich.", "Smooth."]}),
        repr({"asin": "B9", "title": "Repeated"}),
        "{'asin': ",
    ]  # fmt: skip
    write_lines(tmp_path / "meta.json", meta)

    counts = import_amazon_reviews(
        tmp_path / "reviews.json", tmp_path / "out", tmp_path / "meta.json"
    )

    assert counts["meta_lines"] == 4 and counts["refused_meta_lines"] == 2
    tables = read_outputs(tmp_path / "out")
    products = {row["product_id"]: row for row in tables["products"].iter_rows(named=True)}
    assert products["B1"]["name"] == "Rose Soap"
    assert products["B1"]["category"] == "Bath & Body"
    assert products["B1"]["price"] == 12.5
    assert products["B9"]["price"] == 1299.99
    assert products["B9"]["description"] == "Rich.\nSmooth."
    assert products["B9"]["first_seen_at"] is None
    # 2014 has no `verified`: every review is a purchase, at the product's price.
    assert tables["order_lines"]["unit_price"].to_list() == [12.5]
    refused = pl.read_parquet(tmp_path / "out" / "products" / IMPORT_QUARANTINE_FILE)
    assert refused["rule"].to_list() == ["duplicate_key", "malformed_json"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12.5, 12.5), ("$7.99", 7.99), ("$1,299.99", 1299.99), ("", None), ("$5.99 - $10.99", None),
     ("var aPageStart = (new Date()).getTime();", None), (-1.0, None), (None, None)],
)  # fmt: skip
def test_price_is_a_single_amount_or_unknown(value, expected):
    assert parse_price(value) == expected


def test_unreadable_review_file_is_refused_whole(tmp_path):
    source = tmp_path / "reviews.json.gz"
    source.write_bytes(gzip.compress(b'{"a": 1}\n' * 100)[:30])
    with pytest.raises(ValueError, match="reviews.json.gz"):
        import_amazon_reviews(source, tmp_path / "out")


# --- the real files ----------------------------------------------------------------------------


def independent_amazon_count(path) -> dict[str, int]:
    """Lines, distinct reviews (same reviewer, product, time, rating, summary, text), reviewers."""
    lines, keys, reviewers = 0, Counter(), set()
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for text in handle:
            record = json.loads(text)
            lines += 1
            reviewers.add(record["reviewerID"])
            keys[
                tuple(record.get(k) for k in ("reviewerID", "asin", "unixReviewTime", "overall"))
                + (record.get("summary"), record.get("reviewText"))
            ] += 1
    return {"lines": lines, "reviews": len(keys), "reviewers": len(reviewers)}


@pytest.fixture(scope="module")
def amazon_landing(tmp_path_factory):
    source = require(AMAZON_BEAUTY)
    out_dir = tmp_path_factory.mktemp("amazon_beauty")
    return source, out_dir, import_amazon_reviews(source, out_dir)


def test_real_amazon_file_row_accounting(amazon_landing):
    source, out_dir, counts = amazon_landing
    expected = independent_amazon_count(source)
    assert expected["lines"] == 5_269  # the data README's figure

    tables = read_outputs(out_dir)
    refused = pl.read_parquet(out_dir / "reviews" / IMPORT_QUARANTINE_FILE)
    assert counts["source_lines"] == expected["lines"]
    assert tables["reviews"].height + refused.height == expected["lines"]
    assert tables["reviews"].height == expected["reviews"]
    # README: 1,053 lines repeat reviewer, product, time and text; 3 of them carry another
    # summary (another variant's review) and are kept as reviews of their own.
    assert refused["rule"].value_counts().rows() == [("exact_duplicate", 1_050)]
    assert tables["reviews"]["review_id"].is_unique().all()
    assert tables["customers"].height == expected["reviewers"]
    assert tables["products"].height == 85


def test_real_amazon_import_has_no_reviewer_name(amazon_landing):
    source, out_dir, _ = amazon_landing
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        names = {json.loads(line).get("reviewerName") for line in handle} - {None, ""}
    # Free text is what reviewers wrote (one review's summary is just "Michelle", also a
    # reviewer's name): it stays in dbt staging. Every other text value must not be a name.
    free_text = {("reviews.parquet", "title"), ("reviews.parquet", "body")}
    for path in [*out_dir.glob("*.parquet"), *out_dir.glob("*/*.parquet")]:
        frame = pl.read_parquet(path)
        for column in frame.select(pl.col(pl.String)).columns:
            if (path.name, column) in free_text:
                continue
            if column == "raw_values":  # refused lines, as JSON without the name field
                assert not frame[column].str.contains('"reviewerName"').any()
                continue
            assert not set(frame[column].drop_nulls().to_list()) & names, (path.name, column)


def test_real_amazon_import_ingests_with_every_line_accounted_for(amazon_landing):
    source, out_dir, counts = amazon_landing
    report = ingest(out_dir)
    files = {f.source_file: f for f in report.files}
    for report_file in report.files:
        assert report_file.received_rows == report_file.loaded_rows + report_file.quarantined_rows
    review_lines = (
        files["reviews.parquet"].received_rows
        + files[f"reviews/{IMPORT_QUARANTINE_FILE}"].received_rows
    )
    assert review_lines == counts["source_lines"] == 5_269
    assert files["reviews.parquet"].loaded_rows == counts["reviews"]
    # No metadata file: prices are unknown. The contract allows an unknown price, so every
    # purchase line loads (with a NULL price) and the shop can be trained on.
    lines = files["order_lines.parquet"]
    assert lines.loaded_rows == lines.received_rows == counts["order_lines"] > 0
    assert lines.quarantined_rows == 0
    with duckdb.connect(str(paths().warehouse), read_only=True) as con:
        assert (
            con.execute("select count(*) from raw.order_lines where unit_price is null").fetchall()[
                0
            ][0]
            == counts["order_lines"]
        )
    with duckdb.connect(str(paths().warehouse), read_only=True) as con:
        quarantined = con.execute(
            "select count(*) from raw.quarantine where entity = 'reviews'"
        ).fetchall()[0][0]
    assert quarantined == 1_050


def test_real_womens_clothing_row_accounting(tmp_path):
    source = require(WOMENS_CLOTHING)
    counts = import_womens_clothing(source, tmp_path / "out")

    tables = read_outputs(tmp_path / "out", ("customers", "products", "reviews"))
    refused = pl.read_parquet(tmp_path / "out" / "reviews" / IMPORT_QUARANTINE_FILE)
    assert counts["source_lines"] == 23_486  # the data README's figure
    assert tables["reviews"].height + refused.height == 23_486
    # One text repeated on the same product by a same-aged reviewer (records 9448 and 21889).
    assert refused.select("source_row", "rule").rows() == [(21_889, "exact_duplicate")]
    assert tables["products"].height == 1_206
    assert tables["customers"]["customer_id"].to_list() == [PLACEHOLDER_CUSTOMER_ID]
    assert tables["customers"]["marketing_opt_in"].to_list() == [False]
    assert tables["reviews"]["created_at"].n_unique() == 1
    assert tables["reviews"]["review_id"].is_unique().all()

    report = ingest(tmp_path / "out")
    files = {f.source_file: f for f in report.files}
    assert files["reviews.parquet"].loaded_rows == 23_485
    assert files[f"reviews/{IMPORT_QUARANTINE_FILE}"].quarantined_rows == 1


def test_womens_clothing_malformed_records_are_quarantined(tmp_path):
    header = ",Clothing ID,Age,Title,Review Text,Rating,Recommended IND,Positive Feedback Count,Division Name,Department Name,Class Name"
    text = "\n".join(
        [
            header,
            '0,767,33,,"Soft, true to size",4,1,0,Initmates,Intimate,Intimates',
            "1,767,33,,Too short,2,1,0,General,Dresses,Dresses,EXTRA",
            "2,,40,,No product,5,1,0,General,Dresses,Dresses",
            "3,767,40,,Half a star,4.5,1,0,General,Dresses,Dresses",
            "4,767,40,,Out of range,0,1,0,General,Dresses,Dresses",
        ]
    )
    source = tmp_path / "wc.csv"
    source.write_text(text)
    counts = import_womens_clothing(source, tmp_path / "out", reviewed_at="2017-06-30")

    assert counts["reviews"] == 1 and counts["refused_lines"] == 4
    refused = pl.read_parquet(tmp_path / "out" / "reviews" / IMPORT_QUARANTINE_FILE)
    assert refused.select("source_row", "rule").rows() == [
        (2, "wrong_column_count"),
        (3, "missing_value"),
        (4, "bad_integer"),
        (5, "rating_out_of_range"),
    ]
    review = pl.read_parquet(tmp_path / "out" / "reviews.parquet").row(0, named=True)
    assert review["review_id"] == "WC00000"
    assert review["body"] == "Soft, true to size"
    assert str(review["created_at"]) == "2017-06-30 00:00:00"
