-- One row per customer as of the run date. Purchase features count merchandise only
-- (dim_products.is_product); a "purchase order" is an order with a line of net quantity > 0.
with

customers as (

    select * from {{ ref('dim_customers') }}

),

products as (

    select product_id, category from {{ ref('dim_products') }}
    where is_product

),

purchase_lines as (

    select order_lines.*, products.category
    from {{ ref('fct_order_lines') }} as order_lines
    inner join products on order_lines.product_id = products.product_id
    where order_lines.customer_id is not null

),

purchases as (

    select
        customer_id,
        count(distinct order_id) filter (where net_quantity > 0) as frequency,
        {{ exact_sum('net_revenue') }} as monetary,
        min(ordered_at) filter (where net_quantity > 0) as first_order_at,
        max(ordered_at) filter (where net_quantity > 0) as last_order_at,
        count(distinct category) filter (where net_quantity > 0) as distinct_categories

    from purchase_lines
    group by customer_id

),

category_spend as (

    select customer_id, category, {{ exact_sum('net_revenue') }} as spend
    from purchase_lines
    group by customer_id, category

),

top_categories as (

    -- Highest net spend; ties go to the alphabetically first category.
    select customer_id, top_category
    from (
        select
            customer_id,
            category as top_category,
            row_number() over (partition by customer_id order by spend desc, category) as spend_rank
        from category_spend
        where spend > 0
    ) as ranked
    where spend_rank = 1

),

recent_events as (

    select
        customer_id,
        count(*) filter (where event_type = 'view') as views,
        count(*) filter (where event_type = 'add_to_cart') as carts

    from {{ ref('fct_events') }}
    where customer_id is not null
        and occurred_at >= {{ dbt.dateadd('day', '-' ~ var('recent_activity_days'), as_of_end()) }}
    group by customer_id

),

reviews as (

    {{ review_counts('customer_id') }}

),

negative_reviews as (

    -- Reviews the sentiment model reads as negative, written in the recent window
    -- (macros/review_signals.sql): these customers are unhappy right now.
    select
        customer_id,
        count(*) as negative_reviews_30d,
        max(created_at) as last_negative_review_at

    from {{ ref('stg_text__review_sentiment') }}
    where customer_id is not null
        and sentiment_label = 'negative'
        and created_at >= {{ review_recent_start() }}
        and created_at < {{ as_of_end() }}
    group by customer_id

),

final as (

    select
        customers.customer_id,
        cast({{ dbt.datediff('cast(purchases.last_order_at as date)', as_of_date(), 'day') }} as bigint) as recency_days,
        coalesce(purchases.frequency, 0) as frequency,
        coalesce(purchases.monetary, 0) as monetary,
        purchases.monetary / nullif(purchases.frequency, 0) as avg_order_value,
        cast({{ dbt.datediff('cast(customers.first_seen_at as date)', as_of_date(), 'day') }} as bigint) as tenure_days,
        coalesce(purchases.distinct_categories, 0) as distinct_categories,
        top_categories.top_category,
        case
            when purchases.frequency > 1
                then ({{ epoch_seconds('purchases.last_order_at') }} - {{ epoch_seconds('purchases.first_order_at') }})
                    / 86400.0 / (purchases.frequency - 1)
        end as avg_days_between_orders,
        coalesce(recent_events.views, 0) as views_30d,
        coalesce(recent_events.carts, 0) as carts_30d,
        coalesce(reviews.review_count, 0) as review_count,
        reviews.mean_rating,
        coalesce(negative_reviews.negative_reviews_30d, 0) as negative_reviews_30d,
        negative_reviews.last_negative_review_at,
        customers.marketing_opt_in,
        customers.country,
        purchases.first_order_at,
        purchases.last_order_at,
        {{ as_of_date() }} as as_of_date

    from customers
    left join purchases on customers.customer_id = purchases.customer_id
    left join top_categories on customers.customer_id = top_categories.customer_id
    left join recent_events on customers.customer_id = recent_events.customer_id
    left join reviews on customers.customer_id = reviews.customer_id
    left join negative_reviews on customers.customer_id = negative_reviews.customer_id

)

select * from final
