-- Every (r_score, fm_score) cell of the 5 x 5 grid must match at least one segment rule,
-- so an edit of the seed cannot leave customers unclassified.
with

cells as (

    select r.r_score, fm.fm_score
    from (values (1), (2), (3), (4), (5)) as r(r_score)
    cross join (values (1), (2), (3), (4), (5)) as fm(fm_score)

),

rules as (

    select * from {{ ref('rfm_segment_rules') }}

)

select cells.r_score, cells.fm_score
from cells
where not exists (
    select 1
    from rules
    where cells.r_score between rules.r_score_min and rules.r_score_max
        and cells.fm_score between rules.fm_score_min and rules.fm_score_max
)
