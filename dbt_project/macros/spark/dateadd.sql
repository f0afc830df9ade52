{#-
    dbt.dateadd on Spark. dbt-spark's own goes through unix seconds and to_timestamp(),
    which returns NULL once `timestamp` means TIMESTAMP_NTZ (the setting that makes Spark's
    timestamps DuckDB's naive ones, ml/spark/session.py). timestampadd keeps the type of
    its argument and takes any expression as the amount.
-#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    {%- set unit = datepart | lower -%}
    {%- if unit == 'quarter' -%}
        timestampadd(MONTH, cast({{ interval }} as int) * 3, {{ from_date_or_timestamp }})
    {%- else -%}
        timestampadd({{ unit | upper }}, cast({{ interval }} as int), {{ from_date_or_timestamp }})
    {%- endif -%}
{%- endmacro %}
