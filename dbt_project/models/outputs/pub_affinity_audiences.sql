-- Published category affinity audiences (ml/serving/segments.py) of the run's logical
-- date; the staging view types the columns.
select * from {{ ref('stg_ml__affinity_audiences') }}
