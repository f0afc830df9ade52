{#-
    PII ends in staging: emails are kept only as sha256(salt || lower(trim(email))).
    The salt comes from AFFINITY_PII_SALT. The dev target falls back to the documented,
    non-secret salt below; the prod target refuses to run without the variable.
-#}

{% macro dev_pii_salt() -%}
    {{ return('affinity-dev-salt-not-secret') }}
{%- endmacro %}

{% macro pii_salt() -%}
    {%- set salt = env_var('AFFINITY_PII_SALT', '') -%}
    {%- if salt | length == 0 -%}
        {%- if target.name == 'prod' -%}
            {{ exceptions.raise_compiler_error(
                "AFFINITY_PII_SALT is not set: the prod target needs the secret salt that "
                ~ "pseudonymizes emails (export AFFINITY_PII_SALT=...). The dev target falls back to "
                ~ "a public, non-secret salt."
            ) }}
        {%- endif -%}
        {%- set salt = dev_pii_salt() -%}
    {%- endif -%}
    {{ return(salt) }}
{%- endmacro %}

{# on-run-start hook: fail before any model runs when prod has no salt. Renders no SQL. #}
{% macro check_pii_salt() -%}
    {%- do pii_salt() -%}
{%- endmacro %}

{# Salted hash of an email; NULL when the email is missing or blank. #}
{% macro hash_email(column) -%}
    case
        when nullif(trim({{ column }}), '') is not null
            then sha256('{{ pii_salt() | replace("'", "''") }}' || lower(trim({{ column }})))
    end
{%- endmacro %}
