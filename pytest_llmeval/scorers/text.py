"""Built-in offline scorers on the output's text: exact_match, contains, regex, json_valid.

All are binary (0.0 or 1.0). They read the row's ``expected`` where they need a
reference and raise ScorerError when the row has none.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ScorerError
from ..models import Case
from .registry import Scorer

__all__ = ["BUILTIN_SCORERS", "contains", "exact_match", "json_valid", "regex"]


def _text(output: Any) -> str:
    return output if isinstance(output, str) else str(output)


def _expected(case: Case, scorer: str) -> Any:
    if case.expected is None:
        raise ScorerError(f"scorer {scorer!r} needs the row's 'expected' field; case {case.id!r} has none")
    return case.expected


def exact_match(output: Any, case: Case, *, case_sensitive: bool = True) -> float:
    """1.0 when the output equals ``expected`` after stripping surrounding whitespace."""
    got, want = _text(output).strip(), _text(_expected(case, "exact_match")).strip()
    if not case_sensitive:
        got, want = got.casefold(), want.casefold()
    return float(got == want)


def contains(output: Any, case: Case) -> float:
    """1.0 when ``expected`` (a string, or every string of a list) occurs in the output,
    ignoring case."""
    expected = _expected(case, "contains")
    needles = expected if isinstance(expected, list) else [expected]
    haystack = _text(output).casefold()
    return float(all(_text(needle).casefold() in haystack for needle in needles))


def regex(output: Any, case: Case, *, pattern: str | re.Pattern[str] | None = None) -> float:
    """1.0 when ``pattern`` (default: the row's ``expected``) matches anywhere in the output."""
    if pattern is None:
        pattern = _expected(case, "regex")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ScorerError(f"scorer 'regex': invalid pattern {pattern!r}: {exc}") from None
    return float(compiled.search(_text(output)) is not None)


def _regex_options(pattern: str | None = None) -> dict[str, Any]:
    if pattern is None:
        return {}
    try:
        return {"pattern": re.compile(pattern)}
    except re.error as exc:
        raise ScorerError(f"scorer 'regex': invalid pattern {pattern!r}: {exc}") from None


regex.prepare_options = _regex_options  # type: ignore[attr-defined]  # compile once, fail at collection


def json_valid(output: Any, case: Case) -> float:
    """1.0 when the output is a JSON document (a string that parses, or a JSON-able value)."""
    try:
        if isinstance(output, (str, bytes)):
            json.loads(output)
        else:
            json.dumps(output)
    except (ValueError, TypeError):
        return 0.0
    return 1.0


BUILTIN_SCORERS = (
    Scorer("exact_match", exact_match, binary=True),
    Scorer("contains", contains, binary=True),
    Scorer("regex", regex, binary=True),
    Scorer("json_valid", json_valid, binary=True),
)
