{#-
    Implicit strength of a customer for a product, as of the run date:

        strength = sum over the pair's interaction_events with occurred_at < as_of_end of
                   weight(event_kind) * f(quantity) * 0.5 ^ (age_days / half_life_days)

    weight: vars interaction_weight_purchase / _add_to_cart / _view; f(quantity) = ln(1 +
    quantity) for purchases, 1 for views and add-to-carts; age_days = (as_of_end -
    occurred_at) in fractional days; half_life_days: var interaction_half_life_days.
    Vars are read here, not in a macro, so unit tests can override them.
-#}
{%- set as_of_end = "cast(date '" ~ var('as_of') ~ "' + interval 1 day as timestamp)" %}
{%- set half_life_days = var('interaction_half_life_days') %}
with

interaction_events as (

    select * from {{ ref('interaction_events') }}
    where occurred_at < {{ as_of_end }}

),

weighted as (

    select
        customer_id,
        product_id,
        occurred_at,
        event_kind,
        quantity,
        case event_kind
            when 'purchase' then cast({{ var('interaction_weight_purchase') }} as double)
            when 'add_to_cart' then cast({{ var('interaction_weight_add_to_cart') }} as double)
            when 'view' then cast({{ var('interaction_weight_view') }} as double)
            else 0.0
        end as kind_weight,
        case
            when event_kind = 'purchase' then ln(1 + greatest(quantity, 0))
            else 1.0
        end as quantity_factor,
        (epoch_us({{ as_of_end }}) - epoch_us(occurred_at)) / 86400e6 as age_days

    from interaction_events

),

decayed as (

    select
        *,
        kind_weight * quantity_factor * pow(0.5, age_days / {{ half_life_days }}) as contribution

    from weighted

),

aggregated as (

    select
        customer_id,
        product_id,
        {{ exact_sum('contribution') }} as strength,
        count(*) filter (where event_kind = 'purchase') as purchases,
        coalesce(sum(quantity) filter (where event_kind = 'purchase'), 0) as purchased_units,
        count(*) filter (where event_kind = 'add_to_cart') as add_to_carts,
        count(*) filter (where event_kind = 'view') as views,
        min(occurred_at) as first_at,
        max(occurred_at) as last_at

    from decayed
    group by customer_id, product_id

)

select
    customer_id,
    product_id,
    strength,
    last_at,
    first_at,
    purchases,
    cast(purchased_units as bigint) as purchased_units,
    add_to_carts,
    views,
    cast('{{ var("as_of") }}' as date) as as_of_date

from aggregated
where strength > 0
