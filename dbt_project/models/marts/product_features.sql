-- One row per merchandise product (dim_products.is_product) as of the run date.
{#- Trend windows are fixed so the column names say what they hold. #}
{%- set recent_days = 7 %}
{%- set baseline_days = 28 %}
with

products as (

    select * from {{ ref('dim_products') }}
    where is_product

),

order_lines as (

    select * from {{ ref('fct_order_lines') }}

),

sales as (

    select
        product_id,
        count(distinct customer_id) filter (where net_quantity > 0) as unique_buyers,
        sum(net_quantity) as units_sold,
        {{ exact_sum('net_revenue') }} as revenue,
        sum(quantity) filter (where quantity > 0) as ordered_units,
        -- Units that did not stick: positive lines of cancelled/returned orders plus
        -- reversal (negative) lines.
        coalesce(sum(quantity) filter (where quantity > 0 and order_status <> 'placed'), 0)
            - coalesce(sum(quantity) filter (where quantity < 0), 0) as reversed_units,
        sum(net_quantity) filter (
            where ordered_at >= {{ dbt.dateadd('day', -recent_days, as_of_end()) }}
        ) as units_recent,
        sum(net_quantity) filter (
            where ordered_at >= {{ dbt.dateadd('day', -(recent_days + baseline_days), as_of_end()) }}
                and ordered_at < {{ dbt.dateadd('day', -recent_days, as_of_end()) }}
        ) as units_baseline

    from order_lines
    group by product_id

),

product_sessions as (

    select
        product_id,
        session_id,
        count(*) filter (where event_type = 'view') as views,
        count(*) filter (where event_type = 'add_to_cart') as add_to_carts

    from {{ ref('fct_events') }}
    where product_id is not null
    group by product_id, session_id

),

funnel as (

    select
        product_id,
        sum(views) as views,
        sum(add_to_carts) as add_to_carts,
        count(*) filter (where views > 0) as view_sessions,
        count(*) filter (where views > 0 and add_to_carts > 0) as view_cart_sessions

    from product_sessions
    group by product_id

),

viewers as (

    select distinct product_id, customer_id
    from {{ ref('fct_events') }}
    where event_type = 'view' and customer_id is not null and product_id is not null

),

buyers as (

    select distinct product_id, customer_id
    from order_lines
    where net_quantity > 0 and customer_id is not null

),

viewer_conversion as (

    select
        viewers.product_id,
        count(*) as viewers,
        count(buyers.customer_id) as viewers_who_bought

    from viewers
    left join buyers
        on viewers.product_id = buyers.product_id
        and viewers.customer_id = buyers.customer_id
    group by viewers.product_id

),

reviews as (

    {{ review_counts('product_id') }}

),

review_insights as (

    select
        product_id,
        avg_sentiment,
        negative_share,
        trend_30d,
        is_turning_negative,
        top_praised_aspect,
        top_complaint_aspect
    from {{ ref('product_review_insights') }}

),

price_bands as (

    -- Quintile of list price over the catalogue, 1 + floor(5 * cheaper / priced products):
    -- equal prices share a band.
    select
        product_id,
        cast(1 + {{ int_div('5 * (rank() over (order by price) - 1)', 'count(*) over ()') }} as integer)
            as price_quintile
    from products
    where price is not null

),

final as (

    select
        products.product_id,
        products.product_name,
        products.category,
        products.category_source,
        products.brand,
        products.price,
        products.is_active,
        products.is_recommendable,
        case price_bands.price_quintile
            when 1 then 'budget'
            when 2 then 'economy'
            when 3 then 'mid'
            when 4 then 'upper'
            when 5 then 'premium'
        end as price_band,
        coalesce(sales.unique_buyers, 0) as unique_buyers,
        cast(coalesce(sales.units_sold, 0) as bigint) as units_sold,
        coalesce(sales.revenue, 0) as revenue,
        cast(coalesce(funnel.views, 0) as bigint) as views,
        cast(coalesce(funnel.add_to_carts, 0) as bigint) as add_to_carts,
        coalesce(funnel.view_sessions, 0) as view_sessions,
        funnel.view_cart_sessions / nullif(funnel.view_sessions, 0) as cart_conversion_rate,
        viewer_conversion.viewers_who_bought / nullif(viewer_conversion.viewers, 0)
            as purchase_conversion_rate,
        least(1.0, sales.reversed_units / nullif(sales.ordered_units, 0)) as return_rate,
        coalesce(reviews.review_count, 0) as review_count,
        reviews.mean_rating,
        review_insights.avg_sentiment,
        review_insights.negative_share,
        review_insights.trend_30d as sentiment_trend_30d,
        coalesce(review_insights.is_turning_negative, false) as is_turning_negative,
        review_insights.top_praised_aspect,
        review_insights.top_complaint_aspect,
        products.first_seen_at,
        coalesce(
            products.first_seen_at >= {{ dbt.dateadd('day', '-' ~ var('new_product_days'), as_of_end()) }},
            false
        ) as is_new,
        cast(coalesce(sales.units_recent, 0) as bigint) as units_last_7d,
        cast(coalesce(sales.units_baseline, 0) as bigint) as units_prev_28d,
        -- Daily rate of the recent window over the daily rate of the baseline window.
        case
            when sales.units_baseline > 0
                then (coalesce(sales.units_recent, 0) / cast({{ recent_days }} as double))
                    / (sales.units_baseline / cast({{ baseline_days }} as double))
        end as trend_ratio,
        {{ as_of_date() }} as as_of_date

    from products
    left join sales on products.product_id = sales.product_id
    left join funnel on products.product_id = funnel.product_id
    left join viewer_conversion on products.product_id = viewer_conversion.product_id
    left join reviews on products.product_id = reviews.product_id
    left join review_insights on products.product_id = review_insights.product_id
    left join price_bands on products.product_id = price_bands.product_id

)

select * from final
