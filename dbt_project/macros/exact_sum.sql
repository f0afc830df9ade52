{#
    Sum of a double column that does not depend on the order rows arrive in.

    DuckDB aggregates in parallel, so a plain sum() of doubles can differ in its last bits
    between two runs on the same data (and flip a rank on a tie). Adding the terms in the
    order of their values makes the result a function of the data only.
    `filter` is an optional SQL condition (the aggregate's FILTER clause).
#}
{% macro exact_sum(expression, filter=none) -%}
    sum({{ expression }} order by {{ expression }}){% if filter %} filter (where {{ filter }}){% endif %}
{%- endmacro %}
