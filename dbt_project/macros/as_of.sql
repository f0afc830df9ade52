{#-
    Point in time. `as_of` is the run's logical date (YYYY-MM-DD); the as-of moment is the
    end of that day, so a row is in when its timestamp < as_of + 1 day.
-#}

{% macro as_of_value() -%}
    {%- set value = var('as_of') | string | trim -%}
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
