"""YAML dataset rows as the user wrote them: no YAML 1.1 surprises, no silent duplicates, bounded.

PyYAML reads YAML 1.1, where the unquoted ``yes``/``no``/``on``/``off``/``y``/``n`` are
booleans, ``010`` is the octal 8, ``1:30`` the sexagesimal 90, ``1.10`` the float 1.1 and
``2024-01-02`` a date. In a dataset a correct ``expected: yes`` would then score 0. The
document is composed into nodes by :class:`yaml.SafeLoader` (never a non-safe loader) and
turned into plain data here:

* a plain scalar whose YAML 1.1 value does not print back as it was written (the cases
  above, plus ``0x1F``, ``1_000``, ``.5``, ``.inf``, ...) becomes :class:`Written`: a
  ``str`` holding the written text, with the YAML 1.1 value and line beside it. The
  dataset loader keeps it as the text where a string is expected and refuses it elsewhere
  (see :mod:`pytest_llmeval.core.datasets` and docs/usage.md). ``true``/``false``, plain
  integers and floats that print back as written are read as usual;
* mapping keys are the text as written (``on:`` is the key ``"on"``);
* a key given twice in one mapping is a :class:`~pytest_llmeval.errors.DatasetError`
  naming the file, the line and the key (merge keys ``<<: *anchor`` may be overridden);
* aliases may not expand the document past :data:`MAX_EXPANSION` times its own size
  (plus :data:`EXPANSION_ALLOWANCE` values), checked on the node graph before anything is
  built, so a "billion laughs" file fails at once; nesting is bounded by
  :data:`MAX_DEPTH` and an alias to its own ancestor is refused.

PyYAML is imported when a YAML file is read.
"""

from __future__ import annotations

from typing import Any, Iterator

from ..errors import DatasetError
from ..validation import MAX_DEPTH

__all__ = ["EXPANSION_ALLOWANCE", "MAX_EXPANSION", "Written", "yaml_rows"]

MAX_EXPANSION = 10
EXPANSION_ALLOWANCE = 100_000
_SURPRISING = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}
_PLAIN = {"tag:yaml.org,2002:str", "tag:yaml.org,2002:null"} | _SURPRISING


class Written(str):
    """A plain scalar kept as written: ``str(self)`` is the text, ``value`` what YAML 1.1
    reads it as, ``line`` its 1-based line."""

    value: Any
    line: int

    def __new__(cls, text: str, value: Any, line: int) -> Written:
        self = super().__new__(cls, text)
        self.value = value
        self.line = line
        return self

    def meaning(self) -> str:
        """What YAML 1.1 makes of it, for messages: ``the boolean True``, ``the integer 8``."""
        kind = {bool: "boolean", int: "integer", float: "number"}.get(type(self.value), "date")
        return f"the {kind} {self.value!r}" if kind != "date" else f"the date {self.value}"


