with

source as (

    select * from {{ source('raw', 'events') }}

),

renamed as (

    select
        trim(event_id) as event_id,
        nullif(trim(customer_id), '') as customer_id,
        trim(session_id) as session_id,
        nullif(trim(product_id), '') as product_id,
        lower(trim(event_type)) as event_type,
        occurred_at,
        _source_file,
        _batch_id

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
