-- Published campaign insights (ml/campaigns/insights.py) of the latest measurement up to
-- the run's logical date: for every measured campaign, its lift by RFM segment and by
-- behavioural cluster at launch (and by copy arm for an A/B of copy), with the statistics
-- of campaign_results, Holm-adjusted p-values and the targeting rule's verdict.
select * from {{ ref('stg_ml__campaign_insights') }}
