-- R, F and M scores 1-5 of every customer with at least one purchase order: the quintile
-- of the share of buyers with a strictly worse value, 1 + floor(5 * worse / buyers).
-- Equal values always share a score (no arbitrary tie-splitting) and a tie takes the
-- lowest quintile it spans, so one-order customers (often a third of buyers) get F = 1.
-- 5 is best: most recent, most frequent, highest spend.
with

buyers as (

    select customer_id, recency_days, frequency, monetary
    from {{ ref('customer_features') }}
    where frequency > 0

),

ranked as (

    -- rank() - 1 = buyers with a strictly worse value (ties share the rank).
    select
        *,
        count(*) over () as buyers_total,
        rank() over (order by recency_days desc) - 1 as r_worse,
        rank() over (order by frequency) - 1 as f_worse,
        rank() over (order by monetary) - 1 as m_worse

    from buyers

),

scored as (

    -- 1 + floor(5 * worse / n) in integer arithmetic: exact at quintile borders.
    select
        customer_id,
        recency_days,
        frequency,
        monetary,
        cast(1 + {{ int_div('5 * r_worse', 'buyers_total') }} as integer) as r_score,
        cast(1 + {{ int_div('5 * f_worse', 'buyers_total') }} as integer) as f_score,
        cast(1 + {{ int_div('5 * m_worse', 'buyers_total') }} as integer) as m_score

    from ranked

)

select
    *,
    -- Frequency and monetary move together; segments read their rounded-up mean.
    cast({{ int_div('f_score + m_score + 1', '2') }} as integer) as fm_score

from scored
