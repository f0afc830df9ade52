-- One row per customer x product signal, before any weighting: what the recommender learns
-- from. Known customers and merchandise only; erased customers are already gone upstream.
with

products as (

    select product_id from {{ ref('dim_products') }}
    where is_product

),

purchases as (

    -- Net quantity: cancelled/returned orders' lines net to 0 and reversal lines are
    -- negative; neither is a positive signal, so only lines with net_quantity > 0 remain.
    select
        'purchase:' || order_lines.order_id || ':' || order_lines.line_no as interaction_id,
        order_lines.customer_id,
        order_lines.product_id,
        order_lines.ordered_at as occurred_at,
        'purchase' as event_kind,
        order_lines.net_quantity as quantity,
        order_lines.order_id

    from {{ ref('fct_order_lines') }} as order_lines
    inner join products on order_lines.product_id = products.product_id
    where order_lines.customer_id is not null
        and order_lines.net_quantity > 0

),

browsing as (

    -- Purchase *events* are not used: purchases come from orders (no double counting).
    select
        events.event_type || ':' || events.event_id as interaction_id,
        events.customer_id,
        events.product_id,
        events.occurred_at,
        events.event_type as event_kind,
        1 as quantity,
        cast(null as {{ dbt.type_string() }}) as order_id

    from {{ ref('fct_events') }} as events
    inner join products on events.product_id = products.product_id
    where events.customer_id is not null
        and events.event_type in ('view', 'add_to_cart')

),

unioned as (

    select * from purchases
    union all
    select * from browsing

)

select
    interaction_id,
    customer_id,
    product_id,
    occurred_at,
    event_kind,
    cast(quantity as integer) as quantity,
    order_id

from unioned
