{#- Incremental: see macros/incremental_sync.sql for why this equals a full refresh. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
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

{% if is_incremental() %}

loaded_line_files as (

    select distinct _source_file, _batch_id from {{ this }}

),

loaded_order_files as (

    select distinct _order_source_file, _order_batch_id from {{ this }}

),

watermark as (

    select max(ordered_at) as loaded_until from {{ this }}

),

new_order_lines as (

    -- New or replaced line files, new or replaced order files (status may have changed),
    -- or lines past the watermark of files already loaded.
    select order_lines.*
    from order_lines
    cross join watermark
    where (order_lines._source_file, order_lines._batch_id) not in (select * from loaded_line_files)
        or (order_lines._order_source_file, order_lines._order_batch_id)
            not in (select * from loaded_order_files)
        or watermark.loaded_until is null
        or order_lines.ordered_at > watermark.loaded_until

),

{% else %}

new_order_lines as (

    select * from order_lines

),

{% endif %}

final as (

    select
        order_id,
        line_no,
        customer_id,
        product_id,
        ordered_at,
        order_date,
        order_status,
        quantity,
        unit_price,
        net_quantity,
        line_amount,
        net_revenue,
        is_reversal,
        _source_file,
        _batch_id,
        _order_source_file,
        _order_batch_id

    from new_order_lines

)

select * from final
