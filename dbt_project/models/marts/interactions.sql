-- One row per customer x product with any signal before the as-of moment: what the pair's
-- history holds (counts by kind, first and last times), for scoring's exclusion window,
-- "bought before" reasons and history lists. The recommender's weighting is not here:
-- training weights interaction_events itself (the recipe search tunes it).
with

interaction_events as (

    select * from {{ ref('interaction_events') }}
    where occurred_at < {{ as_of_end() }}

),

aggregated as (

    select
        customer_id,
        product_id,
        count(*) filter (where event_kind = 'purchase') as purchases,
        coalesce(sum(quantity) filter (where event_kind = 'purchase'), 0) as purchased_units,
        count(*) filter (where event_kind = 'add_to_cart') as add_to_carts,
        count(*) filter (where event_kind = 'view') as views,
        min(occurred_at) as first_at,
        max(occurred_at) as last_at,
        max(occurred_at) filter (where event_kind = 'purchase') as last_bought_at,
        max(occurred_at) filter (where event_kind = 'view') as last_viewed_at

    from interaction_events
    group by customer_id, product_id

)

select
    customer_id,
    product_id,
    purchases,
    cast(purchased_units as bigint) as purchased_units,
    add_to_carts,
    views,
    first_at,
    last_at,
    last_bought_at,
    last_viewed_at,
    {{ as_of_date() }} as as_of_date

from aggregated
