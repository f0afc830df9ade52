-- No relation outside raw and staging may carry an email, a first name or a reviewer's name
-- (Amazon's reviewerName is dropped by the importer), even hashed.
-- depends_on: {{ ref('customer_features') }}
-- depends_on: {{ ref('customer_rfm_segments') }}
-- depends_on: {{ ref('interactions') }}
{{ columns_named_like_pii() }}
