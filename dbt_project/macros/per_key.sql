{#-
    Summaries of one table per customer or per product, written once for both keys
    (key: 'customer_id' or 'product_id').
-#}

{# Reviews written before the end of as_of: how many, and their mean rating. #}
{% macro review_counts(key) -%}
    select
        {{ key }},
        count(*) as review_count,
        avg(rating) as mean_rating
    from {{ ref('stg_raw__reviews') }}
    where created_at < {{ as_of_end() }}
    group by {{ key }}
{%- endmacro %}

{# The first event of each known key (events of anonymous visitors or no product left out). #}
{% macro first_events(key) -%}
    select {{ key }}, min(occurred_at) as first_event_at
    from {{ ref('fct_events') }}
    where {{ key }} is not null
    group by {{ key }}
{%- endmacro %}
