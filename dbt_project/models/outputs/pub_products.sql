-- Published products: the merchandise catalogue as of the run's logical date, with whether
-- a product may be recommended, its demand and funnel (marts.product_features) and its
-- popularity rank overall (marts.product_popularity) and what its reviews say
-- (marts.product_review_insights). Non-merchandise codes (postage,
-- fees, adjustments) are left out, as everywhere past dim_products.
with

products as (

    select * from {{ ref('dim_products') }}
    where is_product

),

features as (

    select * from {{ ref('product_features') }}

),

reviews as (

    select
        product_id, avg_sentiment, negative_share, trend_30d, is_turning_negative,
        top_praised_aspect, top_complaint_aspect
    from {{ ref('product_review_insights') }}

),

popularity as (

    select product_id, buyers, recent_buyers, buyers_rank, recent_buyers_rank
    from {{ ref('product_popularity') }}
    where group_kind = 'overall'

)

select
    cast(products.product_id as {{ dbt.type_string() }}) as product_id,
    cast(products.product_name as {{ dbt.type_string() }}) as product_name,
    cast(products.category as {{ dbt.type_string() }}) as category,
    cast(products.category_source as {{ dbt.type_string() }}) as category_source,
    cast(products.brand as {{ dbt.type_string() }}) as brand,
    cast(products.price as double) as price,
    cast(features.price_band as {{ dbt.type_string() }}) as price_band,
    cast(products.is_active as boolean) as is_active,
    cast(products.is_recommendable as boolean) as is_recommendable,
    cast(features.is_new as boolean) as is_new,
    cast(products.first_seen_at as timestamp) as first_seen_at,
    cast(popularity.buyers as bigint) as buyers,
    cast(popularity.recent_buyers as bigint) as recent_buyers,
    cast(popularity.buyers_rank as integer) as popularity_rank,
    cast(popularity.recent_buyers_rank as integer) as recent_popularity_rank,
    cast(features.units_sold as bigint) as units_sold,
    cast(features.revenue as double) as revenue,
    cast(features.units_last_7d as bigint) as units_last_7d,
    cast(features.units_prev_28d as bigint) as units_prev_28d,
    cast(features.trend_ratio as double) as trend_ratio,
    cast(features.views as bigint) as views,
    cast(features.add_to_carts as bigint) as add_to_carts,
    cast(features.cart_conversion_rate as double) as cart_conversion_rate,
    cast(features.purchase_conversion_rate as double) as purchase_conversion_rate,
    cast(features.return_rate as double) as return_rate,
    cast(features.review_count as bigint) as review_count,
    cast(features.mean_rating as double) as mean_rating,
    cast(reviews.avg_sentiment as double) as avg_sentiment,
    cast(reviews.negative_share as double) as negative_share,
    cast(reviews.trend_30d as double) as review_trend_30d,
    cast(coalesce(reviews.is_turning_negative, false) as boolean) as is_turning_negative,
    cast(reviews.top_praised_aspect as {{ dbt.type_string() }}) as top_praised_aspect,
    cast(reviews.top_complaint_aspect as {{ dbt.type_string() }}) as top_complaint_aspect,
    cast(features.as_of_date as date) as as_of_date

from products
left join features on products.product_id = features.product_id
left join popularity on products.product_id = popularity.product_id
left join reviews on products.product_id = reviews.product_id
