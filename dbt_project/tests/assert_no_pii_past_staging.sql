-- No relation outside raw and staging may carry an email or a first name, even hashed.
-- depends_on: {{ ref('customer_features') }}
-- depends_on: {{ ref('customer_rfm_segments') }}
-- depends_on: {{ ref('interactions') }}
{{ columns_named_like_pii() }}
