-- ml.campaign_insights (ml/campaigns/insights.py) of the latest measurement on or before
-- the run's logical date: lift by RFM segment, cluster and copy arm. Empty until the
-- campaign measurement first runs.
{%- set columns = [
    ('campaign_id', 'varchar'), ('campaign_name', 'varchar'), ('dimension', 'varchar'),
    ('dimension_value', 'varchar'), ('treatment_size', 'bigint'), ('control_size', 'bigint'),
    ('treatment_conversions', 'bigint'), ('control_conversions', 'bigint'),
    ('treatment_conversion_rate', 'double'), ('control_conversion_rate', 'double'),
    ('treatment_revenue_per_customer', 'double'), ('control_revenue_per_customer', 'double'),
    ('absolute_lift', 'double'), ('relative_lift', 'double'), ('lift_ci_low', 'double'),
    ('lift_ci_high', 'double'), ('p_value', 'double'), ('p_value_holm', 'double'),
    ('revenue_lift_per_customer', 'double'), ('confidence_level', 'double'),
    ('sample_too_small', 'boolean'), ('conclusion', 'varchar'),
    ('expected_control_share', 'double'), ('srm_p_value', 'double'),
    ('srm_detected', 'boolean'), ('lift_sequential_ci_low', 'double'),
    ('lift_sequential_ci_high', 'double'), ('mde_absolute_lift', 'double'),
    ('revenue_lift_ci_low', 'double'), ('revenue_lift_ci_high', 'double'),
    ('revenue_lift_cuped', 'double'), ('revenue_lift_cuped_ci_low', 'double'),
    ('revenue_lift_cuped_ci_high', 'double'),
    ('revenue_lift_cuped_sequential_ci_low', 'double'),
    ('revenue_lift_cuped_sequential_ci_high', 'double'),
    ('revenue_lift_cuped_p_value', 'double'), ('cuped_variance_reduction', 'double'),
    ('mde_revenue_per_customer', 'double'), ('targeting', 'varchar'), ('logical_date', 'date')
] %}
with

source as (

    {{ as_of_partition(source('ml', 'campaign_insights'), missing_columns=column_names(columns)) }}

),

renamed as (

    select {{ typed_columns(columns) }}

    from source

)

select * from renamed
