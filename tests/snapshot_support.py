"""A small analyst snapshot with the published tables' columns, for fast reader tests.

The real snapshot comes from a pipeline run (minutes); tests of code that only *reads*
it (``affinity query``, the dashboard's queries) use this file instead, whose every
figure the tests can work out by hand. ``tests/test_dashboard_browser.py`` reads a real one.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

CUSTOMERS = [f"C{i:07d}" for i in range(1, 31)]  # 30 customers
PRODUCTS = [f"P{i:06d}" for i in range(1, 7)]  # 6 products
RECS_PER_CUSTOMER = 3


def write_snapshot(path: Path, *, quarantine: bool = False) -> Path:
    """Write the snapshot file at ``path`` (parents created) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute(
            """
            CREATE TABLE pipeline_runs AS SELECT * FROM (VALUES
              ('run-1', DATE '2026-10-30', 'affinity-recommender', '1', 90, 30,
               MAP {'recommendations': 90, 'customer_segments': 30, 'old_table': 7},
               MAP {'ingest': 1.5, 'train': 10.0, 'publish': 0.5}, 12.0,
               TIMESTAMP '2026-10-31 01:00:00', TIMESTAMP '2026-10-31 01:00:12'),
              ('run-2', DATE '2026-10-31', 'affinity-recommender', '2', 90, 30,
               MAP {'recommendations': 90, 'customer_segments': 30},
               MAP {'ingest': 2.0, 'train': 20.0, 'publish': 1.0}, 23.0,
               TIMESTAMP '2026-11-01 01:00:00', TIMESTAMP '2026-11-01 01:00:23')
            ) AS t(run_id, logical_date, model_name, model_version, recommendations_rows,
                   customer_segments_rows, row_counts, stage_seconds, total_seconds,
                   started_at, finished_at)
            """
        )
        # Customer i gets products (i, i+1, i+2) mod 6 at ranks 1..3; a list, a NaN, a NULL.
        con.execute(
            f"""
            CREATE TABLE recommendations AS
            SELECT 'C' || lpad(c::VARCHAR, 7, '0') AS customer_id, r AS rank,
                   'P' || lpad((((c + r - 2) % 6) + 1)::VARCHAR, 6, '0') AS product_id,
                   'Product ' || (((c + r - 2) % 6) + 1) AS product_name,
                   CASE WHEN c = 2 AND r = 1 THEN 'nan'::DOUBLE ELSE 1.0 / r END AS score,
                   'because you viewed Product ' || (c % 6 + 1) AS reason,
                   'Category ' || (((c + r - 2) % 6) % 2) AS category,
                   CASE WHEN c = 3 THEN NULL ELSE 9.99 END AS price,
                   'affinity-recommender' AS model_name, '2' AS model_version,
                   ['x', 'y'] AS tags, DATE '2026-10-31' AS logical_date
            FROM range(1, 31) AS a(c), range(1, {RECS_PER_CUSTOMER + 1}) AS b(r)
            """
        )
        con.execute(
            """
            CREATE TABLE similar_products AS
            SELECT 'P' || lpad(p::VARCHAR, 6, '0') AS product_id, r AS rank,
                   'P' || lpad(((p + r - 1) % 6 + 1)::VARCHAR, 6, '0') AS similar_product_id,
                   1.0 / r AS score, 'bought together' AS reason,
                   'Product ' || p AS product_name,
                   'Product ' || ((p + r - 1) % 6 + 1) AS similar_product_name,
                   'Category 0' AS similar_product_category, 5.0 AS similar_product_price,
                   'hybrid' AS method
            FROM range(1, 7) AS a(p), range(1, 3) AS b(r)
            """
        )
        # Customers 1-10 never bought (no RFM scores); 11-30 on a small grid.
        con.execute(
            """
            CREATE TABLE customer_segments AS
            SELECT 'C' || lpad(c::VARCHAR, 7, '0') AS customer_id,
                   CASE WHEN c <= 10 THEN NULL WHEN c <= 20 THEN 'Champions' ELSE 'At Risk' END
                       AS rfm_segment,
                   CASE WHEN c <= 10 THEN 1 ELSE 0 END AS cluster_id,
                   CASE WHEN c <= 10 THEN 'no purchases yet' ELSE 'regular spenders' END
                       AS cluster_name,
                   CASE WHEN c <= 10 THEN NULL WHEN c <= 20 THEN 5 ELSE 1 END AS r_score,
                   CASE WHEN c <= 10 THEN NULL ELSE (c % 2) + 1 END AS f_score,
                   CASE WHEN c <= 10 THEN NULL ELSE 3 END AS m_score,
                   'Category ' || (c % 2) AS top_affinity_category, 0.5 AS top_affinity_score
            FROM range(1, 31) AS a(c)
            """
        )
        con.execute(
            """
            CREATE TABLE customer_features AS
            SELECT 'C' || lpad(c::VARCHAR, 7, '0') AS customer_id,
                   CASE WHEN c <= 10 THEN NULL ELSE c END AS recency_days,
                   CASE WHEN c <= 10 THEN 0 ELSE 2 END AS frequency,
                   CASE WHEN c <= 10 THEN 0.0 ELSE 10.0 * c END AS monetary,
                   10.0 AS avg_order_value, 100 AS tenure_days, 2 AS distinct_categories,
                   'Category 0' AS top_category, 3 AS views_30d, 1 AS carts_30d,
                   0 AS review_count, c % 3 <> 0 AS marketing_opt_in, 'DE' AS country,
                   TIMESTAMP '2026-09-01 10:00:00' AS first_order_at,
                   TIMESTAMP '2026-10-01 10:00:00' AS last_order_at, DATE '2026-10-31' AS as_of_date
            FROM range(1, 31) AS a(c)
            """
        )
        con.execute(
            """
            CREATE TABLE cluster_profiles AS SELECT * FROM (VALUES
              (0, 'regular spenders', 20, 0.667, 20.5, 2.0, 205.0, 10.0, 'Category 0',
               'Buyers compared with all buyers: typical recency'),
              (1, 'no purchases yet', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               'Customers without any order in the data')
            ) AS t(cluster_id, cluster_name, customers, share, mean_recency_days,
                   mean_frequency, mean_monetary, mean_avg_order_value, top_categories,
                   description)
            """
        )
        # Campaign CMP001: customers 1-12, every third one in control.
        con.execute(
            """
            CREATE TABLE campaign_audiences AS
            SELECT 'CMP001' AS campaign_id, 'Autumn picks' AS campaign_name,
                   'C' || lpad(c::VARCHAR, 7, '0') AS customer_id,
                   CASE WHEN c % 3 = 0 THEN 'control' ELSE 'treatment' END AS "group",
                   c AS rank, 'email' AS channel, DATE '2026-11-01' AS contact_date,
                   CASE WHEN c % 3 = 0 THEN NULL ELSE 'Hi {{first_name}}, look at #' || c END
                       AS message
            FROM range(1, 13) AS a(c)
            """
        )
        con.execute(
            """
            CREATE TABLE campaign_results AS SELECT * FROM (VALUES
              ('CMP001', 'Autumn picks', 'email', DATE '2026-10-01',
               TIMESTAMP '2026-10-15 00:00:00', 8, 4, 0.5, 0.25, 0.25, -0.1, 0.6, 1.0, 0.4,
               3.5, true, 'sample too small')
            ) AS t(campaign_id, campaign_name, channel, audience_date, window_end,
                   treatment_size, control_size, treatment_conversion_rate,
                   control_conversion_rate, absolute_lift, lift_ci_low, lift_ci_high,
                   relative_lift, p_value, revenue_lift_per_customer, sample_too_small,
                   conclusion)
            """
        )
        if quarantine:
            con.execute(
                """
                CREATE TABLE quarantine_summary AS SELECT * FROM (VALUES
                  ('orders', 'bad_number', 3), ('orders', 'bad_number', 2),
                  ('events', 'unknown_event_type', 4)
                ) AS t(entity, rule, rows)
                """
            )
    return path
