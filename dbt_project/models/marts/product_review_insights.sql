-- One row per reviewed product as of the run date: what reviews say about it. The home of
-- every review aggregate (product_features, the published product_review_insights and
-- products, scoring's demotion and the campaign copy read it). ml/text/signals.py is the
-- reference these rules are tested against (product_insights, products_turning_negative).
with

reviews as (

    select * from {{ ref('stg_text__review_sentiment') }}
    where created_at < {{ as_of_end() }}

),

flagged as (

    select
        *,
        created_at >= {{ review_recent_start() }} as is_recent,
        cast(sentiment_label = 'negative' as integer) as is_negative

    from reviews

),

stats as (

    select
        product_id,
        count(*) as review_count,
        avg(rating) as avg_rating,
        {{ exact_avg('sentiment_score') }} as avg_sentiment,
        avg(is_negative) as negative_share,
        count(*) filter (where is_recent) as recent_reviews,
        {{ exact_avg('sentiment_score', 'is_recent') }} as recent_sentiment,
        {{ exact_avg('sentiment_score', 'not is_recent') }} as earlier_sentiment,
        avg(is_negative) filter (where is_recent) as recent_negative_share,
        max(created_at) as last_reviewed_at

    from flagged
    group by product_id

),

aspects as (

    select product_id, praised_aspects, complaint_aspects
    from {{ ref('stg_text__review_aspects') }}

),

final as (

    select
        stats.product_id,
        stats.review_count,
        stats.avg_rating,
        stats.avg_sentiment,
        stats.negative_share,
        coalesce(
            aspects.praised_aspects,
            cast({{ empty_list() }} as {{ sql_type('struct(aspect varchar, mentions bigint, example varchar)[]') }})
        ) as praised_aspects,
        coalesce(
            aspects.complaint_aspects,
            cast({{ empty_list() }} as {{ sql_type('struct(aspect varchar, mentions bigint, example varchar)[]') }})
        ) as complaint_aspects,
        -- Mean sentiment of the last 30 days minus that of the reviews before (NULL when
        -- either side has no review).
        stats.recent_sentiment - stats.earlier_sentiment as trend_30d,
        stats.recent_reviews,
        stats.recent_sentiment,
        stats.earlier_sentiment,
        stats.recent_negative_share,
        stats.last_reviewed_at,
        coalesce(
            stats.recent_reviews >= {{ review_min_recent() }}
            and (
                coalesce(
                    stats.recent_sentiment - stats.earlier_sentiment <= {{ review_trend_drop() }},
                    false
                )
                or stats.recent_negative_share >= {{ review_negative_majority() }}
            ),
            false
        ) as is_turning_negative,
        {{ as_of_date() }} as as_of_date

    from stats
    left join aspects on stats.product_id = aspects.product_id

)

select
    *,
    case
        when not is_turning_negative then null
        when coalesce(trend_30d <= {{ review_trend_drop() }}, false)
            then 'recent sentiment ' || round(recent_sentiment, 2) || ' vs '
                || round(earlier_sentiment, 2) || ' before'
        else cast(round(100 * recent_negative_share) as bigint) || '% of its '
            || recent_reviews || ' recent reviews are negative'
    end as turning_negative_reason,
    -- The most mentioned praised / complaint aspect (lists are most mentioned first).
    {{ first_element('praised_aspects') }}.aspect as top_praised_aspect,
    {{ first_element('complaint_aspects') }}.aspect as top_complaint_aspect

from final
