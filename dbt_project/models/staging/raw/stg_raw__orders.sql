with

source as (

    select * from {{ source('raw', 'orders') }}

),

renamed as (

    select
        trim(order_id) as order_id,
        nullif(trim(customer_id), '') as customer_id,
        ordered_at,
        lower(trim(status)) as order_status,
        lower(nullif(trim(channel), '')) as channel,
        nullif(trim(country), '') as country,
        _source_file,
        _batch_id

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
