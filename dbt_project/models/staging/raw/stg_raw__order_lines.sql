-- Lines carry no customer: erased customers' lines drop out through their orders.
with

source as (

    select * from {{ source('raw', 'order_lines') }}

),

renamed as (

    select
        trim(order_id) as order_id,
        line_no,
        trim(product_id) as product_id,
        quantity,
        unit_price,
        _source_file,
        _batch_id

    from source

)

select * from renamed
