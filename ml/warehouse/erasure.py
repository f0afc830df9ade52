"""The right to be forgotten in the warehouse: who asked, and where they still are.

Requests arrive as the ``erasure_requests`` input entity (``raw.erasure_requests``, the
audit record) and are applied upstream by every ingest (:func:`apply_erasure`, in the batch
transaction, so rows of a re-sent file lose them again): the raw input
(:mod:`ml.warehouse.raw_erasure`, counted in ``raw.erasure_audit``) and every stored table
of every other schema (marts, incremental ones included, outputs, the Python steps' ``ml``)
lose the customers at once; dbt drops them from staging on, and everything built afterwards
inherits that. Outside the warehouse, the registered models (:mod:`ml.train.erasure`) and
the analyst snapshots (:mod:`ml.publish.erasure`) are scrubbed before the next scoring and
publish; the publish verifies that a snapshot holds none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import duckdb

from ml.warehouse.raw_erasure import erase_from_raw
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
        ).fetchall()[0][0]
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
        ).fetchall()[0][0]
    if deleted:
        log.info("erasure: deleted %s from the %s schema", deleted, schema)
    return deleted


def derived_schemas(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Schemas holding base tables besides ``raw`` (marts, outputs, ml, ...), sorted."""
    rows = con.execute(
        "SELECT DISTINCT table_schema FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' "
        "AND table_schema NOT IN ('raw', 'information_schema', 'pg_catalog') ORDER BY 1"
    ).fetchall()
    return [schema for (schema,) in rows]


def apply_erasure(
    con: duckdb.DuckDBPyConnection, erased_at: datetime | None = None
) -> dict[str, int]:
    """Remove every requested customer from raw and every stored table of the warehouse.

    Returns ``{"schema.table": rows deleted}``. Idempotent: customers already removed
    cost a scan.
    """
    ids = erased_customer_ids(con)
    removed = erase_from_raw(con, ids, erased_at)
    for schema in derived_schemas(con):
        for table, rows in erase_customers(con, ids, schema).items():
            removed[f"{schema}.{table}"] = rows
    return removed
