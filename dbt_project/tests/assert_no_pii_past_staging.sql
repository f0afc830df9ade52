-- No relation outside raw and staging may carry an email, a first name or a reviewer's name
-- (Amazon's reviewerName is dropped by the importer), even hashed.
-- depends_on: {{ ref('customer_features') }}
-- depends_on: {{ ref('customer_rfm_segments') }}
-- depends_on: {{ ref('interactions') }}
select table_schema, table_name, column_name
from information_schema.columns
where table_schema not in ('raw', 'staging', 'information_schema', 'pg_catalog')
    and (
        lower(column_name) like '%email%'
        or lower(column_name) like '%first_name%'
        or lower(column_name) like '%reviewer%'
    )
