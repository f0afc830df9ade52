-- Published similar products: ml.similar_products of the run's logical date with names.
with

neighbours as (

    select * from {{ ref('stg_ml__similar_products') }}

),

products as (

    select product_id, product_name, category, price from {{ ref('dim_products') }}

)

select
    cast(neighbours.product_id as {{ dbt.type_string() }}) as product_id,
    cast(neighbours.rank as integer) as rank,
    cast(neighbours.similar_product_id as {{ dbt.type_string() }}) as similar_product_id,
    cast(neighbours.score as double) as score,
    cast(neighbours.reason as {{ dbt.type_string() }}) as reason,
    cast(coalesce(source_products.product_name, neighbours.product_id) as {{ dbt.type_string() }}) as product_name,
    cast(coalesce(similar_products.product_name, neighbours.similar_product_id) as {{ dbt.type_string() }})
        as similar_product_name,
    cast(similar_products.category as {{ dbt.type_string() }}) as similar_product_category,
    cast(similar_products.price as double) as similar_product_price,
    cast(neighbours.method as {{ dbt.type_string() }}) as method,
    cast(neighbours.logical_date as date) as logical_date

from neighbours
left join products as source_products on neighbours.product_id = source_products.product_id
left join products as similar_products on neighbours.similar_product_id = similar_products.product_id
