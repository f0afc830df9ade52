"""JSON-lines exports read line by line: each line parsed alone, bad ones refused by rule."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ml.ingest.importers.csv_records import read_utf8


class Refused(ValueError):
    """A line that cannot become a row: carries the rule it broke."""

    def __init__(self, rule: str, detail: str):
        super().__init__(detail)
        self.rule = rule


def json_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` of the non-blank lines (1-based numbers)."""
    data = read_utf8(path).decode("utf-8")
    for number, text in enumerate(data.splitlines(), start=1):
        if text.strip():
            yield number, text


def parse_object(text: str, *, python_literals: bool = False) -> dict[str, Any]:
    """Parse one line into a dict, or raise :class:`Refused` (``malformed_json``).

    ``python_literals`` also accepts the 2014 metadata's Python-literal lines.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if not python_literals:
            raise Refused("malformed_json", f"not JSON ({exc.msg} at column {exc.colno})") from exc
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as literal_exc:
            raise Refused("malformed_json", "neither JSON nor a Python literal") from literal_exc
    if not isinstance(value, dict):
        raise Refused("malformed_json", f"a JSON {type(value).__name__}, not an object")
    return value


def required_text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    text = str(value).strip() if value is not None else ""
    if not text:
        raise Refused("missing_value", f"no {key}")
    return text
