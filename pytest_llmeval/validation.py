"""Reading back the JSON files the plugin trusts: one validation layer for every kind.

Kinds (:data:`KINDS`): ``baseline`` files, response ``cache`` entries, ``prompt-log``
lines and ``report`` documents (read by ``llm-eval merge`` and ``llm-eval-check``). Each
is read the same way, and bad content is an error of the caller's class (``BaselineError``,
``CacheError``, ``PromptError``, ``ReportError``) naming the file (and line), the case
where there is one, and the field, never a traceback and never a verdict:

1. size: a file above its kind's limit (:data:`MAX_BYTES`) is refused before it is read;
2. syntax: strict JSON; ``NaN``/``Infinity`` and a key given twice in one object are refused;
3. depth: nesting deeper than :data:`MAX_DEPTH` is refused (no ``RecursionError``);
4. shape: the kind's JSON Schema shipped in ``schemas/`` (types and ranges: a score is a
   number in [0, 1], token counts are non-negative integers, ...).

jsonschema is imported on first use; validators are built once per kind.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

__all__ = [
    "KINDS", "MAX_BYTES", "MAX_DEPTH", "JSONProblem", "check", "field_path", "json_object", "loads_strict", "parse",
    "read_text",
]

KINDS = {
    "baseline": "baseline.schema.json",
    "cache": "cache-entry.schema.json",
    "prompt-log": "prompt-log-entry.schema.json",
    "report": "report.schema.json",
}
MAX_DEPTH = 100
MAX_BYTES = {"baseline": 256 * 2**20, "cache": 64 * 2**20, "prompt-log": 256 * 2**20, "report": 2 * 2**30}


class _Invalid(Exception):
    """A problem found while parsing, before a field path is known."""


class _NonFinite:
    """What ``NaN``/``Infinity`` parse to, so the walk can name the field holding one."""

    def __init__(self, text: str) -> None:
        self.text = text


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Invalid(f"key {key!r} is given twice in one object (JSON keeps only the last value)", key)
        out[key] = value
    return out


def read_text(path: str | os.PathLike[str], kind: str, error: type[Exception], *, missing_ok: bool = False) -> str | None:
    """The file's text; ``error`` if it is too big, unreadable or not UTF-8. ``None`` for a
    missing file when ``missing_ok``."""
    try:
        with open(path, encoding="utf-8") as fh:  # one system call for a missing file (a cache miss)
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_BYTES[kind]:
                raise error(f"{path}: {size} bytes, more than the {MAX_BYTES[kind]} a {kind} file may have")
            return fh.read()
    except FileNotFoundError:
        if missing_ok:
            return None
        raise error(f"{path}: {kind} not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a {kind} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {kind} file: {exc}") from None


class JSONProblem(ValueError):
    """Why :func:`loads_strict` refused a text: ``problem`` (a sentence), ``lineno`` of a
    syntax error, ``key`` of a duplicate key, ``path`` of a non-finite number or deep node."""

    def __init__(self, problem: str, *, lineno: int | None = None, key: str | None = None, path: tuple[Any, ...] = ()) -> None:
        self.problem = problem
        self.lineno = lineno
        self.key = key
        self.path = path
        super().__init__(problem)


def loads_strict(text: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity, a key given twice in one object and nesting
    deeper than :data:`MAX_DEPTH` (:class:`JSONProblem`)."""
    constants: list[str] = []

    def constant(name: str) -> _NonFinite:
        constants.append(name)
        return _NonFinite(name)

    try:
        doc = json.loads(text, object_pairs_hook=_pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise JSONProblem(f"not JSON: {exc.msg} (column {exc.colno})", lineno=exc.lineno) from None
    except _Invalid as exc:
        raise JSONProblem(f"invalid JSON: {exc.args[0]}", key=exc.args[1]) from None
    except RecursionError:
        raise JSONProblem(f"invalid JSON: nested more than {MAX_DEPTH} levels deep") from None
    _check_depth(doc)
    if constants:
        _find_non_finite(doc)
    return doc


def parse(text: str, source: str, error: type[Exception], *, line: int | None = None) -> Any:
    """:func:`loads_strict`, with ``error`` naming ``source`` and the line (``line`` when
    ``text`` is that one line of the file) and the field of a non-finite number."""
    try:
        return loads_strict(text)
    except JSONProblem as exc:
        at = line if line is not None else exc.lineno
        raise error(f"{source}:{at}: {exc.problem}" if at is not None else f"{source}: {exc.problem}") from None


def json_object(text: str, where: str, error: type[Exception]) -> dict[str, Any]:
    """``text`` (a hand-written value: a review line, a ``--scorer`` option) as a JSON
    object, read with plain ``json.loads``; ``error`` with ``"{where}: not JSON: ..."`` or
    ``"{where}: expected a JSON object, got list"`` otherwise."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise error(f"{where}: expected a JSON object, got {type(data).__name__}")
    return data


def _check_depth(doc: Any) -> None:
    """Refuse nesting deeper than MAX_DEPTH, iteratively (only containers are visited)."""
    stack: list[tuple[Any, int]] = [(doc, 0)] if type(doc) in (dict, list) else []
    while stack:
        value, depth = stack.pop()
        if depth >= MAX_DEPTH:
            path = _path_to(doc, lambda v, p: len(p) >= MAX_DEPTH and type(v) in (dict, list))
            raise JSONProblem(f"invalid JSON: nested more than {MAX_DEPTH} levels deep at {field_path(path[:8], doc)}...",
                              path=path)
        for child in (value.values() if type(value) is dict else value):
            if type(child) in (dict, list):
                stack.append((child, depth + 1))


def _find_non_finite(doc: Any) -> None:
    path = _path_to(doc, lambda v, p: isinstance(v, _NonFinite))
    raise JSONProblem(f"invalid JSON: {field_path(path, doc)}: {_get(doc, list(path)).text} is not a finite number", path=path)


def _path_to(doc: Any, wanted: Callable[[Any, tuple[Any, ...]], bool]) -> tuple[Any, ...]:
    """The path of the first node (depth first) for which ``wanted(node, path)`` holds."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if wanted(value, path):
            return path
        if isinstance(value, (dict, list)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((child, path + (key,)) for key, child in reversed(list(items)))
    return ()


@lru_cache(maxsize=None)
def _validator(kind: str) -> Any:
    import jsonschema

    text = resources.files("pytest_llmeval").joinpath(f"schemas/{KINDS[kind]}").read_text(encoding="utf-8")
    return jsonschema.Draft202012Validator(json.loads(text))


def check(doc: Any, kind: str, source: str, error: type[Exception], *, what: str | None = None,
          locate: Callable[[tuple[Any, ...]], int | None] | None = None) -> None:
    """Validate ``doc`` against the kind's schema; ``error`` naming the first violation's
    case (where the path has one) and field; ``locate`` gives the line of a path."""
    fast = _FAST.get(kind)
    if fast is not None and fast(doc):
        return  # plainly valid: the schema would find nothing (see _FAST)
    validator = _validator(kind)
    found = next(iter(sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])), None)
    if found is None:
        return
    path = tuple(found.absolute_path)
    line = locate(path) if locate is not None else None
    if line is not None:
        source = f"{source}:{line}"
    message = found.message if len(found.message) <= 200 else found.message[:200] + "..."
    raise error(f"{source}: {what or f'not a valid {kind}'}: {field_path(path, doc)}: {message}")


