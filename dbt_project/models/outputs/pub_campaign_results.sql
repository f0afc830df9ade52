-- Published campaign results (ml/campaigns/measurement.py) of the latest measurement up
-- to the run's logical date: one row per campaign whose attribution window has ended
-- (empty before the campaign measurement first runs).
with

measured as (

    select * from {{ ref('stg_ml__campaign_results') }}

)

select
    cast(campaign_id as varchar) as campaign_id,
    cast(campaign_name as varchar) as campaign_name,
    cast(channel as varchar) as channel,
    cast(target_type as varchar) as target_type,
    cast(target_value as varchar) as target_value,
    cast(audience_date as date) as audience_date,
    cast(window_start as timestamp) as window_start,
    cast(window_end as timestamp) as window_end,
    cast(treatment_size as bigint) as treatment_size,
    cast(control_size as bigint) as control_size,
    cast(treatment_conversions as bigint) as treatment_conversions,
    cast(control_conversions as bigint) as control_conversions,
    cast(treatment_conversion_rate as double) as treatment_conversion_rate,
    cast(control_conversion_rate as double) as control_conversion_rate,
    cast(treatment_revenue_per_customer as double) as treatment_revenue_per_customer,
    cast(control_revenue_per_customer as double) as control_revenue_per_customer,
    cast(absolute_lift as double) as absolute_lift,
    cast(relative_lift as double) as relative_lift,
    cast(lift_ci_low as double) as lift_ci_low,
    cast(lift_ci_high as double) as lift_ci_high,
    cast(p_value as double) as p_value,
    cast(revenue_lift_per_customer as double) as revenue_lift_per_customer,
    cast(confidence_level as double) as confidence_level,
    cast(sample_too_small as boolean) as sample_too_small,
    cast(conclusion as varchar) as conclusion,
    cast(logical_date as date) as logical_date
from measured
