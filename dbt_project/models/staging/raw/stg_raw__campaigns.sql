-- A table on Spark: ml/campaigns reads it, and only tables reach the Python side there.
{{ config(materialized='table' if target.type == 'spark' else 'view') }}
with

source as (

    select * from {{ source('raw', 'campaigns') }}

),

renamed as (

    select
        trim(campaign_id) as campaign_id,
        trim(name) as campaign_name,
        lower(trim(channel)) as channel,
        lower(trim(target_type)) as target_type,
        trim(target_value) as target_value,
        starts_at,
        ends_at,
        max_audience,
        control_share,
        coalesce(priority, 0) as priority,
        message_template,
        nullif(lower(trim(goal)), '') as goal,
        nullif(trim(offer), '') as offer,
        discount_percent,
        nullif(lower(trim(copy_writers)), '') as copy_writers,
        _source_file,
        _batch_id

    from source

)

select * from renamed
