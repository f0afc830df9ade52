{#
    Sum of a double column that does not depend on the order rows arrive in.

    DuckDB aggregates in parallel, so a plain sum() of doubles can differ in its last bits
    between two runs on the same data (and flip a rank on a tie). Adding the terms in the
    order of their values makes the result a function of the data only.
    `filter` is an optional SQL condition (the aggregate's FILTER clause).
    Dispatched: Spark has no ordered sum (macros/spark/dialect.sql).
#}
{% macro exact_sum(expression, filter=none) -%}
    {{ return(adapter.dispatch('exact_sum')(expression, filter)) }}
{%- endmacro %}

{% macro default__exact_sum(expression, filter=none) -%}
    sum({{ expression }} order by {{ expression }}){% if filter %} filter (where {{ filter }}){% endif %}
{%- endmacro %}

{# The same over a window: the order-independent sum of `expression` per partition. #}
{% macro exact_window_sum(expression, partition_by) -%}
    {{ return(adapter.dispatch('exact_window_sum')(expression, partition_by)) }}
{%- endmacro %}

{% macro default__exact_window_sum(expression, partition_by) -%}
    sum({{ expression }} order by {{ expression }}) over (partition by {{ partition_by }})
{%- endmacro %}
