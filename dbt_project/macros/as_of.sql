{#-
    Point in time. `as_of` is the run's logical date (YYYY-MM-DD); the as-of moment is the
    end of that day, so a row is in when its timestamp < as_of + 1 day.
-#}

{#-
    Where the date comes from: dbt's var `as_of` when given (`--vars`, unit-test overrides,
    Cosmos tasks), else the environment variable AFFINITY_AS_OF that ml.warehouse.dbt.run_dbt
    sets, read only while executing. A var that changes every night makes dbt re-parse the
    whole project (~8 s) on each run; an environment variable dbt never saw while parsing
    keeps the saved partial parse valid. Neither given: 2100-01-01 ("everything loaded").
-#}
{% macro as_of_value() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value is none -%}
        {%- set value = env_var('AFFINITY_AS_OF', '') if execute else '' -%}
    {%- endif -%}
    {%- set value = (value | string | trim) or '2100-01-01' -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value) -%}
        {{ exceptions.raise_compiler_error("var `as_of` must be a date 'YYYY-MM-DD', got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}

{# The as-of date itself: day counts (recency_days, tenure_days) are measured to it. #}
{% macro as_of_date() -%}
    date '{{ as_of_value() }}'
{%- endmacro %}

{# Exclusive upper bound on timestamps: midnight after the as-of date. #}
{% macro as_of_end() -%}
    cast(date '{{ as_of_value() }}' + interval 1 day as timestamp)
{%- endmacro %}
