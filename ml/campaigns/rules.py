"""A tiny, SQL-free rule language over ``customer_features`` columns.

Campaigns of ``target_type = 'rule'`` select customers with an expression such as
``recency_days<=30 and frequency>=2``. The text is parsed here into a polars expression;
it never reaches SQL, and only whitelisted columns, operators and literals parse, so a
rule cannot read other data or run anything.

Grammar (keywords case-insensitive; ``and`` binds tighter than ``or``)::

    rule       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" rule ")" | comparison
    comparison := column op literal
                | column ["not"] "in" "(" literal ("," literal)* ")"
                | column "is" ["not"] "null"
    op         := "<" | "<=" | ">" | ">=" | "=" | "==" | "!=" | "<>"
    literal    := number | 'single-quoted text' | "double-quoted text" | true | false

A comparison with a missing value (e.g. ``recency_days`` of a customer who never bought)
is false, as in SQL.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

NUMBER, TEXT, BOOLEAN = "number", "text", "boolean"
# The customer_features columns a rule may use, with the kind of literal they compare to.
RULE_COLUMNS: dict[str, str] = {
    "recency_days": NUMBER,
    "frequency": NUMBER,
    "monetary": NUMBER,
    "avg_order_value": NUMBER,
    "tenure_days": NUMBER,
    "distinct_categories": NUMBER,
    "avg_days_between_orders": NUMBER,
    "views_30d": NUMBER,
    "carts_30d": NUMBER,
    "review_count": NUMBER,
    "mean_rating": NUMBER,
    "negative_reviews_30d": NUMBER,
    "top_category": TEXT,
    "country": TEXT,
    "marketing_opt_in": BOOLEAN,
}
MAX_RULE_LENGTH = 1_000

_OPERATORS: dict[str, Callable[[pl.Expr, object], pl.Expr]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
}
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false"}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?)
      | (?P<text>'[^']*'|"[^"]*")
      | (?P<op><=|>=|==|!=|<>|<|>|=)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


class RuleError(ValueError):
    """A rule that does not parse or uses something outside the whitelist."""


@dataclass(frozen=True)
class _Token:
    kind: str  # number, text, op, punct, word, end
    value: str
    position: int


def tokenize(rule: str) -> list[_Token]:
    """Split a rule into tokens; anything the grammar does not know is an error."""
    if len(rule) > MAX_RULE_LENGTH:
        raise RuleError(f"rule is longer than {MAX_RULE_LENGTH} characters")
    tokens, position = [], 0
    while position < len(rule):
        if not rule[position:].strip():
            break
        match = _TOKEN.match(rule, position)
        if match is None or match.end() == position:
            at = len(rule[position:]) - len(rule[position:].lstrip()) + position
            raise RuleError(f"unexpected character {rule[at]!r} at position {at + 1}")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    tokens.append(_Token("end", "", len(rule)))
    return tokens


class _Parser:
    """Recursive descent over the tokens, building the polars expression directly."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.tokens = tokenize(rule)
        self.index = 0
        self.columns: set[str] = set()

    # -- token helpers
    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def _is_word(self, word: str) -> bool:
        return self.current.kind == "word" and self.current.value.lower() == word

    def _advance(self) -> _Token:
        token = self.current
        self.index += 1
        return token

    def _expect(self, kind: str, value: str | None = None) -> _Token:
        token = self.current
        if token.kind != kind or (value is not None and token.value.lower() != value):
            wanted = value or kind
            raise RuleError(
                f"expected {wanted!r} at position {token.position + 1}, {self._found()}"
            )
        return self._advance()

    def _found(self) -> str:
        token = self.current
        return "found the end of the rule" if token.kind == "end" else f"found {token.value!r}"

    # -- grammar
    def parse(self) -> pl.Expr:
        if self.current.kind == "end":
            raise RuleError("the rule is empty")
        expr = self._or()
        if self.current.kind != "end":
            raise RuleError(
                f"unexpected {self.current.value!r} at position {self.current.position + 1}: "
                "join conditions with 'and' / 'or'"
            )
        return expr

    def _or(self) -> pl.Expr:
        expr = self._and()
        while self._is_word("or"):
            self._advance()
            expr = expr | self._and()
        return expr

    def _and(self) -> pl.Expr:
        expr = self._not()
        while self._is_word("and"):
            self._advance()
            expr = expr & self._not()
        return expr

    def _not(self) -> pl.Expr:
        if self._is_word("not"):
            self._advance()
            return ~self._not()
        if self.current.kind == "punct" and self.current.value == "(":
            self._advance()
            expr = self._or()
            self._expect("punct", ")")
            return expr
        return self._comparison()

    def _comparison(self) -> pl.Expr:
        token = self.current
        if token.kind != "word" or token.value.lower() in _KEYWORDS:
            raise RuleError(
                f"expected a column name at position {token.position + 1}, {self._found()}"
            )
        name = token.value.lower()
        if name not in RULE_COLUMNS:
            raise RuleError(
                f"unknown column {token.value!r} at position {token.position + 1}; "
                f"a rule may use: {', '.join(sorted(RULE_COLUMNS))}"
            )
        self._advance()
        self.columns.add(name)
        column = pl.col(name)
        if self._is_word("is"):
            self._advance()
            negate = self._is_word("not")
            if negate:
                self._advance()
            self._expect("word", "null")
            return column.is_not_null() if negate else column.is_null()
        negate = self._is_word("not")
        if negate:
            self._advance()
            if not self._is_word("in"):
                raise RuleError(
                    f"expected 'in' after 'not' at position {self.current.position + 1}"
                )
        if self._is_word("in"):
            self._advance()
            self._expect("punct", "(")
            values = [self._literal(name)]
            while self.current.kind == "punct" and self.current.value == ",":
                self._advance()
                values.append(self._literal(name))
            self._expect("punct", ")")
            expr = column.is_in(values)
            return ~expr if negate else expr
        if self.current.kind != "op":
            raise RuleError(
                f"expected a comparison (<, <=, >, >=, =, !=, in, is null) after {name!r} "
                f"at position {self.current.position + 1}, {self._found()}"
            )
        op = _OPERATORS[self._advance().value]
        return op(column, self._literal(name))

    def _literal(self, column: str) -> object:
        token = self._advance()
        kind = RULE_COLUMNS[column]
        if token.kind == "number" and kind == NUMBER:
            return float(token.value) if "." in token.value else int(token.value)
        if token.kind == "text" and kind == TEXT:
            return token.value[1:-1]
        if token.kind == "word" and token.value.lower() in ("true", "false") and kind == BOOLEAN:
            return token.value.lower() == "true"
        wanted = {NUMBER: "a number", TEXT: "a quoted text", BOOLEAN: "true or false"}[kind]
        shown = "the end of the rule" if token.kind == "end" else repr(token.value)
        raise RuleError(
            f"{column} compares to {wanted}, found {shown} at position {token.position + 1}"
        )


@dataclass(frozen=True)
class Rule:
    """A parsed rule: its text, the polars filter and the columns it reads."""

    text: str
    expr: pl.Expr
    columns: frozenset[str]

    def select(self, features: pl.DataFrame) -> pl.Series:
        """Boolean mask of the rows of ``features`` the rule selects (missing -> False)."""
        return features.select(self.expr.fill_null(False).alias("selected"))["selected"]


def parse_rule(text: str) -> Rule:
    """Parse a rule into a :class:`Rule`.

    >>> parse_rule("recency_days<=30 and frequency>=2").columns == {"recency_days", "frequency"}
    True

    Raises
    ------
    RuleError
        The text does not follow the grammar, names a column outside
        :data:`RULE_COLUMNS`, or compares a column to the wrong kind of literal.
    """
    parser = _Parser(str(text))
    expr = parser.parse()
    return Rule(str(text), expr, frozenset(parser.columns))
