-- ml.product_categories (ml/text/products.py) of the latest run on or before as_of. Empty
-- when the product text stage has not run: products then keep their given category.
{%- set columns = [
    ('product_id', 'varchar'), ('category_id', 'varchar'), ('category', 'varchar'),
    ('category_source', 'varchar'), ('category_method', 'varchar')
] %}
with

source as (

    {{ as_of_partition(source('text', 'product_categories'), missing_columns=column_names(columns)) }}

),

renamed as (

    select {{ typed_columns(columns) }}

    from source

)

select * from renamed
