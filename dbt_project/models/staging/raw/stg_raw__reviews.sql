with

source as (

    select * from {{ source('raw', 'reviews') }}

),

renamed as (

    select
        trim(review_id) as review_id,
        trim(customer_id) as customer_id,
        trim(product_id) as product_id,
        rating,
        -- Free text may hold personal details: it stays in staging.
        nullif(trim(title), '') as review_title,
        nullif(trim(body), '') as review_body,
        created_at,
        _source_file,
        _batch_id

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
