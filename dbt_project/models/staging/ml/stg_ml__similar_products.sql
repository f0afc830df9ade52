-- ml.similar_products (ml/similar.py) as of the run's logical date.
with

source as (

    {{ as_of_partition(source('ml', 'similar_products')) }}

),

renamed as (

    select
        cast(product_id as varchar) as product_id,
        cast(rank as integer) as rank,
        cast(similar_product_id as varchar) as similar_product_id,
        cast(score as double) as score,
        cast(reason as varchar) as reason,
        cast(method as varchar) as method,
        cast(logical_date as date) as logical_date

    from source

)

select * from renamed
