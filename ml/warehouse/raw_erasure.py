"""Erasure in the ``raw`` schema: the input rows of erased customers, and the count of them.

An erasure request removes a customer's personal data from the raw input too, not only
from what is built on it:

* every ``raw`` table with a ``customer_id`` (customers, orders, events, reviews, and any
  table an importer adds) loses the customer's rows, and ``raw.order_lines`` the lines of
  their orders;
* ``raw.quarantine`` loses the rows that hold them: a quarantined row is erased when one of
  its received values (its ``raw_values``, a JSON object or, for a row the CSV parser
  rejected, the raw line) equals an erased customer's id or the id of one of their orders;
* ``raw.erasure_requests`` keeps the request: the audit record, holding only the
  customer's id and the dates.

Nothing is lost from the books: ``raw.erasure_audit`` records, per landing file and place
(``loaded`` or ``quarantined``), how many rows were erased, without any id. The ingest's
re-count (:func:`ml.ingest.loader.check_manifest`) adds them back, so ``received = loaded +
quarantined`` stays provable after an erasure: rows in ``raw.<entity>`` plus erased loaded
rows equal the manifest's ``loaded_rows``, and likewise for the quarantine.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

import duckdb

from ml.dates import utcnow
from ml.warehouse.tables import table_columns, table_exists, tables_with_column

log = logging.getLogger(__name__)

AUDIT_TABLE = "raw.erasure_audit"
# The request is the audit record: kept, never erased.
KEPT_TABLES = frozenset({"erasure_requests"})
ERASURE_AUDIT_DDL = f"""
CREATE TABLE IF NOT EXISTS {AUDIT_TABLE} (
    source_file VARCHAR,
    entity VARCHAR,
    checksum VARCHAR,
    place VARCHAR,
    erased_rows BIGINT,
    erased_at TIMESTAMP,
    is_current BOOLEAN
)
"""


def ensure_erasure_audit(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``raw.erasure_audit`` if missing (the ``raw`` schema must exist)."""
    con.execute(ERASURE_AUDIT_DDL)


def retire_erasure_audit(con: duckdb.DuckDBPyConnection, source_file: str) -> None:
    """A new version of ``source_file`` replaced its rows: its erasure counts no longer apply."""
    con.execute(f"UPDATE {AUDIT_TABLE} SET is_current = false WHERE source_file = ?", [source_file])


def erased_counts(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], int]:
    """``{(source_file, place): rows}`` erased from the current version of each file."""
    if not table_exists(con, "raw", "erasure_audit"):
        return {}
    rows = con.execute(
        f"SELECT source_file, place, sum(erased_rows) FROM {AUDIT_TABLE} "
        "WHERE is_current GROUP BY 1, 2"
    ).fetchall()
    return {(source_file, place): int(n) for source_file, place, n in rows}


def _record(
    con: duckdb.DuckDBPyConnection,
    counts: Iterable[tuple[str, str, int]],
    place: str,
    erased_at: datetime,
) -> None:
    """Add ``(source_file, entity, rows)`` counts to the audit under the file's version."""
    for source_file, entity, rows in counts:
        if source_file is None or not rows:
            continue
        checksum = con.execute(
            "SELECT any_value(checksum) FROM raw.load_manifest WHERE source_file = ? "
            "AND is_current",
            [source_file],
        ).fetchall()[0][0]
        con.execute(
            f"INSERT INTO {AUDIT_TABLE} VALUES (?, ?, ?, ?, ?, ?, true)",
            [source_file, entity, checksum, place, rows, erased_at],
        )


def received_values(raw_values: str | None) -> list[str]:
    """The values of a quarantined row as received, trimmed.

    ``raw_values`` is a JSON object of the row's columns, or, for a row the CSV parser
    rejected, the raw line itself.
    """
    if not raw_values:
        return []
    try:
        parsed = json.loads(raw_values)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return [str(v).strip() for v in parsed.values() if v is not None]
    fields = [f for row in csv.reader(io.StringIO(raw_values)) for f in row]
    return [f.strip() for f in fields]


def _received_column(raw_values: str | None, column: str) -> str | None:
    """The value of ``column`` (any case) in a JSON ``raw_values``, trimmed."""
    try:
        parsed = json.loads(raw_values or "")
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    for key, value in parsed.items():
        if key.strip().lower() == column and value is not None:
            return str(value).strip()
    return None


