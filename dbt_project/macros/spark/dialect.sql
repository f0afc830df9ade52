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
    {%- set lowered = name | trim | lower -%}
    {#- A list of structs, DuckDB's struct(a t, b u)[]: Spark's array<struct<a:t,b:u>>. -#}
    {%- if lowered.startswith('struct(') and lowered.endswith(')[]') -%}
        {%- set fields = [] -%}
        {%- for field in lowered[7:-3].split(',') -%}
            {%- set parts = field.strip().split(' ', 1) -%}
            {%- do fields.append(parts[0] ~ ':' ~ spark__sql_type(parts[1])) -%}
        {%- endfor -%}
        {{ return('array<struct<' ~ fields | join(',') ~ '>>') }}
    {%- endif -%}
    {{ return(spark_names.get(lowered, name)) }}
{%- endmacro %}

{% macro spark__empty_list() -%}
    array()
{%- endmacro %}

{% macro spark__first_element(list) -%}
    try_element_at({{ list }}, 1)
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
