with

source as (

    select * from {{ source('raw', 'products') }}

),

renamed as (

    select
        trim(product_id) as product_id,
        nullif(trim(name), '') as product_name,
        nullif(trim(description), '') as product_description,
        -- Online Retail has no categories: one explicit bucket keeps group-bys total.
        coalesce(nullif(trim(category), ''), 'Uncategorized') as category,
        nullif(trim(brand), '') as brand,
        price,
        coalesce(is_active, true) as is_active,
        coalesce(is_product, true) as is_product,
        first_seen_at,
        _source_file,
        _batch_id

    from source

)

select * from renamed
