"""dbt-duckdb plugin: the PII salt as a DuckDB session variable, read at run time.

Why a plugin: anything a dbt macro reads with ``env_var()`` is rendered into the compiled
SQL under ``target/`` and stored in ``target/partial_parse.msgpack``, and every statement
dbt runs is written to ``logs/dbt.log``. This plugin reads ``AFFINITY_PII_SALT`` from the
process environment and sets it on every DuckDB cursor dbt opens with a prepared
``SET VARIABLE`` (bound as a parameter, outside dbt's query log). The models read it
with ``getvariable('affinity_pii_salt')`` (``macros/pii.sql``), so the salt never reaches
a file: not the compiled SQL, not the logs, not the warehouse (DuckDB session variables
are not persisted).

Profile (``profiles.yml``)::

    module_paths: ["<dbt_project>/adapter_plugins"]
    plugins:
      - module: affinity_pii_salt
        config: {require_salt: true}   # prod; the dev target omits it

``require_salt`` false (dev): an unset or empty ``AFFINITY_PII_SALT`` falls back to the
documented, non-secret :data:`DEV_SALT`. True (prod): opening a connection fails with a
:class:`MissingSaltError` that says what to set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

SALT_ENV_VAR = "AFFINITY_PII_SALT"
# The DuckDB variable the SQL reads (getvariable); the name is not secret, the value is.
SALT_VARIABLE = "affinity_pii_salt"
# Public on purpose: dev hashes are reproducible and NOT safe to share.
DEV_SALT = "affinity-dev-salt-not-secret"


class MissingSaltError(RuntimeError):
    """The prod target runs without ``AFFINITY_PII_SALT``.

    A ``RuntimeError`` so dbt-duckdb reports it as a failed connection with this message.
    """


def resolve_salt(environ: Mapping[str, str], require_salt: bool) -> str:
    """Return the salt that pseudonymizes emails.

    Parameters
    ----------
    environ : mapping
        The process environment (``os.environ``).
    require_salt : bool
        True for the prod target: no fallback.

    Raises
    ------
    MissingSaltError
        If ``require_salt`` and the variable is unset or empty.
    """
    salt = environ.get(SALT_ENV_VAR, "")
    if salt:
        return salt
    if require_salt:
        raise MissingSaltError(
            f"{SALT_ENV_VAR} is not set: the prod target needs the secret salt that "
            f"pseudonymizes emails (export {SALT_ENV_VAR}=...). The dev target falls back to "
            "a public, non-secret salt."
        )
    return DEV_SALT


class Plugin(BasePlugin):
    """Sets ``affinity_pii_salt`` on the connection and on every cursor dbt opens."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.require_salt = bool(plugin_config.get("require_salt", False))
        # Fail when dbt first connects, before any model runs.
        resolve_salt(os.environ, self.require_salt)

    def configure_connection(self, conn) -> None:
        self._set_salt(conn)

    def configure_cursor(self, cursor) -> None:
        # Cursors are separate DuckDB connections: variables do not carry over.
        self._set_salt(cursor)

    def _set_salt(self, connection) -> None:
        # Read on every cursor: dbt-duckdb keeps one environment per process across
        # invocations, and the variable may change between them.
        salt = resolve_salt(os.environ, self.require_salt)
        connection.execute(f"SET VARIABLE {SALT_VARIABLE} = ?", [salt])
