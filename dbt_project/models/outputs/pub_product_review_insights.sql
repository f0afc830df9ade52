-- Published review insight: one row per reviewed product (marts.product_review_insights)
-- with its name. The examples are sentences reviewers wrote, with contact details masked
-- (ml/text/sentences.py); no reviewer is named.
with

insights as (

    select * from {{ ref('product_review_insights') }}

),

products as (

    select product_id, product_name, category from {{ ref('dim_products') }}

)

select
    cast(insights.product_id as {{ dbt.type_string() }}) as product_id,
    cast(products.product_name as {{ dbt.type_string() }}) as product_name,
    cast(products.category as {{ dbt.type_string() }}) as category,
    cast(insights.review_count as bigint) as review_count,
    cast(insights.avg_rating as double) as avg_rating,
    cast(insights.avg_sentiment as double) as avg_sentiment,
    cast(insights.negative_share as double) as negative_share,
    insights.praised_aspects,
    insights.complaint_aspects,
    cast(insights.trend_30d as double) as trend_30d,
    cast(insights.recent_reviews as bigint) as recent_reviews,
    cast(insights.is_turning_negative as boolean) as is_turning_negative,
    cast(insights.turning_negative_reason as {{ dbt.type_string() }}) as turning_negative_reason,
    cast(insights.last_reviewed_at as timestamp) as last_reviewed_at,
    cast(insights.as_of_date as date) as as_of_date

from insights
left join products on insights.product_id = products.product_id
