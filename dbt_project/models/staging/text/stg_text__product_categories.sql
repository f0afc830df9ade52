-- ml.product_categories (ml/text/products.py) of the latest run on or before as_of. Empty
-- when the product text stage has not run: products then keep their given category.
{%- set columns = [
    'logical_date', 'product_id', 'category_id', 'category', 'category_source', 'category_method',
] %}
with

source as (

    {{ as_of_partition(source('text', 'product_categories'), missing_columns=columns) }}

),

renamed as (

    select
        cast(product_id as varchar) as product_id,
        cast(category_id as varchar) as category_id,
        cast(category as varchar) as category,
        cast(category_source as varchar) as category_source,
        cast(category_method as varchar) as category_method

    from source

)

select * from renamed
