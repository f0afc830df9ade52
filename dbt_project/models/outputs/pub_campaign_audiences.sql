-- Published campaign audiences (ml/campaigns/audiences.py): every campaign launched up to
-- the run's logical date, with its frozen audience (the launch date's partition), the
-- treatment/control group, the products to feature and the generated copy (treatment
-- only: subject and message from the copy writer of the customer's arm; PII stays a
-- first_name placeholder for the sending system).
-- Customers erased since the launch are left out by the staging view (right to be
-- forgotten); before the campaign step first runs, the table is empty.
with

launched as (

    -- A campaign's audience is the one of its first launch; it never changes afterwards.
    select * from (
        select
            *,
            min(logical_date) over (partition by campaign_id) as first_launch_date
        from {{ ref('stg_ml__campaign_audiences') }}
    ) as audiences
    where logical_date = first_launch_date

),

definitions as (

    select campaign_id, campaign_name from {{ ref('stg_raw__campaigns') }}
    union all
    select campaign_id, name as campaign_name from {{ ref('campaigns_manual') }}

)

select
    cast(launched.campaign_id as {{ dbt.type_string() }}) as campaign_id,
    cast(definitions.campaign_name as {{ dbt.type_string() }}) as campaign_name,
    cast(launched.customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(launched.assignment_group as {{ dbt.type_string() }}) as {{ adapter.quote('group') }},
    cast(launched.rank as integer) as rank,
    cast(launched.affinity as double) as affinity,
    cast(launched.segment as {{ dbt.type_string() }}) as segment,
    cast(launched.cluster_name as {{ dbt.type_string() }}) as cluster_name,
    cast(launched.product_ids as {{ sql_type('varchar[]') }}) as product_ids,
    cast(launched.product_names as {{ sql_type('varchar[]') }}) as product_names,
    cast(launched.message as {{ dbt.type_string() }}) as message,
    cast(launched.channel as {{ dbt.type_string() }}) as channel,
    cast(launched.contact_date as date) as contact_date,
    cast(launched.subject as {{ dbt.type_string() }}) as subject,
    cast(launched.copy_writer as {{ dbt.type_string() }}) as copy_writer,
    cast(launched.logical_date as date) as logical_date

from launched
left join definitions on launched.campaign_id = definitions.campaign_id
