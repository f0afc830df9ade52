-- Published category affinity audiences (ml/segments.py) of the run's logical date.
select
    cast(category as varchar) as category,
    cast(rank as integer) as rank,
    cast(customer_id as varchar) as customer_id,
    cast(affinity as double) as affinity,
    cast(logical_date as date) as logical_date

from {{ ref('stg_ml__affinity_audiences') }}