def yaml_rows(shown: str, text: str) -> Iterator[tuple[int, Any]]:
    """``(line, row)`` for each row of a YAML dataset: a list of rows, or a mapping with the
    rows under ``cases:``."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise DatasetError(shown, line, None, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise DatasetError(shown, None, None, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise DatasetError(shown, None, None, f"invalid YAML: nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()
    if root is None:
        return
    _check_expansion(shown, root)
    builder = _Builder(shown, loader)
    rows = root
    if isinstance(root, yaml.MappingNode):
        cases = [value for key, value in root.value if isinstance(key, yaml.ScalarNode) and key.value == "cases"]
        if cases:
            rows = cases[0]
    if not isinstance(rows, yaml.SequenceNode):
        raise DatasetError(shown, rows.start_mark.line + 1, None,
                           "a YAML dataset must be a list of rows (or a mapping with a `cases:` list)")
    if isinstance(root, yaml.MappingNode):
        builder.build(root, 0)  # duplicate keys and tags beside `cases:` are errors too
    for node in rows.value:
        yield node.start_mark.line + 1, builder.build(node, 1)


def _check_expansion(shown: str, root: Any) -> None:
    """Refuse a document whose aliases expand it past MAX_EXPANSION times its size, or that
    nests deeper than MAX_DEPTH, or whose alias refers to its own ancestor: on the node
    graph, in time linear in its distinct nodes."""
    import yaml

    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    # Iterative post-order walk: (node, children done?)
    stack: list[tuple[Any, bool]] = [(root, False)]
    active: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        if isinstance(node, yaml.ScalarNode):
            sizes[key], depths[key] = 1, 0
            continue
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
        if done:
            active.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            depths[key] = 1 + max((depths[id(c)] for c in children), default=0)
            if depths[key] > MAX_DEPTH:
                raise DatasetError(shown, node.start_mark.line + 1, None, f"invalid YAML: nested more than {MAX_DEPTH} levels deep")
            continue
        if key in sizes:
            continue
        if key in active:
            raise DatasetError(shown, node.start_mark.line + 1, None, "invalid YAML: an alias refers to a mapping or list that contains it")
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    limit = MAX_EXPANSION * len(sizes) + EXPANSION_ALLOWANCE
    if sizes[id(root)] > limit:
        raise DatasetError(shown, None, None, f"invalid YAML: aliases expand the document to {sizes[id(root)]} values, "
                                              f"more than {MAX_EXPANSION} times its {len(sizes)} (a 'billion laughs' file?)")


class _Builder:
    """Plain data from checked nodes (fresh objects for every alias use)."""

    def __init__(self, shown: str, loader: Any) -> None:
        self.shown = shown
        self.loader = loader
        self._own: dict[int, set[int]] = {}

    def build(self, node: Any, depth: int) -> Any:
        import yaml

        line = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, line)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                raise DatasetError(self.shown, line, None, f"unsupported YAML tag {node.tag!r}")
            return [self.build(child, depth + 1) for child in node.value]
        if node.tag != "tag:yaml.org,2002:map":
            raise DatasetError(self.shown, line, None, f"unsupported YAML tag {node.tag!r}")
        own = self._own.get(id(node))
        if own is None:  # before the first flattening: an aliased mapping is built again
            own = self._own[id(node)] = {id(key_node) for key_node, _ in node.value}
        try:
            self.loader.flatten_mapping(node)  # merge keys (<<: *anchor), as safe_load does
        except yaml.MarkedYAMLError as exc:
            raise DatasetError(self.shown, line, None, f"invalid YAML: {exc.problem}") from None
        out: dict[str, Any] = {}
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise DatasetError(self.shown, key_node.start_mark.line + 1, None, "a key must be a plain string, not a mapping or list")
            key = str(key_node.value)
            key_line = key_node.start_mark.line + 1
            if id(key_node) in own:
                if key in first:
                    raise DatasetError(self.shown, key_line, key, f"key given twice in one mapping (first on line {first[key]}); "
                                                                  "YAML would silently keep only the last value")
                first[key] = key_line
            out[key] = self.build(value_node, depth + 1)
        return out

    def _scalar(self, node: Any, line: int) -> Any:
        if node.tag not in _PLAIN:
            raise DatasetError(self.shown, line, None, f"unsupported YAML tag {node.tag!r}: datasets hold plain text, numbers and booleans")
        value = self.loader.construct_object(node, deep=True)
        if node.style is None and node.tag in _SURPRISING and not _prints_back(node.value, value):
            return Written(node.value, value, line)
        return value


def _prints_back(text: str, value: Any) -> bool:
    """True when YAML 1.1's value shows as the text it was written as (``10``, ``0.5``, ``true``)."""
    if isinstance(value, bool):
        return text.lower() in ("true", "false")
    if isinstance(value, int):
        return str(value) == text
    if isinstance(value, float):
        return repr(value) == text
    return False  # dates and times
