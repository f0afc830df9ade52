-- PII ends here: email survives only as a salted hash, first_name is dropped.
-- A table, unlike the other staging models: the salt exists only in dbt's own sessions
-- (macros/pii.sql), so the hash is computed once, at build time.
{{ config(materialized='table') }}
with

source as (

    select * from {{ source('raw', 'customers') }}

),

renamed as (

    select
        trim(customer_id) as customer_id,
        {{ hash_email('email') }} as email_hash,
        nullif(trim(country), '') as country,
        signed_up_at,
        coalesce(marketing_opt_in, false) as marketing_opt_in,
        _source_file,
        _batch_id

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
