-- ml.customer_clusters (ml/serving/segments.py) as of the run's logical date; erased
-- customers removed.
{%- set columns = [
    ('customer_id', 'varchar'), ('cluster_id', 'integer'), ('cluster_name', 'varchar'),
    ('logical_date', 'date')
] %}
with

source as (

    {{ as_of_partition(source('ml', 'customer_clusters')) }}

),

renamed as (

    select {{ typed_columns(columns) }}

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
