"""The rules' SQL in both dialects: one definition, each engine's spelling (no engine run;
tests/test_ingest_spark.py runs both)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from ml.ingest.contract import ENTITIES
from ml.ingest.dialect import DUCKDB, SPARK
from ml.ingest.rules import key_rules_sql, typing_sql

NOW = datetime(2026, 6, 1)
# DuckDB-only spellings that Spark SQL would refuse or read differently.
DUCKDB_ONLY = ("::", "TIMESTAMPTZ", "timezone(", "isfinite(", "date_diff(", '"', "VARCHAR")


def _sql(entity, dialect, text_type):
    header = [c.name for c in entity.columns]
    cast_sql, typed_sql = typing_sql(
        entity, "stage", header, dict.fromkeys(header, text_type), NOW, "Europe/Paris", dialect
    )
    keys = key_rules_sql(entity, "stage_checked", "a'b\\c.csv", dialect, lambda n: f"k_{n}")
    return cast_sql + typed_sql + keys


@pytest.mark.parametrize("name", list(ENTITIES))
def test_spark_sql_has_no_duckdb_spelling(name):
    spark_sql = _sql(ENTITIES[name], SPARK, "string")
    code = re.sub(r"'(?:[^'\\]|\\.)*'", "''", spark_sql)  # outside string literals
    for token in DUCKDB_ONLY:
        assert token not in code, token
    duck_sql = _sql(ENTITIES[name], DUCKDB, "VARCHAR")
    assert "`" not in duck_sql and "TIMESTAMP_NTZ" not in duck_sql
    # The same rules are named in both (no rule exists in one dialect only).
    rules = re.compile(r"then '([a-z_]+)'")
    assert set(rules.findall(spark_sql)) == set(rules.findall(duck_sql))


def test_literals_and_identifiers_are_escaped_per_engine():
    assert DUCKDB.literal("it's \\d") == "'it''s \\d'"
    assert SPARK.literal("it's \\d") == "'it\\'s \\\\d'"
    assert DUCKDB.ident('a"b') == '"a""b"' and SPARK.ident("a`b") == "`a``b`"


def test_key_rules_read_the_loaded_relations_they_are_given():
    sql = key_rules_sql(ENTITIES["order_lines"], "typed", "f.csv", SPARK, lambda n: f"k_{n}")
    assert "from k_order_lines where _source_file <> 'f.csv'" in sql
    assert "from k_orders" in sql and "from k_products" in sql and "raw." not in sql
    assert "raw.order_lines" in key_rules_sql(ENTITIES["order_lines"], "typed", "f.csv")
