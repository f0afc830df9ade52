-- ml.customer_clusters (ml/segments.py) as of the run's logical date; erased customers removed.
with

source as (

    {{ as_of_partition(source('ml', 'customer_clusters')) }}

),

renamed as (

    select
        cast(customer_id as varchar) as customer_id,
        cast(cluster_id as integer) as cluster_id,
        cast(cluster_name as varchar) as cluster_name,
        cast(logical_date as date) as logical_date

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
