with

source as (

    select * from {{ source('raw', 'erasure_requests') }}

),

renamed as (

    select
        trim(customer_id) as customer_id,
        requested_at,
        _source_file,
        _batch_id

    from source

)

select * from renamed
