-- Named RFM segment of every customer with a purchase, from the marketer-editable rule
-- table seeds/rfm_segment_rules.csv: the matching rule with the lowest priority wins.
with

scored as (

    select * from {{ ref('int_customers_rfm_scored') }}

),

rules as (

    select * from {{ ref('rfm_segment_rules') }}

),

candidates as (

    select
        scored.*,
        rules.segment,
        rules.priority,
        row_number() over (partition by scored.customer_id order by rules.priority) as rule_rank

    from scored
    left join rules
        on scored.r_score between rules.r_score_min and rules.r_score_max
        and scored.fm_score between rules.fm_score_min and rules.fm_score_max

),

matched as (

    select * from candidates
    where rule_rank = 1

)

select
    customer_id,
    r_score,
    f_score,
    m_score,
    fm_score,
    cast(r_score as {{ dbt.type_string() }}) || cast(f_score as {{ dbt.type_string() }}) || cast(m_score as {{ dbt.type_string() }}) as rfm_cell,
    -- A rule table with a gap must not silently drop customers.
    coalesce(segment, 'Unclassified') as segment,
    recency_days,
    frequency,
    monetary,
    {{ as_of_date() }} as as_of_date

from matched
