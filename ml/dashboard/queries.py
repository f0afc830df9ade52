"""The dashboard's figures: one function per page, over an open snapshot connection.

Each ``*_page`` function takes a read-only DuckDB connection to the published snapshot
and returns plain data (pandas DataFrames and scalars) for one page, so it can be tested
without a browser and cached by snapshot version. Tables that only some snapshots carry
(quarantine counts, review insights) come back as None when absent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

from ml.dashboard.snapshot import frame, has_table

# Optional tables the dashboard shows when a snapshot carries them.
QUARANTINE_TABLE = "quarantine_summary"  # entity, rule, rows
REVIEW_INSIGHTS_TABLE = "product_review_insights"  # product_id, ...
# Runs shown on the run-health page.
RUNS_SHOWN = 10


@dataclass
class LatestRun:
    """The run whose snapshot is live (the last row of ``pipeline_runs``).

    ``serving_model`` / ``serving_version`` are those of the published recommendations:
    a later run that only refreshed campaign results carries no model of its own.
    """

    run_id: str
    logical_date: object
    started_at: object
    finished_at: object
    total_seconds: float | None
    serving_model: str | None = None
    serving_version: str | None = None


def serving_model(con: duckdb.DuckDBPyConnection) -> tuple[str | None, str | None]:
    """``(model_name, model_version)`` behind the published recommendations."""
    row = con.execute(
        "SELECT model_name, model_version FROM recommendations "
        "GROUP BY ALL ORDER BY count(*) DESC, model_version DESC LIMIT 1"
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def latest_run(con: duckdb.DuckDBPyConnection) -> LatestRun | None:
    """The run that published this snapshot, or None when ``pipeline_runs`` is empty."""
    row = con.execute(
        "SELECT run_id, logical_date, started_at, finished_at, total_seconds "
        "FROM pipeline_runs ORDER BY finished_at DESC, run_id DESC LIMIT 1"
    ).fetchone()
    return LatestRun(*row, *serving_model(con)) if row else None


# --------------------------------------------------------------------------- run health


@dataclass
class HealthPage:
    runs: pd.DataFrame
    table_rows: pd.DataFrame
    stage_seconds: pd.DataFrame
    quarantine: pd.DataFrame | None


def health_page(con: duckdb.DuckDBPyConnection, runs: int = RUNS_SHOWN) -> HealthPage:
    """Last runs, rows per published table, stage times per run, quarantine by rule."""
    recent = (
        f"(SELECT * FROM pipeline_runs ORDER BY finished_at DESC, run_id DESC LIMIT {int(runs)})"
    )
    return HealthPage(
        runs=frame(
            con,
            "SELECT run_id, CAST(logical_date AS VARCHAR) AS logical_date, model_version, "
            "recommendations_rows, customer_segments_rows, "
            "round(total_seconds, 1) AS total_seconds, "
            "strftime(finished_at, '%Y-%m-%d %H:%M:%S') AS finished_at_utc "
            f"FROM {recent} ORDER BY finished_at DESC, run_id DESC",
        ),
        table_rows=frame(
            con,
            "SELECT unnest(map_keys(row_counts)) AS table_name, "
            "unnest(map_values(row_counts)) AS rows FROM (SELECT row_counts FROM pipeline_runs "
            "ORDER BY finished_at DESC, run_id DESC LIMIT 1)",
        ).sort_values("table_name", ignore_index=True),
        stage_seconds=frame(
            con,
            "SELECT run_id, CAST(logical_date AS VARCHAR) AS logical_date, finished_at, "
            "unnest(map_keys(stage_seconds)) AS stage, "
            "unnest(map_values(stage_seconds)) AS seconds "
            f"FROM {recent} ORDER BY finished_at, stage",
        ),
        quarantine=(
            frame(
                con,
                f"SELECT entity, rule, sum(rows) AS rows FROM {QUARANTINE_TABLE} "
                "GROUP BY entity, rule ORDER BY rows DESC, entity, rule",
            )
            if has_table(con, QUARANTINE_TABLE)
            else None
        ),
    )


# --------------------------------------------------------------------------- segments


@dataclass
class SegmentsPage:
    customers: int
    rfm_sizes: pd.DataFrame
    rfm_grid: pd.DataFrame
    clusters: pd.DataFrame
    affinity_categories: pd.DataFrame


def segments_page(con: duckdb.DuckDBPyConnection) -> SegmentsPage:
    """RFM segment sizes, the recency x frequency grid, behavioural cluster profiles."""
    return SegmentsPage(
        customers=con.execute("SELECT count(*) FROM customer_segments").fetchall()[0][0],
        rfm_sizes=frame(
            con,
            "SELECT coalesce(rfm_segment, 'no purchases yet') AS rfm_segment, "
            "count(*) AS customers FROM customer_segments GROUP BY 1 ORDER BY 2 DESC, 1",
        ),
        rfm_grid=frame(
            con,
            "SELECT s.r_score, s.f_score, count(*) AS customers, "
            "round(avg(f.monetary), 2) AS mean_monetary "
            "FROM customer_segments s LEFT JOIN customer_features f USING (customer_id) "
            "WHERE s.r_score IS NOT NULL AND s.f_score IS NOT NULL "
            "GROUP BY 1, 2 ORDER BY 1, 2",
        ),
        clusters=frame(
            con,
            "SELECT cluster_id, cluster_name, customers, round(100 * share, 1) AS share_pct, "
            "round(mean_recency_days, 1) AS mean_recency_days, "
            "round(mean_frequency, 2) AS mean_frequency, round(mean_monetary, 2) AS mean_monetary, "
            "round(mean_avg_order_value, 2) AS mean_avg_order_value, top_categories, "
            "description FROM cluster_profiles ORDER BY cluster_id",
        ),
        affinity_categories=frame(
            con,
            "SELECT top_affinity_category AS category, count(*) AS customers "
            "FROM customer_segments WHERE top_affinity_category IS NOT NULL "
            "GROUP BY 1 ORDER BY 2 DESC, 1",
        ),
    )


# --------------------------------------------------------------------------- customer lookup


@dataclass
class CustomerPage:
    customer_id: str
    found: bool
    profile: dict = field(default_factory=dict)
    segment: dict = field(default_factory=dict)
    recommendations: pd.DataFrame | None = None
    campaigns: pd.DataFrame | None = None


def default_customer(con: duckdb.DuckDBPyConnection) -> str | None:
    """A customer to show first: the first one (by id) with recommendations."""
    row = con.execute("SELECT min(customer_id) FROM recommendations").fetchone()
    return row[0] if row else None


def _one_row(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> dict:
    result = con.execute(sql, params)
    row = result.fetchone()
    return dict(zip([d[0] for d in result.description], row, strict=True)) if row else {}


def customer_page(con: duckdb.DuckDBPyConnection, customer_id: str) -> CustomerPage:
    """Profile, segment, recommendations with reasons and campaigns of one customer."""
    customer_id = customer_id.strip()
    profile = _one_row(
        con,
        "SELECT recency_days, frequency, round(monetary, 2) AS monetary, "
        "round(avg_order_value, 2) AS avg_order_value, tenure_days, distinct_categories, "
        "top_category, views_30d, carts_30d, review_count, marketing_opt_in, country, "
        "first_order_at, last_order_at, as_of_date FROM customer_features WHERE customer_id = ?",
        [customer_id],
    )
    segment = _one_row(
        con,
        "SELECT rfm_segment, r_score, f_score, m_score, cluster_name, top_affinity_category "
        "FROM customer_segments WHERE customer_id = ?",
        [customer_id],
    )
    recommendations = frame(
        con,
        "SELECT rank, product_name, category, price, round(score, 4) AS score, reason, "
        "model_version FROM recommendations WHERE customer_id = ? ORDER BY rank",
        [customer_id],
    )
    campaigns = frame(
        con,
        'SELECT campaign_id, campaign_name, "group", channel, '
        "CAST(contact_date AS VARCHAR) AS contact_date, message "
        "FROM campaign_audiences WHERE customer_id = ? ORDER BY contact_date, campaign_id",
        [customer_id],
    )
    found = bool(profile or segment or len(recommendations))
    return CustomerPage(customer_id, found, profile, segment, recommendations, campaigns)


# --------------------------------------------------------------------------- products


@dataclass
class ProductsPage:
    products: pd.DataFrame
    product_id: str | None
    similar: pd.DataFrame | None
    most_recommended: pd.DataFrame
    review_insights: pd.DataFrame | None


def products_page(
    con: duckdb.DuckDBPyConnection, product_id: str | None = None, top: int = 15
) -> ProductsPage:
    """Similar products of one product (default: the most recommended), top recommended products.

    ``review_insights`` is None when the snapshot has no review-insight table, and the
    chosen product's rows otherwise.
    """
    products = frame(
        con,
        "SELECT DISTINCT product_id, product_name FROM similar_products ORDER BY product_id",
    )
    most_recommended = frame(
        con,
        "SELECT product_id, any_value(product_name) AS product_name, "
        "any_value(category) AS category, count(*) AS customers, "
        "round(avg(rank), 1) AS mean_rank FROM recommendations "
        f"GROUP BY product_id ORDER BY customers DESC, product_id LIMIT {int(top)}",
    )
    if product_id is None or product_id not in set(products["product_id"]):
        ranked = [p for p in most_recommended["product_id"] if p in set(products["product_id"])]
        product_id = (
            ranked[0] if ranked else (products["product_id"].iloc[0] if len(products) else None)
        )
    similar = (
        frame(
            con,
            "SELECT rank, similar_product_name, similar_product_category AS category, "
            "similar_product_price AS price, round(score, 4) AS score, method, reason "
            "FROM similar_products WHERE product_id = ? ORDER BY rank",
            [product_id],
        )
        if product_id is not None
        else None
    )
    insights = None
    if product_id is not None and has_table(con, REVIEW_INSIGHTS_TABLE):
        insights = frame(
            con, f"SELECT * FROM {REVIEW_INSIGHTS_TABLE} WHERE product_id = ?", [product_id]
        )
    return ProductsPage(products, product_id, similar, most_recommended, insights)


# --------------------------------------------------------------------------- campaigns


@dataclass
class CampaignsPage:
    audiences: pd.DataFrame
    messages: pd.DataFrame
    results: pd.DataFrame


def campaigns_page(con: duckdb.DuckDBPyConnection) -> CampaignsPage:
    """Audience sizes per campaign and group, a sample message each, measured lift."""
    return CampaignsPage(
        audiences=frame(
            con,
            "SELECT campaign_id, any_value(campaign_name) AS campaign_name, "
            "any_value(channel) AS channel, CAST(min(contact_date) AS VARCHAR) AS contact_date, "
            "count(*) FILTER (WHERE \"group\" = 'treatment') AS treatment, "
            "count(*) FILTER (WHERE \"group\" = 'control') AS control, count(*) AS audience "
            "FROM campaign_audiences GROUP BY campaign_id ORDER BY contact_date, campaign_id",
        ),
        messages=frame(
            con,
            "SELECT campaign_id, arg_min(message, rank) AS sample_message "
            "FROM campaign_audiences WHERE \"group\" = 'treatment' "
            "GROUP BY campaign_id ORDER BY campaign_id",
        ),
        results=frame(
            con,
            "SELECT campaign_id, campaign_name, channel, "
            "CAST(audience_date AS VARCHAR) AS audience_date, window_end, "
            "treatment_size, control_size, treatment_conversion_rate, control_conversion_rate, "
            "absolute_lift, lift_ci_low, lift_ci_high, relative_lift, p_value, "
            "revenue_lift_per_customer, sample_too_small, conclusion "
            "FROM campaign_results ORDER BY campaign_id",
        ),
    )


# --------------------------------------------------------------------------- model


def serving_history(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Which model version served each published run (from ``pipeline_runs``)."""
    return frame(
        con,
        "SELECT CAST(logical_date AS VARCHAR) AS logical_date, run_id, model_name, "
        "model_version, "
        "strftime(finished_at, '%Y-%m-%d %H:%M:%S') AS finished_at_utc "
        "FROM pipeline_runs ORDER BY finished_at DESC, run_id DESC",
    )
