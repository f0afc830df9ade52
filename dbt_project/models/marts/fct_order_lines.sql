-- Incremental fact (dbt_project.yml); why it equals a full refresh: macros/incremental_sync.sql.
{{
    config(
        incremental_strategy=incremental_strategy(),
        pre_hook=[
            "{{ delete_stale_rows('ordered_at', [
                {'relation': ref('stg_raw__order_lines'), 'file_column': '_source_file', 'batch_column': '_batch_id'},
                {'relation': ref('stg_raw__orders'), 'file_column': '_order_source_file', 'batch_column': '_order_batch_id'},
            ]) }}"
        ],
    )
}}
-- depends_on: {{ ref('stg_raw__erasure_requests') }}

with

order_lines as (

    select * from {{ ref('int_order_lines_netted') }}

),

new_order_lines as (

    -- Order files count too: a replaced order file may change the status of its lines.
    {{ rows_to_append('order_lines', 'ordered_at', [
        ['_source_file', '_batch_id'],
        ['_order_source_file', '_order_batch_id'],
    ]) }}

)

select * from new_order_lines
