-- Published recommendations: ml.recommendations of the run's logical date with product
-- names and prices, and the reason as text ("because you bought <name> on <day>"), which
-- cites what reviewers praise about the recommended product when they praise something
-- and its reviews are not turning negative ("...; reviewers say "soft"").
with

scored as (

    select * from {{ ref('stg_ml__recommendations') }}

),

products as (

    select product_id, product_name, category, price from {{ ref('dim_products') }}

),

reason_texts as (

    select reason_code, template from {{ ref('reason_texts') }}

),

praise as (

    -- The seed's clause, filled with the product's most mentioned praised aspect.
    select
        insights.product_id,
        replace(texts.template, '{aspect}', insights.top_praised_aspect) as praise_text
    from {{ ref('product_review_insights') }} as insights
    inner join reason_texts as texts on texts.reason_code = 'praised_aspect'
    where insights.top_praised_aspect is not null and not insights.is_turning_negative

),

final as (

    select
        scored.customer_id,
        scored.rank,
        scored.product_id,
        coalesce(products.product_name, scored.product_id) as product_name,
        scored.score,
        -- The wording of each code is the seed reason_texts (campaign messages use it too).
        replace(
            replace(
                coalesce(reason_texts.template, 'recommended for you'),
                '{product}',
                coalesce(reason_products.product_name, scored.reason_product_id, 'it')
            ),
            '{context}',
            coalesce(scored.reason_context, '')
        ) || coalesce('; ' || praise.praise_text, '') as reason,
        scored.reason_product_id,
        scored.model_name,
        scored.model_version,
        scored.reason_code,
        products.category,
        products.price,
        scored.logical_date

    from scored
    left join products on scored.product_id = products.product_id
    left join products as reason_products on scored.reason_product_id = reason_products.product_id
    left join reason_texts on scored.reason_code = reason_texts.reason_code
    left join praise on scored.product_id = praise.product_id

)

select
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(rank as integer) as rank,
    cast(product_id as {{ dbt.type_string() }}) as product_id,
    cast(product_name as {{ dbt.type_string() }}) as product_name,
    cast(score as double) as score,
    cast(reason as {{ dbt.type_string() }}) as reason,
    cast(reason_product_id as {{ dbt.type_string() }}) as reason_product_id,
    cast(model_name as {{ dbt.type_string() }}) as model_name,
    cast(model_version as {{ dbt.type_string() }}) as model_version,
    cast(reason_code as {{ dbt.type_string() }}) as reason_code,
    cast(category as {{ dbt.type_string() }}) as category,
    cast(price as double) as price,
    cast(logical_date as date) as logical_date
from final
