-- ml.customer_affinity (ml/segments.py) as of the run's logical date; erased customers removed.
with

source as (

    {{ as_of_partition(source('ml', 'customer_affinity')) }}

),

renamed as (

    select
        cast(customer_id as varchar) as customer_id,
        cast(top_category as varchar) as top_category,
        cast(affinity as double) as affinity,
        cast(logical_date as date) as logical_date

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
