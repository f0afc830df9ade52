-- ml.campaign_audiences (ml/campaigns/audiences.py): every audience launched on or before
-- the run's logical date (all partitions: an audience is frozen at its campaign's first
-- launch and measured later); erased customers removed. Empty until the campaign step
-- first runs in this warehouse.
{%- set columns = [
    'logical_date', 'campaign_id', 'customer_id', 'assignment_group', 'rank', 'affinity',
    'segment', 'cluster_name', 'product_ids', 'product_names', 'message', 'channel',
    'contact_date',
] %}
with

source as (

    {{ as_of_partition(source('ml', 'campaign_audiences'), partitions='all', missing_columns=columns) }}

),

renamed as (

    select
        cast(campaign_id as varchar) as campaign_id,
        cast(customer_id as varchar) as customer_id,
        cast(assignment_group as varchar) as assignment_group,
        cast(rank as integer) as rank,
        cast(affinity as double) as affinity,
        cast(segment as varchar) as segment,
        cast(cluster_name as varchar) as cluster_name,
        cast(product_ids as varchar[]) as product_ids,
        cast(product_names as varchar[]) as product_names,
        cast(message as varchar) as message,
        cast(channel as varchar) as channel,
        cast(contact_date as date) as contact_date,
        cast(logical_date as date) as logical_date

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
