"""Loading ``llmops-config.yaml`` with the line of every value, and checking its shape.

The YAML is composed into a node tree with :class:`yaml.SafeLoader` and turned into plain
Python data here: scalars are constructed by the safe constructor (so ``0.8`` is a float
and ``yes`` is ``True`` exactly as ``yaml.safe_load`` reads them), mappings and sequences
by this module, which records the line of each key and item on the way. Nothing is ever
loaded with a non-safe loader; an unknown tag is unusable input.

While building, the loader also reports what ``yaml.safe_load`` silently hides: a key
given twice (the first value is dropped) and keys that YAML does not read as strings
(``on:``, ``no:``, ``5:``), which are kept as their source text.

:func:`schema_findings` validates the data against
``schemas/llmops-config.schema.json`` (jsonschema, imported here) and turns each
violation into a finding with the line of the offending key, unknown keys with a
"did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from ..errors import LLMEvalError
from .findings import Finding, finding

__all__ = [
    "ConfigLoadError",
    "LoadedConfig",
    "as_mapping",
    "dotted",
    "load_config",
    "parse_config",
    "schema",
    "schema_findings",
]

_MAX_NODES = 20_000  # alias expansion ("billion laughs") guard
_MAX_DEPTH = 100
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"

class ConfigLoadError(LLMEvalError):
    """A config that cannot be read at all: unreadable file, bad YAML, not a mapping."""


@dataclass
class LoadedConfig:
    """The config's data plus where each key and item is in the file."""

    file: str
    folder: Path
    data: dict[str, Any]
    lines: dict[tuple, int] = field(default_factory=dict)
    load_findings: list[Finding] = field(default_factory=list)

    def line(self, path: tuple = ()) -> int:
        """1-based line of ``path``'s key (or item); the nearest ancestor's when the path
        does not exist (a missing key points at its parent); 1 for the top level."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 1

    def get(self, *path: Any, default: Any = None) -> Any:
        node: Any = self.data
        for part in path:
            if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
                node = node[part]
            elif isinstance(part, str) and isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return default
        return node

    def finding(self, code: str, message: str, path: tuple = (), *, severity: str | None = None) -> Finding:
        """A finding about ``path`` (line and dotted key filled in)."""
        return finding(code, message, self.line(path), self.file, dotted(path) or None, severity)


def dotted(path: tuple) -> str:
    """``("routing", "routes", 1, "weight")`` -> ``routing.routes[1].weight``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load_config(path: str | Path) -> LoadedConfig:
    """Read and parse a config file; ConfigLoadError (exit 2) when it cannot be used."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigLoadError(f"{path}: config not found") from None
    except IsADirectoryError:
        raise ConfigLoadError(f"{path}: is a folder, not a config file") from None
    except OSError as exc:
        raise ConfigLoadError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigLoadError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_config(text, str(path), path.resolve().parent)


def parse_config(text: str, file: str = "llmops-config.yaml", folder: Path | None = None) -> LoadedConfig:
    """Parse config text; ``file`` is how findings name it, ``folder`` what relative paths
    in it (prompt storage, golden dataset, prompt log) are relative to."""
    import yaml

    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            raise ConfigLoadError(f"{file}: the config is empty")
        builder = _Builder(loader, file)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        problem = ": ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigLoadError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigLoadError(f"{file}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigLoadError(f"{file}: invalid config: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        kind = _describe_type(data)
        raise ConfigLoadError(f"{file}:{node.start_mark.line + 1}: the config must be a mapping of sections "
                              f"(routing, eval_gates, ...), not {kind}")
    return LoadedConfig(file, folder or Path.cwd(), data, builder.lines, builder.findings)


class _Builder:
    """Plain data from a composed node tree, recording lines as it goes."""

    def __init__(self, loader: Any, file: str) -> None:
        self.loader = loader
        self.file = file
        self.lines: dict[tuple, int] = {}
        self.findings: list[Finding] = []
        self._count = 0
        self._active: set[int] = set()
        self._own: dict[int, set[int]] = {}

    def _fail(self, node: Any, problem: str) -> ConfigLoadError:
        return ConfigLoadError(f"{self.file}:{node.start_mark.line + 1}: {problem}")

    def build(self, node: Any, path: tuple) -> Any:
        import yaml

        self._count += 1
        if self._count > _MAX_NODES:
            raise self._fail(node, f"the config expands to more than {_MAX_NODES} values (aliases?)")
        if len(path) > _MAX_DEPTH:
            raise self._fail(node, "invalid config: nested too deeply")
        if isinstance(node, yaml.ScalarNode):
            return self.loader.construct_object(node, deep=True)
        if id(node) in self._active:
            raise self._fail(node, "invalid config: an alias refers to a mapping or list that contains it")
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    raise self._fail(node, f"unsupported YAML tag {node.tag!r}")
                items = []
                for index, child in enumerate(node.value):
                    self.lines.setdefault(path + (index,), child.start_mark.line + 1)
                    items.append(self.build(child, path + (index,)))
                return items
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP_TAG:
                    raise self._fail(node, f"unsupported YAML tag {node.tag!r}")
                own = self._own.get(id(node))
                if own is None:  # before the first flattening: an aliased node is visited again
                    own = self._own[id(node)] = {id(key_node) for key_node, _ in node.value}
                self.loader.flatten_mapping(node)  # merge keys (<<: *anchor), as safe_load does
                out: dict[str, Any] = {}
                first: dict[str, int] = {}
                for key_node, value_node in node.value:
                    key = self._key(key_node, path)
                    line = key_node.start_mark.line + 1
                    if id(key_node) not in own:  # merged in: a later own key overrides it on purpose
                        self.lines[path + (key,)] = line
                        out[key] = self.build(value_node, path + (key,))
                        continue
                    if key in first:
                        self.findings.append(finding(
                            "LEC004", f"{dotted(path + (key,))}: key {key!r} is given twice (lines {first[key]} and "
                            f"{line}); YAML keeps only the last value", line, self.file, dotted(path + (key,))))
                    first.setdefault(key, line)
                    self.lines[path + (key,)] = line
                    out[key] = self.build(value_node, path + (key,))
                return out
            raise self._fail(node, f"unsupported YAML node {type(node).__name__}")  # pragma: no cover
        finally:
            self._active.discard(id(node))

    def _key(self, node: Any, path: tuple) -> str:
        import yaml

        if not isinstance(node, yaml.ScalarNode):
            raise self._fail(node, "a key must be a plain string, not a mapping or list")
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, str):
            return value
        text = str(node.value)
        self.findings.append(finding(
            "LEC005", f"{dotted(path + (text,))}: key {text!r} is read by YAML as {_describe_type(value)} "
            f"{value!r}, not a string; quote it ('{text}':)", node.start_mark.line + 1, self.file,
            dotted(path + (text,))))
        return text


# bool before int: True is an int too.
_TYPE_NAMES = ((type(None), "null"), (bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
               (list, "a list"), (dict, "a mapping"))


def _describe_type(value: Any) -> str:
    return next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), f"a {type(value).__name__}")


# --------------------------------------------------------------------------- schema


def schema() -> dict[str, Any]:
    """The config's JSON Schema (shipped as schemas/llmops-config.schema.json)."""
    text = resources.files("pytest_llmeval").joinpath("schemas/llmops-config.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


_JSON_TYPES = {"object": "a mapping", "array": "a list", "string": "a string", "number": "a number",
               "integer": "an integer", "boolean": "true or false", "null": "null"}


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


def schema_findings(config: LoadedConfig) -> list[Finding]:
    """Shape problems: unknown keys (LEC001), wrong types (LEC002), missing keys (LEC003)."""
    findings: list[Finding] = []
    for error in _validator().iter_errors(config.data):
        findings.extend(_from_schema_error(config, error))
    return findings


def _from_schema_error(config: LoadedConfig, error: Any) -> list[Finding]:
    path = tuple(error.absolute_path)
    where = dotted(path) or "(top level)"
    validator, instance, sub = error.validator, error.instance, error.schema
    if validator == "additionalProperties" and isinstance(instance, dict):
        known = sorted(sub.get("properties", {}))
        out = []
        for key in sorted(set(instance) - set(known)):
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            shown = f"{where}: " if path else ""
            out.append(config.finding("LEC001", f"{shown}unknown key {key!r}{hint} (known keys here: {', '.join(known)})",
                                      path + (key,)))
        return out
    if validator == "required" and isinstance(instance, dict):
        missing = [k for k in error.validator_value if k not in instance]
        return [config.finding("LEC003", f"{where}: missing required key {k!r}", path) for k in missing]
    if validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        expected = " or ".join(_JSON_TYPES.get(t, t) for t in wanted)
        got = _describe_type(instance)
        hint = ""
        if "string" in wanted and isinstance(instance, (int, float, bool)):
            hint = " (quote it to make it a string)"
        elif wanted == ["integer"] and isinstance(instance, float) and not isinstance(instance, bool):
            hint = " (a whole number, without a decimal point)"
        return [config.finding("LEC002", f"{where}: expected {expected}, got {got} {_short(instance)}{hint}", path)]
    if validator == "minLength":
        return [config.finding("LEC002", f"{where}: must not be empty", path)]
    if validator == "minItems":
        return [config.finding("LEC002", f"{where}: needs at least {error.validator_value} item(s)", path)]
    return [config.finding("LEC002", f"{where}: {error.message}", path)]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}
