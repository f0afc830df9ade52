-- ml.similar_products (ml/serving/similar.py) as of the run's logical date.
{%- set columns = [
    ('product_id', 'varchar'), ('rank', 'integer'), ('similar_product_id', 'varchar'),
    ('score', 'double'), ('reason', 'varchar'), ('method', 'varchar'),
    ('logical_date', 'date')
] %}
with

source as (

    {{ as_of_partition(source('ml', 'similar_products')) }}

),

renamed as (

    select {{ typed_columns(columns) }}

    from source

)

select * from renamed
