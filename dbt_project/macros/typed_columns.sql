{#-
    The typed projection of a table the Python steps write: one `cast(name as type) as
    name` per (name, type) pair, in order (types in the contract vocabulary: sql_type()
    says them in the engine's words). The staging views of schema `ml` declare each
    table's columns once, as such a list, and use it for the projection and for the
    empty fallback of a table that does not exist yet (as_of_partition's missing_columns).
-#}
{% macro typed_columns(columns, prefix='') -%}
    {%- for name, type in columns %}
    cast({{ prefix }}{{ name }} as {{ sql_type(type) }}) as {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{# The names of a typed column list. #}
{% macro column_names(columns) -%}
    {{ return(columns | map(attribute=0) | list) }}
{%- endmacro %}
