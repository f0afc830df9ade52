-- Customer x category interest: share of the customer's net merchandise spend and share of
-- their product views that fall in the category (Online Retail: one 'Uncategorized' row),
-- and the purchase lines behind it (what cluster profiles rank categories by).
with

products as (

    select product_id, category from {{ ref('dim_products') }}
    where is_product

),

spend as (

    select
        order_lines.customer_id,
        products.category,
        {{ exact_sum('order_lines.net_revenue') }} as spend,
        -- Purchase lines: the rows interaction_events counts as event_kind 'purchase'.
        count(*) filter (where order_lines.net_quantity > 0) as purchases

    from {{ ref('fct_order_lines') }} as order_lines
    inner join products on order_lines.product_id = products.product_id
    where order_lines.customer_id is not null
    group by order_lines.customer_id, products.category

),

views as (

    select events.customer_id, products.category, count(*) as views
    from {{ ref('fct_events') }} as events
    inner join products on events.product_id = products.product_id
    where events.customer_id is not null
        and events.event_type = 'view'
    group by events.customer_id, products.category

),

combined as (

    -- Net refunds larger than purchases count as no spend, not as negative interest.
    select
        customer_id,
        category,
        greatest(coalesce(spend.spend, 0), 0) as spend,
        coalesce(views.views, 0) as views,
        coalesce(spend.purchases, 0) as purchases

    from spend
    full outer join views using (customer_id, category)

),

shares as (

    select
        *,
        spend / nullif(
            {{ exact_window_sum('spend', 'customer_id') }},
            0
        ) as spend_share,
        views / nullif(sum(views) over (partition by customer_id), 0) as view_share

    from combined
    -- A purchase without spend (free item, refunded in full) still shows the interest.
    where spend > 0 or views > 0 or purchases > 0

),

scored as (

    select
        *,
        -- Mean of the shares the customer has (either may be missing: no spend or no views).
        -- 0 for a pair with purchase lines only, from a customer without spend or views.
        coalesce(
            case
                when spend_share is not null and view_share is not null
                    then (spend_share + view_share) / 2
                else coalesce(spend_share, view_share)
            end,
            0
        ) as affinity_score

    from shares

),

final as (

    select
        customer_id,
        category,
        spend,
        coalesce(spend_share, 0) as spend_share,
        cast(views as bigint) as views,
        coalesce(view_share, 0) as view_share,
        cast(purchases as bigint) as purchases,
        affinity_score,
        cast(row_number() over (
            partition by customer_id order by affinity_score desc, category
        ) as integer) as category_rank,
        {{ as_of_date() }} as as_of_date

    from scored

)

select * from final
