"""The right to be forgotten in the warehouse: who asked, and where they still are.

Requests arrive as the ``erasure_requests`` input entity (``raw.erasure_requests``, the
audit record) and are applied once, upstream, by the ingest that loads them
(:func:`apply_erasure`, in the same transaction): the Python steps' stored outputs lose the
customers at once, dbt drops them from staging on, and everything built afterwards
inherits that. The publish verifies that a snapshot holds none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import duckdb

from ml.warehouse.tables import ML_SCHEMA, table_exists, tables_with_column

log = logging.getLogger(__name__)


def erased_customer_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Customer ids with an erasure request in ``raw.erasure_requests`` (sorted)."""
    if not table_exists(con, "raw", "erasure_requests"):
        return []
    rows = con.execute(
        "SELECT DISTINCT trim(customer_id) FROM raw.erasure_requests "
        "WHERE customer_id IS NOT NULL ORDER BY 1"
    ).fetchall()
    return [customer_id for (customer_id,) in rows]


def erased_rows(
    con: duckdb.DuckDBPyConnection, customer_ids: Sequence[str], schema: str = "main"
) -> dict[str, int]:
    """``{table: rows}`` of ``schema``'s tables that still hold one of ``customer_ids``."""
    found: dict[str, int] = {}
    if not customer_ids:
        return found
    for table in tables_with_column(con, schema, "customer_id"):
        rows = con.execute(
            f"SELECT count(*) FROM {schema}.{table} WHERE customer_id IN (SELECT unnest(?))",
            [list(customer_ids)],
        ).fetchone()[0]
        if rows:
            found[table] = rows
    return found


def erase_customers(
    con: duckdb.DuckDBPyConnection, customer_ids: Sequence[str], schema: str = ML_SCHEMA
) -> dict[str, int]:
    """Delete the rows of ``customer_ids`` from every ``schema`` table with a ``customer_id``.

    Returns ``{table: rows deleted}``.
    """
    deleted = {}
    for table in erased_rows(con, customer_ids, schema):
        deleted[table] = con.execute(
            f"DELETE FROM {schema}.{table} WHERE customer_id IN (SELECT unnest(?))",
            [list(customer_ids)],
        ).fetchone()[0]
    if deleted:
        log.info("erasure: deleted %s from the %s schema", deleted, schema)
    return deleted


def apply_erasure(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Remove every requested customer from the stored outputs; return ``{table: rows}``.

    Idempotent: customers already removed cost nothing.
    """
    return erase_customers(con, erased_customer_ids(con))
