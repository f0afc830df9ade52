-- Published campaign results (ml/campaigns/measurement.py) of the latest measurement up
-- to the run's logical date: one row per campaign whose attribution window has ended, with
-- the sample-ratio check, CUPED and always-valid intervals (empty before the campaign
-- measurement first runs). The staging view types the columns.
select * from {{ ref('stg_ml__campaign_results') }}
