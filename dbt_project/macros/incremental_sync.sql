{#-
    Incremental sync of an append-mostly fact with raw lineage (_source_file, _batch_id).

    Ingest never edits a raw row: a replaced landing file has all its old rows deleted and
    its new rows inserted under a new _batch_id. So a (_source_file, _batch_id) pair stands
    for an immutable set of rows, and an incremental run is:

    1. pre-hook (delete_stale_rows): delete target rows that a full refresh would not produce:
       - rows whose lineage pair is no longer in raw (file replaced or removed),
       - rows at or after the as-of end (a backfill to an earlier date),
       - rows of erased customers;
    2. model SQL (rows_to_append, below): append source rows whose lineage pair is not in
       the target (new or replaced files) or whose time is past the target's watermark
       (rows of already loaded files that the previous, earlier as_of left out).

    Every row the target keeps is then unchanged in raw and every missing row is appended,
    so the result equals a full refresh (tests/test_dbt_incremental.py proves it).

    lineages: list of {'relation': <ref>, 'file_column': .., 'batch_column': ..} where the
    relation exposes _source_file and _batch_id and the target stores them in the columns
    named.
-#}
{#- The strategy of the incremental facts: append after the stale-row delete (DuckDB). -#}
{% macro incremental_strategy() -%}
    {{ return(adapter.dispatch('incremental_strategy')()) }}
{%- endmacro %}

{% macro default__incremental_strategy() -%}
    {{ return('append') }}
{%- endmacro %}

{% macro delete_stale_rows(time_column, lineages) -%}
    {{ return(adapter.dispatch('delete_stale_rows')(time_column, lineages)) }}
{%- endmacro %}

{% macro default__delete_stale_rows(time_column, lineages) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ time_column }} >= {{ as_of_end() }}
            or customer_id in (select customer_id from {{ ref('stg_raw__erasure_requests') }})
        {%- for lineage in lineages %}
            or ({{ lineage.file_column }}, {{ lineage.batch_column }}) not in (
                select distinct (_source_file, _batch_id) from {{ lineage.relation }}
            )
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{#-
    Step 2, the model side: the rows of `rows` (a CTE or relation with the target's lineage
    columns) to append. On an incremental run, rows whose lineage pair is not in the target
    (new or replaced files) or whose time is past the target's watermark (rows of loaded
    files that an earlier as_of held back); on a full refresh, every row.

    lineage_columns: list of [file_column, batch_column] pairs, named the same in `rows`
    and in the target (fct_order_lines has two: the line's file and its order's file,
    whose replacement may change the order's status).
-#}
{% macro rows_to_append(rows, time_column, lineage_columns) -%}
    {{ return(adapter.dispatch('rows_to_append')(rows, time_column, lineage_columns)) }}
{%- endmacro %}

{% macro default__rows_to_append(rows, time_column, lineage_columns) -%}
    {%- if is_incremental() -%}
        select {{ rows }}.*
        from {{ rows }}
        cross join (select max({{ time_column }}) as loaded_until from {{ this }}) as watermark
        where watermark.loaded_until is null
            or {{ rows }}.{{ time_column }} > watermark.loaded_until
        {%- for file_column, batch_column in lineage_columns %}
            or ({{ rows }}.{{ file_column }}, {{ rows }}.{{ batch_column }}) not in (
                select distinct {{ file_column }}, {{ batch_column }} from {{ this }}
            )
        {%- endfor %}
    {%- else -%}
        select * from {{ rows }}
    {%- endif -%}
{%- endmacro %}
