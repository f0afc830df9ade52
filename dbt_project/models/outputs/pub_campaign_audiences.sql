-- Published campaign audiences (ml/campaigns/audiences.py): every campaign launched up to
-- the run's logical date, with its frozen audience (the launch date's partition), the
-- treatment/control group, the products to feature and the generated copy (treatment
-- only: subject and message from the copy writer of the customer's arm; PII stays a
-- first_name placeholder for the sending system).
-- Customers erased since the launch are left out by the staging view (right to be
-- forgotten); before the campaign step first runs, the table is empty.
with

launched as (

    select * from {{ ref('stg_ml__campaign_audiences') }}
    -- A campaign's audience is the one of its first launch; it never changes afterwards.
    qualify logical_date = min(logical_date) over (partition by campaign_id)

),

definitions as (

    select campaign_id, campaign_name from {{ ref('stg_raw__campaigns') }}
    union all
    select campaign_id, name as campaign_name from {{ ref('campaigns_manual') }}

)

select
    cast(launched.campaign_id as varchar) as campaign_id,
    cast(definitions.campaign_name as varchar) as campaign_name,
    cast(launched.customer_id as varchar) as customer_id,
    cast(launched.assignment_group as varchar) as "group",
    cast(launched.rank as integer) as rank,
    cast(launched.affinity as double) as affinity,
    cast(launched.segment as varchar) as segment,
    cast(launched.cluster_name as varchar) as cluster_name,
    cast(launched.product_ids as varchar[]) as product_ids,
    cast(launched.product_names as varchar[]) as product_names,
    cast(launched.message as varchar) as message,
    cast(launched.channel as varchar) as channel,
    cast(launched.contact_date as date) as contact_date,
    cast(launched.subject as varchar) as subject,
    cast(launched.copy_writer as varchar) as copy_writer,
    cast(launched.logical_date as date) as logical_date

from launched
left join definitions on launched.campaign_id = definitions.campaign_id
