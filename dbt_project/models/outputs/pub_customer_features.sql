-- Published customer features: marts.customer_features as it is (no PII: ids, counts,
-- amounts, country and the opt-in flag). A separate model so the published contract is
-- owned here and a change in the mart breaks this build, not an analyst's query.
select
    customer_id,
    recency_days,
    frequency,
    monetary,
    avg_order_value,
    tenure_days,
    distinct_categories,
    top_category,
    avg_days_between_orders,
    views_30d,
    carts_30d,
    review_count,
    mean_rating,
    negative_reviews_30d,
    last_negative_review_at,
    marketing_opt_in,
    country,
    first_order_at,
    last_order_at,
    as_of_date

from {{ ref('customer_features') }}
