-- Published campaign results (ml/campaigns/measurement.py) of the latest measurement up
-- to the run's logical date: one row per campaign whose attribution window has ended.
{%- set as_of = var('as_of') %}
{%- set results = source('ml', 'campaign_results') %}
{%- set missing = execute and adapter.get_relation(
    database=results.database, schema=results.schema, identifier=results.identifier
) is none %}
with

{% if missing %}

-- Nothing measured in this warehouse yet: an empty, typed table.
measured as (

    select
        cast(null as varchar) as campaign_id,
        cast(null as varchar) as campaign_name,
        cast(null as varchar) as channel,
        cast(null as varchar) as target_type,
        cast(null as varchar) as target_value,
        cast(null as date) as audience_date,
        cast(null as timestamp) as window_start,
        cast(null as timestamp) as window_end,
        cast(null as bigint) as treatment_size,
        cast(null as bigint) as control_size,
        cast(null as bigint) as treatment_conversions,
        cast(null as bigint) as control_conversions,
        cast(null as double) as treatment_conversion_rate,
        cast(null as double) as control_conversion_rate,
        cast(null as double) as treatment_revenue_per_customer,
        cast(null as double) as control_revenue_per_customer,
        cast(null as double) as absolute_lift,
        cast(null as double) as relative_lift,
        cast(null as double) as lift_ci_low,
        cast(null as double) as lift_ci_high,
        cast(null as double) as p_value,
        cast(null as double) as revenue_lift_per_customer,
        cast(null as double) as confidence_level,
        cast(null as boolean) as sample_too_small,
        cast(null as varchar) as conclusion,
        cast(null as timestamp) as pre_period_start,
        cast(null as double) as expected_control_share,
        cast(null as double) as srm_p_value,
        cast(null as boolean) as srm_detected,
        cast(null as double) as lift_sequential_ci_low,
        cast(null as double) as lift_sequential_ci_high,
        cast(null as double) as mde_absolute_lift,
        cast(null as double) as revenue_lift_ci_low,
        cast(null as double) as revenue_lift_ci_high,
        cast(null as double) as revenue_lift_cuped,
        cast(null as double) as revenue_lift_cuped_ci_low,
        cast(null as double) as revenue_lift_cuped_ci_high,
        cast(null as double) as revenue_lift_cuped_sequential_ci_low,
        cast(null as double) as revenue_lift_cuped_sequential_ci_high,
        cast(null as double) as revenue_lift_cuped_p_value,
        cast(null as double) as cuped_variance_reduction,
        cast(null as double) as mde_revenue_per_customer,
        cast(null as date) as logical_date
    where false

)

{% else %}

measured as (

    select * from {{ results }}
    where logical_date = (
        select max(logical_date) from {{ results }}
        where logical_date <= date '{{ as_of }}'
    )

)

{% endif %}

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
    cast(pre_period_start as timestamp) as pre_period_start,
    cast(expected_control_share as double) as expected_control_share,
    cast(srm_p_value as double) as srm_p_value,
    cast(srm_detected as boolean) as srm_detected,
    cast(lift_sequential_ci_low as double) as lift_sequential_ci_low,
    cast(lift_sequential_ci_high as double) as lift_sequential_ci_high,
    cast(mde_absolute_lift as double) as mde_absolute_lift,
    cast(revenue_lift_ci_low as double) as revenue_lift_ci_low,
    cast(revenue_lift_ci_high as double) as revenue_lift_ci_high,
    cast(revenue_lift_cuped as double) as revenue_lift_cuped,
    cast(revenue_lift_cuped_ci_low as double) as revenue_lift_cuped_ci_low,
    cast(revenue_lift_cuped_ci_high as double) as revenue_lift_cuped_ci_high,
    cast(revenue_lift_cuped_sequential_ci_low as double) as revenue_lift_cuped_sequential_ci_low,
    cast(revenue_lift_cuped_sequential_ci_high as double) as revenue_lift_cuped_sequential_ci_high,
    cast(revenue_lift_cuped_p_value as double) as revenue_lift_cuped_p_value,
    cast(cuped_variance_reduction as double) as cuped_variance_reduction,
    cast(mde_revenue_per_customer as double) as mde_revenue_per_customer,
    cast(logical_date as date) as logical_date
from measured
