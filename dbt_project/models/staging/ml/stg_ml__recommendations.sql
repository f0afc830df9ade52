-- ml.recommendations (ml/serving/recommend.py) as of the run's logical date; erased
-- customers removed.
{%- set columns = [
    ('customer_id', 'varchar'), ('rank', 'integer'), ('product_id', 'varchar'),
    ('score', 'double'), ('reason_code', 'varchar'), ('reason_product_id', 'varchar'),
    ('reason_context', 'varchar'), ('model_name', 'varchar'), ('model_version', 'varchar'),
    ('logical_date', 'date')
] %}
with

source as (

    {{ as_of_partition(source('ml', 'recommendations')) }}

),

renamed as (

    select {{ typed_columns(columns) }}

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
