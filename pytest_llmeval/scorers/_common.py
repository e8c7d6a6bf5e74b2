"""Helpers shared by the built-in scorers: reading the output and the row's fields, and
checking option values at bind time.

Every error is a :class:`~pytest_llmeval.errors.ScorerError` that names the scorer and,
where one is involved, the case.
"""

from __future__ import annotations

import re
import string
from typing import Any, Iterable

from ..errors import ScorerError
from ..models import Case

__all__ = [
    "ASCII_PUNCTUATION",
    "check_bool",
    "check_choice",
    "check_number",
    "check_strings",
    "collapse_whitespace",
    "expected_of",
    "references",
    "text_of",
]

ASCII_PUNCTUATION = frozenset(string.punctuation)  # what SQuAD's normalize_answer drops
_WHITESPACE_RUN = re.compile(r"\s+")


def collapse_whitespace(text: str) -> str:
    """Every run of whitespace (Unicode, newlines included) as one space."""
    return _WHITESPACE_RUN.sub(" ", text)


def text_of(output: Any) -> str:
    """The output as text: strings as they are, bytes decoded as UTF-8, anything else ``str()``."""
    if isinstance(output, str):
        return output
    if isinstance(output, (bytes, bytearray)):
        return bytes(output).decode("utf-8", errors="replace")
    return str(output)


def expected_of(case: Case, scorer: str) -> Any:
    """The row's ``expected``; a ScorerError naming the scorer and the case when it has none."""
    if case.expected is None:
        raise ScorerError(f"scorer {scorer!r} needs the row's 'expected' field; case {case.id!r} has none")
    return case.expected


def references(case: Case, scorer: str) -> list[str]:
    """``expected`` as a non-empty list of reference texts (a string, or a list of alternatives)."""
    expected = expected_of(case, scorer)
    if isinstance(expected, (list, tuple)):
        if not expected:
            raise ScorerError(f"scorer {scorer!r}: case {case.id!r} has an empty list as 'expected'")
        return [text_of(item) for item in expected]
    return [text_of(expected)]


def check_bool(scorer: str, option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ScorerError(f"scorer {scorer!r}: option {option!r} must be True or False, got {value!r}")
    return value


def check_number(scorer: str, option: str, value: Any, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < minimum:
        raise ScorerError(f"scorer {scorer!r}: option {option!r} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def check_choice(scorer: str, option: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ScorerError(f"scorer {scorer!r}: option {option!r} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_strings(scorer: str, option: str, value: Any) -> tuple[str, ...]:
    """A string or a list of strings, as a tuple; a ScorerError for anything else."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ScorerError(f"scorer {scorer!r}: option {option!r} must be a string or a list of strings, got {value!r}")
