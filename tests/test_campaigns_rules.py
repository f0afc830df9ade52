"""The SQL-free rule language of rule campaigns: what parses, what it selects, what it refuses."""

from __future__ import annotations

import re

import polars as pl
import pytest

from ml.campaigns.rules import RULE_COLUMNS, RuleError, parse_rule

FEATURES = pl.DataFrame(
    {
        "customer_id": ["C1", "C2", "C3", "C4", "C5"],
        "recency_days": [10, 45, None, 5, 30],
        "frequency": [3, 2, 0, 1, 2],
        "monetary": [250.0, 80.5, 0.0, 20.0, 150.0],
        "country": ["France", "Germany", None, "France", "Spain"],
        "top_category": ["Garden", "Kitchen", None, "Garden", "Toys"],
        "marketing_opt_in": [True, False, True, True, True],
    }
)


def selected(rule: str) -> list[str]:
    mask = parse_rule(rule).select(FEATURES)
    return FEATURES.filter(mask)["customer_id"].to_list()


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("recency_days<=30 and frequency>=2", ["C1", "C5"]),
        ("recency_days <= 30 AND frequency >= 2", ["C1", "C5"]),
        ("frequency = 2 or monetary > 200", ["C1", "C2", "C5"]),
        # and binds tighter than or
        ("frequency = 0 or frequency = 1 and country = 'France'", ["C3", "C4"]),
        ("(frequency = 0 or frequency = 1) and country = 'France'", ["C4"]),
        ("not frequency >= 2", ["C3", "C4"]),
        ("country in ('France', \"Spain\")", ["C1", "C4", "C5"]),
        ("country not in ('France')", ["C2", "C5"]),
        ("recency_days is null", ["C3"]),
        ("recency_days is not null and monetary < 100.5", ["C2", "C4"]),
        ("marketing_opt_in = false", ["C2"]),
        ("frequency != 2 and frequency <> 3", ["C3", "C4"]),
    ],
)
def test_rules_select_like_their_text_says(rule: str, expected: list[str]) -> None:
    assert selected(rule) == expected


def test_missing_values_never_match_a_comparison() -> None:
    # C3 has no recency: neither side of the comparison selects it (as in SQL).
    assert "C3" not in selected("recency_days > 0")
    assert "C3" not in selected("not recency_days > 0")


def test_parse_reports_the_columns_it_reads() -> None:
    assert parse_rule("recency_days<=30 and frequency>=2").columns == {
        "recency_days",
        "frequency",
    }


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("", "empty"),
        ("frequency >= 2; DROP TABLE marts.customer_features", "unexpected character ';'"),
        ("email = 'a@b.c'", "unknown column 'email'"),
        ("customer_id = 'C1'", "unknown column 'customer_id'"),
        ("frequency >= '2'", "frequency compares to a number"),
        ("country = France", "country compares to a quoted text"),
        ("frequency >= 2 monetary > 1", "join conditions with 'and' / 'or'"),
        ("(frequency >= 2", "expected ')'"),
        ("frequency", "expected a comparison"),
        ("frequency >= 2 and", "expected a column name"),
        ("lower(country) = 'x'", "unknown column 'lower'"),
        ("frequency >= 2 -- comment", "unexpected"),
        ("x" * 2000, "longer than"),
    ],
)
def test_anything_outside_the_grammar_is_refused_with_a_reason(rule: str, message: str) -> None:
    with pytest.raises(RuleError, match=re.escape(message)):
        parse_rule(rule)


def test_unknown_column_error_lists_what_is_allowed() -> None:
    with pytest.raises(RuleError) as error:
        parse_rule("spend > 10")
    assert all(column in str(error.value) for column in RULE_COLUMNS)