def _number_in(value: Any, low: float, high: float | None) -> bool:
    return type(value) in (int, float) and low <= value and (high is None or value <= high)


def _baseline_ok(doc: Any) -> bool:
    """The baseline schema's rules in plain Python: True only for a document the schema
    accepts (a test holds them to that), so the common case costs a loop, not a
    jsonschema walk over every case; anything else goes to the schema for its message."""
    if type(doc) is not dict or not {"format", "suite", "dataset", "fingerprint", "cases"} <= doc.keys() or not doc.keys() <= {
            "format", "suite", "dataset", "fingerprint", "plugin_version", "prompts", "provenance", "cases"}:
        return False
    if doc["format"] != "pytest-llmeval-baseline/1" or not all(type(doc.get(k, "")) is str for k in ("suite", "dataset", "fingerprint", "plugin_version")):
        return False
    if not doc["suite"] or type(doc.get("provenance", {})) is not dict or type(doc.get("prompts", {})) is not dict:
        return False
    if not all(type(v) is list and all(type(x) is str for x in v) for v in doc.get("prompts", {}).values()):
        return False
    cases = doc["cases"]
    if type(cases) is not dict:
        return False
    for entry in cases.values():
        if type(entry) is not dict or not {"hash", "scores"} <= entry.keys() or not entry.keys() <= {"hash", "scores", "usage", "output"}:
            return False
        if type(entry.get("output", "")) is not str:
            return False
        scores, usage = entry["scores"], entry.get("usage", {})
        if type(entry["hash"]) is not str or not entry["hash"] or type(scores) is not dict or type(usage) is not dict:
            return False
        for values in scores.values():
            if type(values) is not list or not values or not all(_number_in(v, 0, 1) for v in values):
                return False
        if not all(_number_in(v, 0, None) for v in usage.values()):
            return False
    return True


_FAST = {"baseline": _baseline_ok}


def field_path(path: tuple[Any, ...], doc: Any = None) -> str:
    """``("cases", "q1", "scores", "f1", 0)`` -> ``case 'q1' field scores.f1[0]``; in a report,
    ``("suites", 0, "cases", 3, "scores")`` names the suite and case ids from ``doc``;
    otherwise the slash path the schema error gave (``at run/options/alpha``)."""
    parts = list(path)
    prefix = ""
    if len(parts) >= 2 and parts[0] == "cases" and isinstance(parts[1], str):  # a baseline
        prefix, parts = f"case {parts[1]!r} ", parts[2:]
    elif len(parts) >= 2 and parts[0] == "suites" and isinstance(parts[1], int) and isinstance(doc, dict):
        suite = _get(doc, parts[:2])
        if isinstance(suite, dict) and isinstance(suite.get("suite_id"), str):
            prefix = f"suite {suite['suite_id']} "
            if len(parts) >= 4 and parts[2] == "cases" and isinstance(parts[3], int):
                case = _get(doc, parts[:4])
                if isinstance(case, dict) and isinstance(case.get("case_id"), str):
                    prefix += f"case {case['case_id']!r} "
    shown = "/".join(str(p) for p in path) or "(top level)"
    return f"{prefix}at {shown}"


def _get(doc: Any, path: list[Any]) -> Any:
    for part in path:
        try:
            doc = doc[part]
        except (KeyError, IndexError, TypeError):
            return None
    return doc
