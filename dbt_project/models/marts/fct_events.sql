-- Incremental fact (dbt_project.yml); why it equals a full refresh: macros/incremental_sync.sql.
{{
    config(
        incremental_strategy=incremental_strategy(),
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

new_events as (

    {{ rows_to_append('events', 'occurred_at', [['_source_file', '_batch_id']]) }}

),

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
