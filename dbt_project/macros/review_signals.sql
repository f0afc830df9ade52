{#-
    The review signals' settings, written once (ml/text/signals.py holds the same values:
    its functions are the reference the review marts are tested against).

    review_recent_days(): "recent" reviews are those of the last N days up to the end of
    as_of (trend_30d, a product turning negative, a customer's recent negative reviews).
    A product turns negative when at least review_min_recent() of its reviews are recent
    and their mean sentiment is review_trend_drop() or more below its earlier reviews', or
    at least review_negative_majority() of them are negative.
-#}
{% macro review_recent_days() -%} 30 {%- endmacro %}
{% macro review_min_recent() -%} 3 {%- endmacro %}
{% macro review_trend_drop() -%} -0.3 {%- endmacro %}
{% macro review_negative_majority() -%} 0.5 {%- endmacro %}

{# The start of the recent window: as_of_end() - review_recent_days() days. #}
{% macro review_recent_start() -%}
    {{ dbt.dateadd('day', '-' ~ review_recent_days(), as_of_end()) }}
{%- endmacro %}

{# Mean of a double whose value does not depend on the order rows arrive in (exact_sum). #}
{% macro exact_avg(expression, filter=none) -%}
    ({{ exact_sum(expression, filter) }} / nullif(count({{ expression }}){% if filter %} filter (where {{ filter }}){% endif %}, 0))
{%- endmacro %}
