-- ml.cluster_profiles (ml/segments.py) as of the run's logical date.
with

source as (

    {{ as_of_partition(source('ml', 'cluster_profiles')) }}

),

renamed as (

    select
        cast(cluster_id as integer) as cluster_id,
        cast(cluster_name as varchar) as cluster_name,
        cast(customers as bigint) as customers,
        cast(share as double) as share,
        cast(mean_recency_days as double) as mean_recency_days,
        cast(mean_frequency as double) as mean_frequency,
        cast(mean_monetary as double) as mean_monetary,
        cast(mean_avg_order_value as double) as mean_avg_order_value,
        cast(top_categories as varchar) as top_categories,
        cast(k as integer) as k,
        cast(silhouette as double) as silhouette,
        cast(description as varchar) as description,
        cast(logical_date as date) as logical_date

    from source

)

select * from renamed
