{#- Spark versions of the dispatched macros of macros/dialect.sql and exact_sum.sql. -#}

{% macro spark__int_div(numerator, denominator) -%}
    ({{ numerator }}) div ({{ denominator }})
{%- endmacro %}

{% macro spark__epoch_seconds(timestamp) -%}
    (unix_micros(cast({{ timestamp }} as timestamp_ltz)) / 1000000.0D)
{%- endmacro %}

{% macro spark__sql_type(name) -%}
    {%- set spark_names = {
        'varchar': 'string', 'text': 'string', 'varchar[]': 'array<string>',
        'integer[]': 'array<int>', 'double[]': 'array<double>', 'hugeint': 'bigint',
        'timestamp': 'timestamp_ntz',
    } -%}
    {{ return(spark_names.get(name | trim | lower, name)) }}
{%- endmacro %}

{% macro spark__fail_with(message) -%}
    raise_error('{{ message }}')
{%- endmacro %}

{#-
    Spark has no ordered sum(): the terms are collected, sorted and folded, so the result
    is a function of the values only (NULL when no term, like sum()). Collecting a group's
    terms costs memory per group; the groups here are customers, products and orders.
-#}
{% macro spark__exact_sum(expression, filter=none) -%}
    aggregate(
        array_sort(collect_list(cast({{ expression }} as double)){% if filter %} filter (where {{ filter }}){% endif %}),
        cast(null as double),
        (total, term) -> coalesce(total, 0D) + term
    )
{%- endmacro %}

{% macro spark__exact_window_sum(expression, partition_by) -%}
    aggregate(
        array_sort(collect_list(cast({{ expression }} as double)) over (partition by {{ partition_by }})),
        cast(null as double),
        (total, term) -> coalesce(total, 0D) + term
    )
{%- endmacro %}
