-- Distinct buyers of every merchandise product, overall and per RFM segment, customer
-- country and product category: all time up to the as-of moment and in the last
-- `popularity_days` days. The one popularity every consumer reads (cold-start lists, the
-- popularity baseline, campaign bestsellers, analysts).
{#- Read here, not in a macro, so unit tests can override it. #}
{%- set popularity_days = var('popularity_days') %}
with

products as (

    select product_id, category, is_recommendable from {{ ref('dim_products') }}
    where is_product

),

customers as (

    select customers.customer_id, customers.country, segments.segment
    from {{ ref('dim_customers') }} as customers
    left join {{ ref('customer_rfm_segments') }} as segments
        on customers.customer_id = segments.customer_id

),

buyers as (

    -- One row per buyer and product (purchases: merchandise lines with net quantity > 0).
    select
        events.customer_id,
        events.product_id,
        max(events.occurred_at) as last_bought_at

    from {{ ref('interaction_events') }} as events
    where events.event_kind = 'purchase'
        and events.occurred_at < {{ as_of_end() }}
    group by events.customer_id, events.product_id

),

buyer_groups as (

    -- Each buyer x product once per group the buyer (segment, country) or the product
    -- (category) belongs to; customers without a segment or country are only "overall".
    select 'overall' as group_kind, '' as group_value, buyers.*
    from buyers
    inner join customers on buyers.customer_id = customers.customer_id

    union all

    select 'segment', customers.segment, buyers.*
    from buyers
    inner join customers on buyers.customer_id = customers.customer_id
    where customers.segment is not null

    union all

    select 'country', customers.country, buyers.*
    from buyers
    inner join customers on buyers.customer_id = customers.customer_id
    where customers.country is not null

    union all

    select 'category', products.category, buyers.*
    from buyers
    inner join customers on buyers.customer_id = customers.customer_id
    inner join products on buyers.product_id = products.product_id

),

counted as (

    select
        group_kind,
        group_value,
        product_id,
        count(*) as buyers,
        -- Bought in [as_of_end - popularity_days, as_of_end): their last purchase is in it.
        count(*) filter (
            where last_bought_at >= {{ dbt.dateadd('day', '-' ~ popularity_days, as_of_end()) }}
        ) as recent_buyers

    from buyer_groups
    group by group_kind, group_value, product_id

),

grouped as (

    select * from counted
    where group_kind <> 'overall'

    union all

    -- "overall" lists the whole merchandise catalogue (0 buyers included), so a consumer
    -- can fill a list past the products anybody bought.
    select
        'overall' as group_kind,
        '' as group_value,
        products.product_id,
        coalesce(counted.buyers, 0) as buyers,
        coalesce(counted.recent_buyers, 0) as recent_buyers

    from products
    left join counted
        on counted.group_kind = 'overall'
        and products.product_id = counted.product_id

),

final as (

    select
        grouped.group_kind,
        grouped.group_value,
        grouped.product_id,
        products.category,
        products.is_recommendable,
        cast(grouped.buyers as bigint) as buyers,
        cast(grouped.recent_buyers as bigint) as recent_buyers,
        -- Deterministic: ties go to the smaller product id.
        cast(row_number() over (
            partition by grouped.group_kind, grouped.group_value
            order by grouped.buyers desc, grouped.product_id
        ) as integer) as buyers_rank,
        cast(row_number() over (
            partition by grouped.group_kind, grouped.group_value
            order by grouped.recent_buyers desc, grouped.product_id
        ) as integer) as recent_buyers_rank,
        cast({{ popularity_days }} as integer) as popularity_days,
        {{ as_of_date() }} as as_of_date

    from grouped
    inner join products on grouped.product_id = products.product_id

)

select * from final
