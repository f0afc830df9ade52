-- ml.affinity_audiences (ml/segments.py) as of the run's logical date; erased customers removed.
with

source as (

    {{ as_of_partition(source('ml', 'affinity_audiences')) }}

),

renamed as (

    select
        cast(category as varchar) as category,
        cast(rank as integer) as rank,
        cast(customer_id as varchar) as customer_id,
        cast(affinity as double) as affinity,
        cast(logical_date as date) as logical_date

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
