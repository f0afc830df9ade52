{#-
    The as-of partition of a table the Python steps write into schema `ml`.

    Those tables hold a few logical dates (column `logical_date`, one partition each; the
    default as_of, 2100-01-01, means "the latest"). The rule, written once:

    - partitions='latest': the rows of the latest logical_date on or before as_of (a
      backfill reads what was computed for its date, never a later run's output);
    - partitions='all': every partition on or before as_of (tables whose history matters,
      e.g. campaign audiences, frozen at their first launch).

    missing_columns: for tables a later step creates (campaign_audiences,
    campaign_results), the column names of the table; when it does not exist yet the
    macro selects no rows with those columns (NULLs; the caller casts them). Without it a
    missing table is an error, as for any source.

    Returns a SELECT (use it as a CTE body). as_of comes from the validated as_of_date().
-#}
{% macro as_of_partition(relation, partitions='latest', missing_columns=none) -%}
    {%- if partitions not in ('latest', 'all') -%}
        {{ exceptions.raise_compiler_error(
            "as_of_partition: partitions must be 'latest' or 'all', got '" ~ partitions ~ "'"
        ) }}
    {%- endif -%}
    {%- set missing = missing_columns is not none and execute and adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    ) is none -%}
    {%- if missing -%}
        -- {{ relation }} does not exist yet: no rows.
        select
            {%- for column in missing_columns %}
            null as {{ column }}{{ "," if not loop.last }}
            {%- endfor %}
        where false
    {%- elif partitions == 'latest' -%}
        select * from {{ relation }}
        where logical_date = (
            select max(logical_date) from {{ relation }}
            where logical_date <= {{ as_of_date() }}
        )
    {%- else -%}
        select * from {{ relation }}
        where logical_date <= {{ as_of_date() }}
    {%- endif -%}
{%- endmacro %}
