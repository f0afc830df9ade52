-- ml.review_sentiment (ml/text/review_insight.py) of the latest run on or before as_of: one
-- row per review with its sentiment. Empty when the review stage has not run (or the shop
-- has no reviews). Erased customers removed (their reviews are gone from raw already; a
-- request loaded after the stage ran must still win).
{%- set columns = [
    ('review_id', 'varchar'), ('product_id', 'varchar'), ('customer_id', 'varchar'),
    ('created_at', 'timestamp'), ('rating', 'integer'), ('sentiment_score', 'double'),
    ('sentiment_label', 'varchar'), ('predicted_rating', 'integer'),
    ('sentiment_source', 'varchar'), ('model_version', 'varchar'), ('logical_date', 'date')
] %}
with

source as (

    {{ as_of_partition(source('text', 'review_sentiment'), missing_columns=column_names(columns)) }}

),

renamed as (

    select {{ typed_columns(columns) }}

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
