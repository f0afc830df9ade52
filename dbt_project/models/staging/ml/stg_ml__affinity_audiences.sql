-- ml.affinity_audiences (ml/serving/segments.py) as of the run's logical date; erased
-- customers removed.
{%- set columns = [
    ('category', 'varchar'), ('rank', 'integer'), ('customer_id', 'varchar'),
    ('affinity', 'double'), ('logical_date', 'date')
] %}
with

source as (

    {{ as_of_partition(source('ml', 'affinity_audiences')) }}

),

renamed as (

    select {{ typed_columns(columns) }}

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
