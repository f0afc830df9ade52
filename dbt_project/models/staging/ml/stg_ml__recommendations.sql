-- ml.recommendations (ml/score.py) as of the run's logical date; erased customers removed.
with

source as (

    {{ as_of_partition(source('ml', 'recommendations')) }}

),

renamed as (

    select
        cast(customer_id as varchar) as customer_id,
        cast(rank as integer) as rank,
        cast(product_id as varchar) as product_id,
        cast(score as double) as score,
        cast(reason_code as varchar) as reason_code,
        cast(reason_product_id as varchar) as reason_product_id,
        cast(reason_context as varchar) as reason_context,
        cast(model_name as varchar) as model_name,
        cast(model_version as varchar) as model_version,
        cast(logical_date as date) as logical_date

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
