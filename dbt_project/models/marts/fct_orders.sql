with

orders as (

    select * from {{ ref('stg_raw__orders') }}
    where ordered_at < {{ as_of_end() }}

),

order_lines as (

    select * from {{ ref('fct_order_lines') }}

),

products as (

    select product_id, is_product from {{ ref('dim_products') }}

),

line_totals as (

    select
        order_lines.order_id,
        count(*) as line_count,
        cast(sum(order_lines.quantity) as bigint) as units,
        cast(sum(order_lines.net_quantity) as bigint) as net_units,
        -- Lines whose price is unknown: the money sums below leave them out.
        count(*) filter (where order_lines.unit_price is null) as unpriced_lines,
        {{ exact_sum('order_lines.line_amount') }} as order_amount,
        {{ exact_sum('order_lines.net_revenue') }} as net_revenue,
        coalesce({{ exact_sum('order_lines.net_revenue', 'products.is_product') }}, 0)
            as product_net_revenue,
        bool_and(order_lines.is_reversal) as is_reversal

    from order_lines
    left join products on order_lines.product_id = products.product_id
    group by order_lines.order_id

),

final as (

    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        cast(orders.ordered_at as date) as order_date,
        orders.order_status,
        orders.channel,
        orders.country,
        orders.customer_id is null as is_guest,
        coalesce(line_totals.is_reversal, false) as is_reversal,
        coalesce(line_totals.line_count, 0) as line_count,
        coalesce(line_totals.units, 0) as units,
        coalesce(line_totals.net_units, 0) as net_units,
        coalesce(line_totals.unpriced_lines, 0) as unpriced_lines,
        coalesce(line_totals.order_amount, 0) as order_amount,
        coalesce(line_totals.net_revenue, 0) as net_revenue,
        coalesce(line_totals.product_net_revenue, 0) as product_net_revenue

    from orders
    left join line_totals on orders.order_id = line_totals.order_id

)

select * from final
