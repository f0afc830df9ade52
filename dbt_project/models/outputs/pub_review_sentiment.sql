-- Published review sentiment: one row per review of the review-insight run as of the
-- logical date. Ids, rating and sentiment only: no reviewer (no customer id, no name) and
-- no review text (free text may hold personal details; it stays in staging).
with

reviews as (

    select * from {{ ref('stg_text__review_sentiment') }}
    where created_at < {{ as_of_end() }}

)

select
    cast(review_id as {{ dbt.type_string() }}) as review_id,
    cast(product_id as {{ dbt.type_string() }}) as product_id,
    cast(rating as integer) as rating,
    cast(sentiment_score as double) as sentiment_score,
    cast(sentiment_label as {{ dbt.type_string() }}) as sentiment_label,
    cast(model_version as {{ dbt.type_string() }}) as model_version,
    cast(predicted_rating as integer) as predicted_rating,
    cast(sentiment_source as {{ dbt.type_string() }}) as sentiment_source,
    cast(created_at as timestamp) as created_at,
    cast(logical_date as date) as logical_date

from reviews
