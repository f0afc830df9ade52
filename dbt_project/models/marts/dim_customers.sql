with

customers as (

    select * from {{ ref('stg_raw__customers') }}

),

order_activity as (

    select
        customer_id,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at
    from {{ ref('fct_orders') }}
    where customer_id is not null
    group by customer_id

),

event_activity as (

    {{ first_events('customer_id') }}

),

first_seen as (

    select
        customers.*,
        order_activity.first_order_at,
        order_activity.last_order_at,
        least(customers.signed_up_at, order_activity.first_order_at, event_activity.first_event_at)
            as first_seen_at

    from customers
    left join order_activity on customers.customer_id = order_activity.customer_id
    left join event_activity on customers.customer_id = event_activity.customer_id

),

final as (

    select
        customer_id,
        country,
        signed_up_at,
        first_seen_at,
        first_order_at,
        last_order_at,
        marketing_opt_in

    from first_seen
    -- Point in time: customers who appear only after the as-of moment do not exist yet.
    where first_seen_at is null
        or first_seen_at < {{ as_of_end() }}

)

select * from final
