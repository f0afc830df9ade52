{#-
    Contracts on Spark. The model ymls declare column types in one vocabulary (varchar,
    integer, double, timestamp, ...); dbt checks a contract by running
    `select cast(null as <type>) as <column>` for the declared columns and comparing the
    result's types with the model's. Spark has no bare `varchar`, so the declared types
    are first said in Spark's words (sql_type), then dbt's own check runs unchanged: the
    same ymls enforce the same contracts on both engines.
-#}
{% macro spark__get_empty_schema_sql(columns) -%}
    {%- set translated = {} -%}
    {%- for name, column in columns.items() -%}
        {%- set copy = column.copy() if column is mapping else column -%}
        {%- if column is mapping and column.get('data_type') -%}
            {%- do copy.update({'data_type': sql_type(column['data_type'])}) -%}
        {%- endif -%}
        {%- do translated.update({name: copy}) -%}
    {%- endfor -%}
    {{ return(default__get_empty_schema_sql(translated)) }}
{%- endmacro %}
