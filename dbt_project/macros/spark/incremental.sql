{#-
    Incremental facts on Spark. Tables are Parquet (no Delta or Iceberg jars ship with
    pyspark, and none can be fetched at run time), so rows cannot be deleted: the DuckDB
    stale-row delete (delete_stale_rows) has no Spark equivalent. The facts are therefore
    rewritten whole with insert_overwrite, which equals the full refresh by construction.
    On a Delta or Iceberg target, `merge` on the fact's key with the same stale-row rule
    is the incremental form (set +file_format: delta and this strategy to merge).
-#}
{% macro spark__incremental_strategy() -%}
    {{ return('insert_overwrite') }}
{%- endmacro %}

{% macro spark__delete_stale_rows(time_column, lineages) -%}
    {#- Nothing: insert_overwrite replaces every row. -#}
{%- endmacro %}

{% macro spark__rows_to_append(rows, time_column, lineage_columns) -%}
    select * from {{ rows }}
{%- endmacro %}
