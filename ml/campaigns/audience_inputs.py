"""What audience building reads: eligible customers, products, recommendations, contacts."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from datetime import date, timedelta

import polars as pl

from ml.campaigns.definitions import CampaignConfig, category_key
from ml.warehouse.tables import ML_SCHEMA, latest_partition, read_frame, table_exists

log = logging.getLogger(__name__)

AUDIENCE_TABLE = "campaign_audiences"


# Reason codes of ml.recommendations in words (as the dbt mart `recommendations` says them).
def load_eligible(con, day: date) -> pl.DataFrame:
    """Opted-in customers (erased ones are gone from the marts) with their features, RFM segment and cluster.

    One row per customer, sorted by id; the feature columns are those of
    ``marts.customer_features``.
    """
    customers = read_frame(
        con,
        """
        SELECT customer_id FROM marts.dim_customers
        WHERE coalesce(marketing_opt_in, false)
        ORDER BY customer_id
        """,
    )
    features = read_frame(con, "SELECT * FROM marts.customer_features")
    features = features.drop([c for c in ("marketing_opt_in",) if c in features.columns])
    segments = (
        read_frame(con, "SELECT customer_id, segment FROM marts.customer_rfm_segments")
        if table_exists(con, "marts", "customer_rfm_segments")
        else pl.DataFrame(schema={"customer_id": pl.String, "segment": pl.String})
    )
    cluster_date = latest_partition(con, "customer_clusters", day)
    clusters = (
        read_frame(
            con,
            f"SELECT customer_id, cluster_name FROM {ML_SCHEMA}.customer_clusters "
            "WHERE logical_date = ?",
            [cluster_date],
        )
        if cluster_date is not None
        else pl.DataFrame(schema={"customer_id": pl.String, "cluster_name": pl.String})
    )
    return (
        customers.join(features, on="customer_id", how="left")
        .join(segments, on="customer_id", how="left")
        .join(clusters, on="customer_id", how="left")
        .sort("customer_id")
    )


def load_products(con) -> pl.DataFrame:
    """``product_id, product_name, category, price, eligible`` of the catalogue."""
    return read_frame(
        con,
        """
        SELECT product_id, coalesce(product_name, product_id) AS product_name, category, price,
               is_recommendable AS eligible
        FROM marts.dim_products ORDER BY product_id
        """,
    )


def load_recommendations(
    con,
    day: date,
    products: pl.DataFrame,
    customer_ids: list[str],
    *,
    featured: int | None = None,
    categories: Collection[str] = (),
) -> pl.DataFrame:
    """The latest recommendations up to ``day`` of ``customer_ids``, with names and reasons.

    With ``featured``, only the rows a campaign can feature: each customer's first
    ``featured`` overall, and first ``featured`` within each of ``categories`` (matched
    without case, as :func:`~ml.campaigns.audiences.featured_products` does). At 100M
    events every row of 1.8M audience members, with its reason text, took 15 GB.
    """
    scored = latest_partition(con, "recommendations", day)
    if scored is None:
        log.warning("no ml.recommendations up to %s: audiences feature bestsellers", day)
        return pl.DataFrame(
            schema={
                "customer_id": pl.String,
                "rank": pl.Int32,
                "product_id": pl.String,
                "product_name": pl.String,
                "category": pl.String,
                "price": pl.Float64,
                "reason": pl.String,
            }
        )
    columns = "customer_id, rank, product_id, reason_code, reason_product_id, reason_context"
    members = f"""
        SELECT {columns}
        FROM {ML_SCHEMA}.recommendations
        WHERE logical_date = ? AND customer_id IN (SELECT customer_id FROM _audience_members)
    """
    registered = ["_audience_members"]
    if featured is not None:
        keys = {category_key(c) for c in categories}
        in_categories = products.filter(category_key(pl.col("category")).is_in(keys)).select(
            "product_id", category_key(pl.col("category")).alias("category_key")
        )
        registered.append("_featured_categories")
        members = f"""
            SELECT {columns} FROM (
                SELECT r.*, c.category_key,
                    row_number() OVER (PARTITION BY r.customer_id ORDER BY r.rank) AS overall,
                    row_number() OVER (
                        PARTITION BY r.customer_id, c.category_key ORDER BY r.rank
                    ) AS within_category
                FROM ({members}) AS r LEFT JOIN _featured_categories AS c USING (product_id)
            )
            WHERE overall <= {int(featured)}
               OR (category_key IS NOT NULL AND within_category <= {int(featured)})
        """
    try:
        # Only the audiences' customers: the full table is customers x N rows.
        con.register("_audience_members", pl.DataFrame({"customer_id": customer_ids}).to_arrow())
        if featured is not None:
            con.register("_featured_categories", in_categories.to_arrow())
        recs = read_frame(con, f"{members} ORDER BY customer_id, rank", [scored])
    finally:
        for name in registered:
            con.unregister(name)
    names = products.select("product_id", "product_name", "category", "price")
    recs = recs.join(names, on="product_id", how="left").join(
        names.select(
            pl.col("product_id").alias("reason_product_id"),
            pl.col("product_name").alias("reason_product_name"),
        ),
        on="reason_product_id",
        how="left",
    )
    texts = reason_texts(con)
    recs = recs.join(top_praised_aspects(con), on="product_id", how="left")
    return recs.with_columns(
        pl.col("product_name").fill_null(pl.col("product_id")),
        (reason_expr(texts) + praise_expr(texts)).alias("reason"),
    ).select("customer_id", "rank", "product_id", "product_name", "category", "price", "reason")


PRAISE_CODE = "praised_aspect"


def top_praised_aspects(con) -> pl.DataFrame:
    """``product_id, praised_aspect``: the most mentioned praised aspect of each product
    whose reviews are not turning negative (``marts.product_review_insights``; empty
    without it)."""
    if not table_exists(con, "marts", "product_review_insights"):
        return pl.DataFrame(schema={"product_id": pl.String, "praised_aspect": pl.String})
    return read_frame(
        con,
        """
        SELECT product_id, top_praised_aspect AS praised_aspect
        FROM marts.product_review_insights
        WHERE top_praised_aspect IS NOT NULL AND NOT is_turning_negative
        """,
    )


def praise_expr(templates: dict[str, str]) -> pl.Expr:
    """The clause a reason ends with when reviewers praise the product (else ``""``), e.g.
    ``; reviewers say "soft"``: the seed's ``praised_aspect`` wording, as the dbt mart
    ``recommendations`` appends it."""
    template = templates.get(PRAISE_CODE)
    if template is None or "{aspect}" not in template:
        return pl.lit("")
    before, after = template.split("{aspect}")
    return pl.concat_str(
        [pl.lit("; " + before), pl.col("praised_aspect"), pl.lit(after)]
    ).fill_null("")


def reason_texts(con) -> dict[str, str]:
    """``{reason_code: template}`` from the seed ``reason_texts`` (the one wording)."""
    if not table_exists(con, "seeds", "reason_texts"):
        raise LookupError(
            "seeds.reason_texts is not in the warehouse: run the dbt_features stage first"
        )
    return dict(con.execute("SELECT reason_code, template FROM seeds.reason_texts").fetchall())


def reason_expr(templates: dict[str, str]) -> pl.Expr:
    """A recommendation's reason in words, e.g. ``because you bought Oak mug``.

    The wording of the seed ``reason_texts``, filled like the dbt mart ``recommendations``
    fills its ``reason`` column.
    """
    code = pl.col("reason_code")
    fields = {
        "product": pl.coalesce("reason_product_name", "reason_product_id", pl.lit("it")),
        "context": pl.col("reason_context").fill_null(""),
    }
    expr = pl.when(False).then(pl.lit(None, pl.String))
    for reason_code, template in sorted(templates.items()):
        # Every placeholder filled, wherever it is ("{product} ... {context}" has two).
        pieces = re.split(r"(\{(?:" + "|".join(fields) + r")\})", template)
        parts = [
            fields[p[1:-1]] if p[1:-1] in fields and p.startswith("{") else pl.lit(p)
            for p in pieces
            if p
        ]
        expr = expr.when(code == reason_code).then(pl.concat_str(parts))
    return expr.otherwise(pl.lit("recommended for you"))


def load_bestsellers(con, products: pl.DataFrame) -> pl.DataFrame:
    """Recommendable products by distinct recent buyers (stand-ins for missing recs).

    ``marts.product_popularity`` as of the logical date; its window is the dbt var
    ``popularity_days``, the one place that sets it.
    """
    buyers = read_frame(
        con,
        """
        SELECT product_id, recent_buyers AS buyers
        FROM marts.product_popularity
        WHERE group_kind = 'overall' AND is_recommendable
        """,
    )
    return (
        products.filter(pl.col("eligible"))
        .join(buyers, on="product_id", how="left")
        .with_columns(pl.col("buyers").fill_null(0))
        .sort(["buyers", "product_id"], descending=[True, False])
    )


def prior_contacts(con, day: date, config: CampaignConfig) -> dict[str, int]:
    """Audiences each customer is in whose contact day is within ``cap_days - 1`` days.

    The run's own date is left out: its partition is being replaced.
    """
    if not table_exists(con, ML_SCHEMA, AUDIENCE_TABLE):
        return {}
    reach = config.cap_days - 1
    rows = con.execute(
        f"""
        SELECT customer_id, count(DISTINCT campaign_id) FROM {ML_SCHEMA}.{AUDIENCE_TABLE}
        WHERE logical_date BETWEEN ? AND ? AND logical_date <> ?
        GROUP BY customer_id
        """,
        [day - timedelta(days=reach), day + timedelta(days=reach), day],
    ).fetchall()
    return dict(rows)


def launched_before(con, day: date) -> dict[str, date]:
    """Campaigns whose audience an earlier run built: id -> first launch date."""
    if not table_exists(con, ML_SCHEMA, AUDIENCE_TABLE):
        return {}
    rows = con.execute(
        f"SELECT campaign_id, min(logical_date) FROM {ML_SCHEMA}.{AUDIENCE_TABLE} "
        "WHERE logical_date < ? GROUP BY campaign_id",
        [day],
    ).fetchall()
    return dict(rows)


def known_segments(con) -> set[str] | None:
    """Segment names of the RFM rule seed (``None`` when the seed is not loaded)."""
    if not table_exists(con, "seeds", "rfm_segment_rules"):
        return None
    names = {r[0] for r in con.execute("SELECT segment FROM seeds.rfm_segment_rules").fetchall()}
    return names | {"Unclassified"}
