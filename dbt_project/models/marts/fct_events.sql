{#- Incremental: see macros/incremental_sync.sql for why this equals a full refresh. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{{ delete_stale_rows('occurred_at', [
                {'relation': ref('stg_raw__events'), 'file_column': '_source_file', 'batch_column': '_batch_id'},
            ]) }}"
        ],
    )
}}
-- depends_on: {{ ref('stg_raw__erasure_requests') }}

with

events as (

    select * from {{ ref('stg_raw__events') }}
    where occurred_at < {{ as_of_end() }}

),

{% if is_incremental() %}

loaded_files as (

    select distinct _source_file, _batch_id from {{ this }}

),

watermark as (

    select max(occurred_at) as loaded_until from {{ this }}

),

new_events as (

    -- New or replaced files, or events past the watermark of files already loaded.
    select events.*
    from events
    cross join watermark
    where (events._source_file, events._batch_id) not in (select * from loaded_files)
        or watermark.loaded_until is null
        or events.occurred_at > watermark.loaded_until

),

{% else %}

new_events as (

    select * from events

),

{% endif %}

final as (

    select
        event_id,
        customer_id,
        session_id,
        product_id,
        event_type,
        occurred_at,
        cast(occurred_at as date) as event_date,
        customer_id is null as is_anonymous,
        _source_file,
        _batch_id

    from new_events

)

select * from final
