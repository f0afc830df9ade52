{#-
    PII ends in staging: emails are kept only as sha256(salt || lower(trim(email))).

    The salt is AFFINITY_PII_SALT, read at run time by the dbt-duckdb plugin
    adapter_plugins/affinity_pii_salt.py and set as the DuckDB session variable
    `affinity_pii_salt` on every connection dbt opens. It is never rendered into SQL, so it
    lands in no compiled file, log or view definition. The dev target falls back to the
    documented, non-secret salt 'affinity-dev-salt-not-secret'; the prod target refuses to
    connect without the variable.

    A model hashing emails must be materialized as a table: the variable exists only in
    dbt's sessions, so a view would hash with no salt when someone else queries it. Outside
    such a session the expression stops with an error rather than hash without a salt.
-#}

{# Salted hash of an email; NULL when the email is missing or blank. #}
{% macro hash_email(column) -%}
    {{ return(adapter.dispatch('hash_email')(column)) }}
{%- endmacro %}

{% macro default__hash_email(column) -%}
    case
        when nullif(trim({{ column }}), '') is not null
            then sha256(
                coalesce(
                    cast(getvariable('affinity_pii_salt') as varchar),
                    error('the PII salt is not set in this session: build through dbt with the affinity_pii_salt plugin (profiles.yml)')
                ) || lower(trim({{ column }}))
            )
    end
{%- endmacro %}
