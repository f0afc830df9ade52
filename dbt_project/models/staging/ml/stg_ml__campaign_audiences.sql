-- ml.campaign_audiences (ml/campaigns/audiences.py): every audience launched on or before
-- the run's logical date (all partitions: an audience is frozen at its campaign's first
-- launch and measured later); erased customers removed. Empty until the campaign step
-- first runs in this warehouse.
{%- set columns = [
    ('campaign_id', 'varchar'), ('customer_id', 'varchar'), ('assignment_group', 'varchar'),
    ('rank', 'integer'), ('affinity', 'double'), ('segment', 'varchar'),
    ('cluster_name', 'varchar'), ('product_ids', 'varchar[]'), ('product_names', 'varchar[]'),
    ('message', 'varchar'), ('channel', 'varchar'), ('contact_date', 'date'),
    ('subject', 'varchar'), ('copy_writer', 'varchar'), ('logical_date', 'date')
] %}
with

source as (

    {{ as_of_partition(source('ml', 'campaign_audiences'), partitions='all', missing_columns=column_names(columns)) }}

),

renamed as (

    select {{ typed_columns(columns) }}

    from source

)

select * from renamed
where {{ not_erased('customer_id') }}
