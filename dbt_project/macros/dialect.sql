{#-
    Small dialect differences between the engines (DuckDB: default__, Spark:
    macros/spark/dialect.sql), for what dbt's cross-database macros (dbt.datediff,
    dbt.dateadd, dbt.type_string, ...) do not cover.
-#}

{# Integer division rounding toward minus infinity for non-negative operands: a // b. #}
{% macro int_div(numerator, denominator) -%}
    {{ return(adapter.dispatch('int_div')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__int_div(numerator, denominator) -%}
    ({{ numerator }}) // ({{ denominator }})
{%- endmacro %}

{# Seconds since 1970-01-01 of a timestamp, as a double. #}
{% macro epoch_seconds(timestamp) -%}
    {{ return(adapter.dispatch('epoch_seconds')(timestamp)) }}
{%- endmacro %}

{% macro default__epoch_seconds(timestamp) -%}
    epoch({{ timestamp }})
{%- endmacro %}

{#
    A column type of the contract vocabulary (varchar, varchar[], integer, bigint, double,
    boolean, date, timestamp) in the engine's own words.
#}
{% macro sql_type(name) -%}
    {{ return(adapter.dispatch('sql_type')(name)) }}
{%- endmacro %}

{% macro default__sql_type(name) -%}
    {{ return(name) }}
{%- endmacro %}

{# Stop the query with `message` (a row-level assertion). #}
{% macro fail_with(message) -%}
    {{ return(adapter.dispatch('fail_with')(message)) }}
{%- endmacro %}

{% macro default__fail_with(message) -%}
    error('{{ message }}')
{%- endmacro %}

{# An empty list literal (cast it to the list's type). #}
{% macro empty_list() -%}
    {{ return(adapter.dispatch('empty_list')()) }}
{%- endmacro %}

{% macro default__empty_list() -%}
    []
{%- endmacro %}

{# The first element of a list, NULL when it is empty (DuckDB lists count from 1). #}
{% macro first_element(list) -%}
    {{ return(adapter.dispatch('first_element')(list)) }}
{%- endmacro %}

{% macro default__first_element(list) -%}
    {{ list }}[1]
{%- endmacro %}
