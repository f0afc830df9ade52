with

products as (

    select * from {{ ref('stg_raw__products') }}

),

first_sales as (

    select product_id, min(ordered_at) as first_sold_at
    from {{ ref('fct_order_lines') }}
    group by product_id

),

categories as (

    -- The product text stage's categories: given ones, or inferred from the text.
    select product_id, category, category_source from {{ ref('stg_text__product_categories') }}

),

first_events as (

    {{ first_events('product_id') }}

),

first_seen as (

    -- The earliest evidence of the product: the catalogue date may be missing or late.
    select
        products.product_id,
        products.product_name,
        products.product_description,
        coalesce(categories.category, products.category) as category,
        products.brand,
        products.price,
        products.is_active,
        products.is_product,
        products.first_seen_at,
        case
            when categories.category_source is not null then categories.category_source
            when products.category = 'Uncategorized' then 'missing'
            else 'given'
        end as category_source,
        least(products.first_seen_at, first_sales.first_sold_at, first_events.first_event_at)
            as effective_first_seen_at

    from products
    left join first_sales on products.product_id = first_sales.product_id
    left join first_events on products.product_id = first_events.product_id
    left join categories on products.product_id = categories.product_id

),

final as (

    select
        product_id,
        product_name,
        product_description,
        category,
        category_source,
        brand,
        price,
        is_active,
        is_product,
        effective_first_seen_at as first_seen_at,
        -- The one recommendable-product rule: merchandise that is still sold and has a
        -- name to show. Every list of products to suggest (recommendations, similar
        -- products, audiences) uses it.
        is_product and is_active and product_name is not null as is_recommendable

    from first_seen
    -- Point in time: products first seen after the as-of moment do not exist yet.
    where effective_first_seen_at is null
        or effective_first_seen_at < {{ as_of_end() }}

)

select * from final
