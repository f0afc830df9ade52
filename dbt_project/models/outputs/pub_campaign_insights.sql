-- Published campaign insights (ml/campaigns/insights.py) of the latest measurement up to
-- the run's logical date: for every measured campaign, its lift by RFM segment and by
-- behavioural cluster at launch (and by copy arm for an A/B of copy), with the statistics
-- of campaign_results, Holm-adjusted p-values and the targeting rule's verdict.
{%- set as_of = var('as_of') %}
{%- set insights = source('ml', 'campaign_insights') %}
{%- set missing = execute and adapter.get_relation(
    database=insights.database, schema=insights.schema, identifier=insights.identifier
) is none %}
with

{% if missing %}

-- Nothing measured in this warehouse yet: an empty, typed table.
learned as (

    select
        cast(null as varchar) as campaign_id,
        cast(null as varchar) as campaign_name,
        cast(null as varchar) as dimension,
        cast(null as varchar) as dimension_value,
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
        cast(null as double) as p_value_holm,
        cast(null as double) as revenue_lift_per_customer,
        cast(null as double) as confidence_level,
        cast(null as boolean) as sample_too_small,
        cast(null as varchar) as conclusion,
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
        cast(null as varchar) as targeting,
        cast(null as date) as logical_date
    where false

)

{% else %}

learned as (

    select * from {{ insights }}
    where logical_date = (
        select max(logical_date) from {{ insights }}
        where logical_date <= date '{{ as_of }}'
    )

)

{% endif %}

select
    cast(campaign_id as varchar) as campaign_id,
    cast(campaign_name as varchar) as campaign_name,
    cast(dimension as varchar) as dimension,
    cast(dimension_value as varchar) as dimension_value,
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
    cast(p_value_holm as double) as p_value_holm,
    cast(revenue_lift_per_customer as double) as revenue_lift_per_customer,
    cast(confidence_level as double) as confidence_level,
    cast(sample_too_small as boolean) as sample_too_small,
    cast(conclusion as varchar) as conclusion,
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
    cast(targeting as varchar) as targeting,
    cast(logical_date as date) as logical_date
from learned
