-- ml.cluster_profiles (ml/serving/segments.py) as of the run's logical date.
{%- set columns = [
    ('cluster_id', 'integer'), ('cluster_name', 'varchar'), ('customers', 'bigint'),
    ('share', 'double'), ('mean_recency_days', 'double'), ('mean_frequency', 'double'),
    ('mean_monetary', 'double'), ('mean_avg_order_value', 'double'),
    ('top_categories', 'varchar'), ('k', 'integer'), ('silhouette', 'double'),
    ('description', 'varchar'), ('logical_date', 'date')
] %}
with

source as (

    {{ as_of_partition(source('ml', 'cluster_profiles')) }}

),

renamed as (

    select {{ typed_columns(columns) }}

    from source

)

select * from renamed
