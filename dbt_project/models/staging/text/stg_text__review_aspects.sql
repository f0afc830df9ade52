-- ml.product_review_aspects (ml/text/review_insight.py) of the latest run on or before
-- as_of: per reviewed product, the aspects reviewers praise and complain about, each
-- {aspect, mentions, example}. Empty when the review stage has not run.
{%- set aspect_list = 'struct(aspect varchar, mentions bigint, example varchar)[]' %}
{%- set columns = [
    ('product_id', 'varchar'), ('review_count', 'bigint'),
    ('praised_aspects', aspect_list), ('complaint_aspects', aspect_list),
    ('logical_date', 'date')
] %}
with

source as (

    {{ as_of_partition(source('text', 'product_review_aspects'), missing_columns=column_names(columns)) }}

),

renamed as (

    select {{ typed_columns(columns) }}

    from source

)

select * from renamed
