"""Built-in binary scorers for structured output: json_valid and json_schema.

``json_schema`` validates with the ``jsonschema`` package, imported when a schema is
first compiled (never when the plugin loads). Validators are compiled once per schema:
at bind time for the marker option ``schema=``, and on first use (then cached) for
schemas read from a row's ``metadata["schema"]``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Mapping

from ..errors import ScorerError
from ..models import Case
from ._common import check_bool, text_of
from .base import Scorer

__all__ = ["BUILTIN_SCORERS", "json_schema", "json_valid", "parse_json"]

# ```json ... ``` (language tag optional) around the whole output.
_CODE_FENCE = re.compile(r"\A\s*```[\w-]*[ \t]*\r?\n(?P<body>.*?)\r?\n?```\s*\Z", re.DOTALL)

_MISSING = object()


def parse_json(output: Any, *, strip_code_fence: bool = False) -> Any:
    """The output as a JSON value, or ``_MISSING`` when it is not JSON.

    Strings and bytes are parsed; other values must survive ``json.dumps`` and are
    round-tripped (tuples become lists), so they validate the way their JSON would.
    """
    if isinstance(output, (str, bytes, bytearray)):
        text = text_of(output)
        if strip_code_fence:
            fenced = _CODE_FENCE.match(text)
            if fenced is not None:
                text = fenced.group("body")
        try:
            return json.loads(text)
        except ValueError:
            return _MISSING
    try:
        return json.loads(json.dumps(output))
    except (ValueError, TypeError):
        return _MISSING


def json_valid(output: Any, case: Case, *, strip_code_fence: bool = False) -> float:
    """1.0 when the output is a JSON document (a string that parses, or a JSON-able value).

    With ``strip_code_fence`` a Markdown code fence around the whole output is removed first.
    """
    return float(parse_json(output, strip_code_fence=strip_code_fence) is not _MISSING)


def _json_valid_options(strip_code_fence: Any = False) -> dict[str, Any]:
    return {"strip_code_fence": check_bool("json_valid", "strip_code_fence", strip_code_fence)}


json_valid.prepare_options = _json_valid_options  # type: ignore[attr-defined]


class _CompiledSchema:
    """A checked schema with its validator (what ``prepare_options`` hands the scorer)."""

    __slots__ = ("schema", "validator")

    def __init__(self, schema: Any, validator: Any) -> None:
        self.schema = schema
        self.validator = validator

    def __repr__(self) -> str:
        return f"<json schema {json.dumps(self.schema, sort_keys=True)[:60]}>"


def _compile_schema(schema: Any, where: str) -> _CompiledSchema:
    if not isinstance(schema, (Mapping, bool)):
        raise ScorerError(f"scorer 'json_schema': {where} must be a JSON Schema (a mapping), got {schema!r}")
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ScorerError(f"scorer 'json_schema': {where} is not JSON: {exc}") from None
    try:
        return _compile_schema_text(key)
    except ScorerError as exc:
        raise ScorerError(f"scorer 'json_schema': {where} is not a valid JSON Schema: {exc}") from None


@lru_cache(maxsize=256)
def _compile_schema_text(key: str) -> _CompiledSchema:
    from jsonschema import exceptions, validators  # lazy: only suites using json_schema pay for it

    schema = json.loads(key)
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        raise ScorerError(exc.message) from None
    return _CompiledSchema(schema, cls(schema))


def json_schema(output: Any, case: Case, *, schema: Any = None, strip_code_fence: bool = False) -> float:
    """1.0 when the output parses as JSON and validates against the schema.

    The schema is the option ``schema`` or, without it, the row's ``metadata["schema"]``.
    """
    if schema is None:
        if "schema" not in case.metadata:
            raise ScorerError(
                f"scorer 'json_schema' needs the option 'schema' or the row's metadata['schema']; case {case.id!r} has neither"
            )
        compiled = _compile_schema(case.metadata["schema"], f"case {case.id!r}: metadata['schema']")
    elif isinstance(schema, _CompiledSchema):
        compiled = schema
    else:
        compiled = _compile_schema(schema, "option 'schema'")
    instance = parse_json(output, strip_code_fence=strip_code_fence)
    if instance is _MISSING:
        return 0.0
    return float(compiled.validator.is_valid(instance))


def _json_schema_options(schema: Any = None, strip_code_fence: Any = False) -> dict[str, Any]:
    options: dict[str, Any] = {"strip_code_fence": check_bool("json_schema", "strip_code_fence", strip_code_fence)}
    if schema is not None:
        options["schema"] = _compile_schema(schema, "option 'schema'")  # check once, fail at collection
    return options


json_schema.prepare_options = _json_schema_options  # type: ignore[attr-defined]


BUILTIN_SCORERS = (
    Scorer("json_valid", json_valid, binary=True),
    Scorer("json_schema", json_schema, binary=True),
)
