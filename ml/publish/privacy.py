"""What a snapshot may not hold: PII columns, e-mail-like values, erased customers."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from ml.ingest.contract import ENTITIES
from ml.warehouse.erasure import erased_rows
from ml.warehouse.tables import table_columns

PII_COLUMNS = frozenset(
    column.name for entity in ENTITIES.values() for column in entity.columns if column.pii
)
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"


def find_pii(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Return the problems of PII kind in every table of a connection's main schema.

    A column named like a PII column of the input contract (``email``, ``first_name``), or
    a text value that looks like an e-mail address, is a problem.
    """
    problems = []
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_catalog = current_database() ORDER BY table_name"
    ).fetchall()
    for (table,) in tables:
        for column, dtype in table_columns(con, "main", table).items():
            if column.lower() in PII_COLUMNS:
                problems.append(f"{table}.{column} is a PII column")
            if dtype == "VARCHAR":
                hits = con.execute(
                    f"SELECT count(*) FROM {table} WHERE contains(\"{column}\", '@') "
                    f"AND regexp_matches(\"{column}\", '{EMAIL_PATTERN}')"
                ).fetchall()[0][0]
                if hits:
                    problems.append(f"{table}.{column} holds {hits} e-mail-like value(s)")
    return problems


def privacy_problems(con: duckdb.DuckDBPyConnection, erased: Sequence[str]) -> list[str]:
    """Every privacy problem of a snapshot: PII, and rows of erased customers."""
    return find_pii(con) + [
        f"{table} holds {rows} row(s) of erased customers"
        for table, rows in erased_rows(con, erased).items()
    ]
