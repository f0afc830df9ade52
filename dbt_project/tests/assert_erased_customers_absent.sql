-- An erased customer must not appear in any model past staging.
{%- set models_with_customers = [
    'dim_customers', 'fct_orders', 'fct_order_lines', 'fct_events', 'customer_features',
    'customer_category_affinity', 'interaction_events', 'interactions',
    'customer_rfm_segments', 'int_order_lines_netted', 'int_customers_rfm_scored',
] %}
with

erased as (

    select customer_id from {{ ref('stg_raw__erasure_requests') }}

)

{% for name in models_with_customers %}
{% if not loop.first %}union all{% endif %}
select '{{ name }}' as model_name, customer_id
from {{ ref(name) }}
where customer_id in (select customer_id from erased)
{% endfor %}