def _quarantined_rows(
    con: duckdb.DuckDBPyConnection, needles: set[str], entities: Sequence[str] | None = None
) -> list[tuple[int, str, str, str]]:
    """``(rowid, entity, source_file, raw_values)`` of quarantined rows holding a needle."""
    if not needles:
        return []
    only = "AND q.entity IN (SELECT unnest(?))" if entities else ""
    params: list = [sorted(needles)] + ([list(entities)] if entities else [])
    candidates = con.execute(
        "SELECT DISTINCT q.rowid, q.entity, q.source_file, q.raw_values FROM raw.quarantine q "
        "JOIN (SELECT unnest(?) AS needle) n ON contains(q.raw_values, n.needle) "
        f"WHERE q.entity NOT IN ('erasure_requests') {only}",
        params,
    ).fetchall()
    return [c for c in candidates if needles & set(received_values(c[3]))]


def _erase_quarantine(
    con: duckdb.DuckDBPyConnection, customer_ids: set[str], order_ids: set[str], erased_at
) -> int:
    """Delete the quarantined rows of the customers (and of their orders); return how many."""
    hits = _quarantined_rows(con, customer_ids)
    # Orders of theirs that were quarantined themselves: their lines go too.
    order_ids = order_ids | {
        order_id
        for _, entity, _, raw in hits
        if entity == "orders" and (order_id := _received_column(raw, "order_id"))
    }
    seen = {rowid for rowid, *_ in hits}
    hits += [h for h in _quarantined_rows(con, order_ids, ["order_lines"]) if h[0] not in seen]
    if not hits:
        return 0
    con.execute(
        "DELETE FROM raw.quarantine WHERE rowid IN (SELECT unnest(?))", [[h[0] for h in hits]]
    )
    per_file = Counter((source_file, entity) for _, entity, source_file, _ in hits)
    _record(con, [(f, e, n) for (f, e), n in per_file.items()], "quarantined", erased_at)
    return len(hits)


def erase_from_raw(
    con: duckdb.DuckDBPyConnection,
    customer_ids: Sequence[str],
    erased_at: datetime | None = None,
) -> dict[str, int]:
    """Delete every raw row of ``customer_ids`` (see the module docstring); audit the counts.

    Runs inside the caller's transaction. Idempotent: customers already erased cost a scan.

    Returns
    -------
    dict of str to int
        ``{"raw.<table>": rows deleted}`` (``raw.quarantine`` included).
    """
    ids = sorted({str(c).strip() for c in customer_ids if c is not None})
    if not ids or not table_exists(con, "raw", "load_manifest"):
        return {}
    ensure_erasure_audit(con)
    erased_at = erased_at or utcnow()
    con.execute("CREATE OR REPLACE TEMP TABLE _erased_customers AS SELECT unnest(?) AS id", [ids])
    # Their orders, before the orders go: the lines of those orders go with them.
    order_ids: set[str] = set()
    if table_exists(con, "raw", "orders"):
        order_ids = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT order_id FROM raw.orders WHERE order_id IS NOT NULL "
                "AND trim(customer_id) IN (SELECT id FROM _erased_customers)"
            ).fetchall()
        }
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _erased_orders AS SELECT unnest(?::VARCHAR[]) AS id",
        [sorted(order_ids)],
    )
    targets = [
        (table, "trim(customer_id) IN (SELECT id FROM _erased_customers)")
        for table in tables_with_column(con, "raw", "customer_id")
        if table not in KEPT_TABLES
    ]
    if table_exists(con, "raw", "order_lines"):
        targets.append(("order_lines", "order_id IN (SELECT id FROM _erased_orders)"))
    removed: dict[str, int] = {}
    for table, where in targets:
        if "_source_file" in table_columns(con, "raw", table):
            per_file = con.execute(
                f"SELECT _source_file, count(*) FROM raw.{table} WHERE {where} GROUP BY 1"
            ).fetchall()
            _record(con, [(f, table, n) for f, n in per_file], "loaded", erased_at)
        deleted = con.execute(f"DELETE FROM raw.{table} WHERE {where}").fetchall()[0][0]
        if deleted:
            removed[f"raw.{table}"] = deleted
    if table_exists(con, "raw", "quarantine"):
        quarantined = _erase_quarantine(con, set(ids), order_ids, erased_at)
        if quarantined:
            removed["raw.quarantine"] = quarantined
    con.execute("DROP TABLE IF EXISTS _erased_customers")
    con.execute("DROP TABLE IF EXISTS _erased_orders")
    if removed:
        log.info("erasure: deleted %s from raw (counts in %s)", removed, AUDIT_TABLE)
    return removed
