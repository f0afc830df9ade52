-- Published recommendations: ml.recommendations of the run's logical date with product
-- names and prices, and the reason as text ("because you bought <name> on <day>").
{%- set as_of = var('as_of') %}
with

scored as (

    select * from {{ source('ml', 'recommendations') }}
    where logical_date = (
        select max(logical_date) from {{ source('ml', 'recommendations') }}
        where logical_date <= date '{{ as_of }}'
    )

),

products as (

    select product_id, product_name, category, price from {{ ref('dim_products') }}

),

final as (

    select
        scored.customer_id,
        scored.rank,
        scored.product_id,
        coalesce(products.product_name, scored.product_id) as product_name,
        scored.score,
        case scored.reason_code
            when 'bought_similar'
                then 'because you bought ' || coalesce(reason_products.product_name, scored.reason_product_id)
                    || coalesce(' on ' || scored.reason_context, '')
            when 'bought_before'
                then 'because you bought ' || coalesce(reason_products.product_name, scored.reason_product_id) || ' before'
                    || coalesce(' (last on ' || scored.reason_context || ')', '')
            when 'viewed_similar'
                then 'because you viewed ' || coalesce(reason_products.product_name, scored.reason_product_id)
            when 'popular_in_segment' then 'popular with ' || scored.reason_context || ' customers'
            when 'popular_in_country' then 'popular in ' || scored.reason_context
            when 'popular_overall' then 'popular right now'
            else 'recommended for you'
        end as reason,
        scored.reason_product_id,
        scored.model_name,
        scored.model_version,
        scored.reason_code,
        products.category,
        products.price,
        scored.logical_date

    from scored
    left join products on scored.product_id = products.product_id
    left join products as reason_products on scored.reason_product_id = reason_products.product_id

)

select
    cast(customer_id as varchar) as customer_id,
    cast(rank as integer) as rank,
    cast(product_id as varchar) as product_id,
    cast(product_name as varchar) as product_name,
    cast(score as double) as score,
    cast(reason as varchar) as reason,
    cast(reason_product_id as varchar) as reason_product_id,
    cast(model_name as varchar) as model_name,
    cast(model_version as varchar) as model_version,
    cast(reason_code as varchar) as reason_code,
    cast(category as varchar) as category,
    cast(price as double) as price,
    cast(logical_date as date) as logical_date
from final
