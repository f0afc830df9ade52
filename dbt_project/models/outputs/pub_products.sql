-- Published products: the merchandise catalogue as of the run's logical date
-- (marts.product_features: one row per merchandise product, with whether it may be
-- recommended, its demand, funnel and what its reviews say) and its popularity rank
-- overall (marts.product_popularity). Non-merchandise codes (postage, fees, adjustments)
-- are left out, as everywhere past dim_products.
with

features as (

    select * from {{ ref('product_features') }}

),

popularity as (

    select product_id, buyers, recent_buyers, buyers_rank, recent_buyers_rank
    from {{ ref('product_popularity') }}
    where group_kind = 'overall'

)

select
    cast(features.product_id as {{ dbt.type_string() }}) as product_id,
    cast(features.product_name as {{ dbt.type_string() }}) as product_name,
    cast(features.category as {{ dbt.type_string() }}) as category,
    cast(features.category_source as {{ dbt.type_string() }}) as category_source,
    cast(features.brand as {{ dbt.type_string() }}) as brand,
    cast(features.price as double) as price,
    cast(features.price_band as {{ dbt.type_string() }}) as price_band,
    cast(features.is_active as boolean) as is_active,
    cast(features.is_recommendable as boolean) as is_recommendable,
    cast(features.is_new as boolean) as is_new,
    cast(features.first_seen_at as timestamp) as first_seen_at,
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
    cast(features.avg_sentiment as double) as avg_sentiment,
    cast(features.negative_share as double) as negative_share,
    cast(features.sentiment_trend_30d as double) as review_trend_30d,
    cast(features.is_turning_negative as boolean) as is_turning_negative,
    cast(features.top_praised_aspect as {{ dbt.type_string() }}) as top_praised_aspect,
    cast(features.top_complaint_aspect as {{ dbt.type_string() }}) as top_complaint_aspect,
    cast(features.as_of_date as date) as as_of_date

from features
left join popularity on features.product_id = popularity.product_id
