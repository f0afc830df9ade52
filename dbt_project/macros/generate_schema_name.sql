{#-
    Schemas are exactly the folder's `+schema` (staging, intermediate, marts, seeds, and
    whatever later folders declare, e.g. outputs), not dbt's default `<target>_<custom>`:
    the Python steps and analysts address them by these fixed names.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
