{#-
    Spark's hash_email: the same salted sha256 (hex), the salt from the Spark session
    variable affinity_pii_salt that ml/spark/session.py declares from AFFINITY_PII_SALT
    (by a query parameter, so it is in no compiled SQL, log or table definition). A
    session without the variable fails to resolve it and stops.
-#}
{% macro spark__hash_email(column) -%}
    case
        when nullif(trim({{ column }}), '') is not null
            then sha2(
                concat(
                    coalesce(
                        cast(affinity_pii_salt as string),
                        raise_error('the PII salt is not set in this session: start Spark through ml/spark/session.py')
                    ),
                    lower(trim({{ column }}))
                ),
                256
            )
    end
{%- endmacro %}
