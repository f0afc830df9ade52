{#-
    The columns outside raw and staging whose name says email, first name or reviewer (the no-PII
    test's rows). DuckDB: information_schema. Spark has none: the columns of every
    relation dbt built are listed at run time and the offenders returned as literal rows.
-#}
{% macro columns_named_like_pii() -%}
    {{ return(adapter.dispatch('columns_named_like_pii')()) }}
{%- endmacro %}

{% macro default__columns_named_like_pii() -%}
select table_schema, table_name, column_name
from information_schema.columns
where table_schema not in ('raw', 'staging', 'information_schema', 'pg_catalog')
    and (
        lower(column_name) like '%email%'
        or lower(column_name) like '%first_name%'
        or lower(column_name) like '%reviewer%'
    )
{%- endmacro %}

{% macro spark__columns_named_like_pii() -%}
    {%- set offenders = [] -%}
    {%- if execute -%}
        {%- for schema in ['seeds', 'intermediate', 'marts', 'outputs', 'ml'] -%}
            {%- if adapter.check_schema_exists(database=none, schema=schema) -%}
                {%- for row in run_query('show tables in ' ~ schema) -%}
                    {%- set relation = api.Relation.create(schema=schema, identifier=row[1]) -%}
                    {%- for column in adapter.get_columns_in_relation(relation) -%}
                        {%- set name = column.name | lower -%}
                        {%- if 'email' in name or 'first_name' in name or 'reviewer' in name -%}
                            {%- do offenders.append((schema, row[1], column.name)) -%}
                        {%- endif -%}
                    {%- endfor -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if offenders -%}
        {%- for schema, table, column in offenders %}
select '{{ schema }}' as table_schema, '{{ table }}' as table_name, '{{ column }}' as column_name
            {%- if not loop.last %} union all {% endif -%}
        {%- endfor %}
    {%- else %}
select cast(null as string) as table_schema, cast(null as string) as table_name,
    cast(null as string) as column_name
where false
    {%- endif %}
{%- endmacro %}
