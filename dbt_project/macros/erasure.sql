{#-
    Right to be forgotten, written once. Every staging model of an entity that carries a
    customer_id filters with this predicate, so no model past staging ever sees an erased
    customer (their orders, and through the orders their lines, events and reviews).
    Every request loaded applies, whatever `as_of`: a backfill run after the request must not
    bring the customer back. Incremental marts also delete already-loaded rows of newly
    erased customers (see delete_stale_rows), so erasure is irreversible there: withdrawing
    a request needs a --full-refresh to bring the customer back.
-#}
{% macro not_erased(customer_column) -%}
    ({{ customer_column }} is null or {{ customer_column }} not in (
        select trim(customer_id)
        from {{ source('raw', 'erasure_requests') }}
        where customer_id is not null
    ))
{%- endmacro %}
