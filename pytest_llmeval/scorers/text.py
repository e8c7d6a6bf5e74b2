"""Built-in binary scorers on the output's text: exact_match, contains, not_contains,
regex, numeric.

Each returns exactly 0.0 or 1.0 and is registered with ``binary=True``, so the gate
compares it to the baseline with an exact McNemar test. Those that need a reference read
the row's ``expected`` and raise ScorerError naming the scorer and the case when the row
has none. Option values are checked when the marker is bound (at collection), through
each scorer's ``prepare_options``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

from ..errors import ScorerError
from ..models import Case
from ._common import (ASCII_PUNCTUATION, check_bool, check_choice, check_number, check_strings, collapse_whitespace,
                      expected_of, references, text_of)
from .base import Scorer

__all__ = [
    "BUILTIN_SCORERS",
    "contains",
    "exact_match",
    "normalize_text",
    "not_contains",
    "numeric",
    "parse_number",
    "regex",
]


# Not SQuAD's normalize_answer (similarity.squad_normalize, kept literal to the reference):
# this one drops Unicode punctuation too, keeps articles, casefolds, and each step is optional.
def _is_punctuation(ch: str) -> bool:
    return ch in ASCII_PUNCTUATION or unicodedata.category(ch).startswith("P")


def normalize_text(
    text: str, *, case_sensitive: bool = True, normalize_whitespace: bool = False, ignore_punctuation: bool = False
) -> str:
    """``text`` stripped, then optionally without punctuation, with whitespace runs as one
    space, and casefolded (in that order)."""
    if ignore_punctuation:
        text = "".join(ch for ch in text if not _is_punctuation(ch))
    if normalize_whitespace:
        text = collapse_whitespace(text)
    text = text.strip()
    if not case_sensitive:
        text = text.casefold()
    return text


def exact_match(
    output: Any,
    case: Case,
    *,
    case_sensitive: bool = True,
    normalize_whitespace: bool = False,
    ignore_punctuation: bool = False,
) -> float:
    """1.0 when the output equals ``expected`` (or one of a list of alternatives) after
    stripping surrounding whitespace and the optional normalisations."""
    options = dict(case_sensitive=case_sensitive, normalize_whitespace=normalize_whitespace, ignore_punctuation=ignore_punctuation)
    got = normalize_text(text_of(output), **options)
    return float(any(got == normalize_text(want, **options) for want in references(case, "exact_match")))


def _exact_match_options(case_sensitive: Any = True, normalize_whitespace: Any = False, ignore_punctuation: Any = False) -> dict[str, Any]:
    return {
        "case_sensitive": check_bool("exact_match", "case_sensitive", case_sensitive),
        "normalize_whitespace": check_bool("exact_match", "normalize_whitespace", normalize_whitespace),
        "ignore_punctuation": check_bool("exact_match", "ignore_punctuation", ignore_punctuation),
    }


exact_match.prepare_options = _exact_match_options  # type: ignore[attr-defined]


def contains(output: Any, case: Case, *, case_sensitive: bool = False, require: str = "all") -> float:
    """1.0 when ``expected`` (a string, or every string of a list; any one with
    ``require="any"``) occurs in the output, ignoring case unless ``case_sensitive``."""
    needles = references(case, "contains")
    haystack = text_of(output)
    if not case_sensitive:
        haystack = haystack.casefold()
        needles = [needle.casefold() for needle in needles]
    found = (needle in haystack for needle in needles)
    return float(all(found) if require == "all" else any(found))


def _contains_options(case_sensitive: Any = False, require: Any = "all") -> dict[str, Any]:
    return {
        "case_sensitive": check_bool("contains", "case_sensitive", case_sensitive),
        "require": check_choice("contains", "require", require, ("all", "any")),
    }


contains.prepare_options = _contains_options  # type: ignore[attr-defined]


def not_contains(output: Any, case: Case, *, forbidden: str | list[str] | None = None, case_sensitive: bool = False) -> float:
    """1.0 when none of the forbidden strings occurs in the output (a guardrail).

    The forbidden strings come from the option ``forbidden`` or, without it, from the
    row's ``expected`` (a string or a list of strings). Case is ignored unless
    ``case_sensitive``.
    """
    if forbidden is None:
        if case.expected is None:
            raise ScorerError(
                f"scorer 'not_contains' needs the option 'forbidden' or the row's 'expected' field; case {case.id!r} has none"
            )
        needles = references(case, "not_contains")
    else:
        needles = list(check_strings("not_contains", "forbidden", forbidden))
    haystack = text_of(output)
    if not case_sensitive:
        haystack = haystack.casefold()
        needles = [needle.casefold() for needle in needles]
    return float(not any(needle in haystack for needle in needles if needle))


def _not_contains_options(forbidden: Any = None, case_sensitive: Any = False) -> dict[str, Any]:
    options: dict[str, Any] = {"case_sensitive": check_bool("not_contains", "case_sensitive", case_sensitive)}
    if forbidden is not None:
        strings = [s for s in check_strings("not_contains", "forbidden", forbidden) if s]
        if not strings:
            raise ScorerError("scorer 'not_contains': option 'forbidden' holds no non-empty string")
        options["forbidden"] = strings
    return options


not_contains.prepare_options = _not_contains_options  # type: ignore[attr-defined]


def _compile(pattern: Any, ignore_case: bool) -> re.Pattern[str]:
    flags = re.IGNORECASE if ignore_case else 0
    if isinstance(pattern, re.Pattern):
        if not ignore_case or pattern.flags & re.IGNORECASE:
            return pattern
        pattern, flags = pattern.pattern, pattern.flags | re.IGNORECASE
    if not isinstance(pattern, str):
        raise ScorerError(f"scorer 'regex': the pattern must be a string, got {pattern!r}")
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ScorerError(f"scorer 'regex': invalid pattern {pattern!r}: {exc}") from None


def regex(
    output: Any,
    case: Case,
    *,
    pattern: str | re.Pattern[str] | None = None,
    ignore_case: bool = False,
    full_match: bool = False,
) -> float:
    """1.0 when ``pattern`` (default: the row's ``expected``) matches anywhere in the output
    (``re.search``), or the whole stripped output with ``full_match``."""
    if pattern is None:
        pattern = expected_of(case, "regex")
    compiled = _compile(pattern, ignore_case)
    text = text_of(output)
    match = compiled.fullmatch(text.strip()) if full_match else compiled.search(text)
    return float(match is not None)


def _regex_options(pattern: Any = None, ignore_case: Any = False, full_match: Any = False) -> dict[str, Any]:
    options: dict[str, Any] = {
        "ignore_case": check_bool("regex", "ignore_case", ignore_case),
        "full_match": check_bool("regex", "full_match", full_match),
    }
    if pattern is not None:
        options["pattern"] = _compile(pattern, ignore_case)  # compile once, fail at collection
    return options


regex.prepare_options = _regex_options  # type: ignore[attr-defined]


# A number: optional sign, digits with optional thousands separators (groups of three
# after a comma), optional decimals and exponent; or a bare decimal like ".5". Not glued
# to a preceding letter, digit or point ("COVID-19" reads 19, "v2" reads nothing).
_NUMBER = re.compile(
    r"""
    (?<![\w.])
    [-+\u2212]?
    (?:
        (?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?
      | \.\d+
    )
    (?:[eE][-+]?\d+)?
    """,
    re.VERBOSE,
)


def parse_number(text: str) -> float | None:
    """The first number in ``text`` (see ``_NUMBER``), or None when there is none."""
    match = _NUMBER.search(text)
    if match is None:
        return None
    return float(match.group().replace(",", "").replace("\u2212", "-"))


def _number_of(value: Any, case: Case) -> float:
    if isinstance(value, bool):
        raise ScorerError(f"scorer 'numeric': case {case.id!r} has a boolean as 'expected'; it needs a number")
    if isinstance(value, (int, float)):
        return float(value)
    number = parse_number(text_of(value))
    if number is None:
        raise ScorerError(f"scorer 'numeric': case {case.id!r} has no number in 'expected' ({value!r})")
    return number


def numeric(output: Any, case: Case, *, abs_tol: float = 0.0, rel_tol: float = 1e-9) -> float:
    """1.0 when the first number in the output equals ``expected`` within the tolerances
    (``math.isclose``); 0.0 when the output has no number. A list as ``expected`` holds
    alternatives (any one may match)."""
    expected = expected_of(case, "numeric")
    wants = [_number_of(item, case) for item in (expected if isinstance(expected, (list, tuple)) else [expected])]
    if not wants:
        raise ScorerError(f"scorer 'numeric': case {case.id!r} has an empty list as 'expected'")
    if isinstance(output, (int, float)) and not isinstance(output, bool):
        got: float | None = float(output)
    else:
        got = parse_number(text_of(output))
    if got is None or math.isnan(got):
        return 0.0
    return float(any(math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol) for want in wants))


def _numeric_options(abs_tol: Any = 0.0, rel_tol: Any = 1e-9) -> dict[str, Any]:
    return {"abs_tol": check_number("numeric", "abs_tol", abs_tol), "rel_tol": check_number("numeric", "rel_tol", rel_tol)}


numeric.prepare_options = _numeric_options  # type: ignore[attr-defined]


BUILTIN_SCORERS = (
    Scorer("exact_match", exact_match, binary=True),
    Scorer("contains", contains, binary=True),
    Scorer("not_contains", not_contains, binary=True),
    Scorer("regex", regex, binary=True),
    Scorer("numeric", numeric, binary=True),
)
