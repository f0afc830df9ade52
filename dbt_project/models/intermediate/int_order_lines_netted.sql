-- Order lines with their order, as of the run date, netted by the signed-quantity rule.
with

orders as (

    select * from {{ ref('stg_raw__orders') }}
    where ordered_at < {{ as_of_end() }}

),

order_lines as (

    select * from {{ ref('stg_raw__order_lines') }}

),

joined as (

    -- Inner join: lines of erased customers' orders (absent from staging) drop out here.
    select
        order_lines.order_id,
        order_lines.line_no,
        orders.customer_id,
        order_lines.product_id,
        orders.ordered_at,
        orders.order_status,
        order_lines.quantity,
        order_lines.unit_price,
        order_lines._source_file,
        order_lines._batch_id,
        orders._source_file as _order_source_file,
        orders._batch_id as _order_batch_id

    from order_lines
    inner join orders on order_lines.order_id = orders.order_id

),

netted as (

    select
        *,
        -- A negative line is a reversal and counts whatever the status; a positive line
        -- counts only while its order stands (placed), never once cancelled/returned.
        case
            when quantity < 0 then quantity
            when order_status = 'placed' then quantity
            else 0
        end as net_quantity

    from joined

)

select
    order_id,
    line_no,
    customer_id,
    product_id,
    ordered_at,
    cast(ordered_at as date) as order_date,
    order_status,
    quantity,
    unit_price,
    net_quantity,
    quantity * unit_price as line_amount,
    net_quantity * unit_price as net_revenue,
    quantity < 0 as is_reversal,
    _source_file,
    _batch_id,
    _order_source_file,
    _order_batch_id

from netted
