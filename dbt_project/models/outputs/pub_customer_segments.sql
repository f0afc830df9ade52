-- Published segments: one row per customer with the RFM segment (dbt), the behavioural
-- cluster and the category of highest predicted affinity (ml/segments.py).
with

customers as (

    select customer_id from {{ ref('dim_customers') }}

),

rfm as (

    select customer_id, segment, r_score, f_score, m_score
    from {{ ref('customer_rfm_segments') }}

),

clusters as (

    select * from {{ ref('stg_ml__customer_clusters') }}

),

affinity as (

    select * from {{ ref('stg_ml__customer_affinity') }}

)

select
    cast(customers.customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(rfm.segment as {{ dbt.type_string() }}) as rfm_segment,
    cast(clusters.cluster_id as integer) as cluster_id,
    cast(clusters.cluster_name as {{ dbt.type_string() }}) as cluster_name,
    cast(rfm.r_score as integer) as r_score,
    cast(rfm.f_score as integer) as f_score,
    cast(rfm.m_score as integer) as m_score,
    cast(affinity.top_category as {{ dbt.type_string() }}) as top_affinity_category,
    cast(affinity.affinity as double) as top_affinity_score

from customers
left join rfm on customers.customer_id = rfm.customer_id
left join clusters on customers.customer_id = clusters.customer_id
left join affinity on customers.customer_id = affinity.customer_id
