"""Model prices: the price table (USD per million tokens) and the parsers of user overrides.

This module owns

* :class:`Price` and :class:`PriceTable` -- the user's prices (overrides) on top of the
  maintained `genai-prices <https://pypi.org/project/genai-prices/>`_ library, lookup by
  model name (dated snapshots such as ``gpt-4o-mini-2024-07-18`` and ``provider/``
  prefixes such as ``openai/gpt-4o`` included), and the cost of a call with cache reads,
  cache writes and output tokens each at its own rate;
* :func:`price_source` -- which price data a run used, with its date, for the report;
* :func:`parse_price_lines` -- the ini form, ``my-model = 0.5 / 1.5 [/ cached [/ cache write]]``;
* :func:`load_price_file` -- the YAML form, ``models: {my-model: {input: 0.5, output: 1.5}}``.

A model neither the overrides nor the library know is *unpriced*: :meth:`PriceTable.cost`
returns None and the reports list it; a price is never guessed, and never $0. Every problem
with a user's prices is a :class:`~pytest_llmeval.errors.ConfigError` naming the source,
the line and the field. PyYAML is imported only when a price file is read, genai-prices
only when a call is priced by it.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from ..errors import ConfigError

__all__ = [
    "Price",
    "PriceTable",
    "load_price_file",
    "parse_price_lines",
    "price_source",
]

_MTOK = 1_000_000

# A snapshot stamp after a known name: a date (20250514, 2024-08-06), an OpenAI-style
# MMDD (0613), a three-digit revision (Gemini's 001), or "latest". One- and two-digit
# suffixes are *not* stamps: "claude-sonnet-4-5" is another model than "claude-sonnet-4".
_STAMP = re.compile(r"\d{8}|\d{4}-\d{2}-\d{2}|\d{4}|\d{3}|latest")
_STAMP_SEPARATORS = ("-", "@")  # "@" as Vertex AI writes it: claude-sonnet-4@20250514
_LINE = re.compile(r"^(?P<name>[^=]+?)\s*=\s*(?P<prices>[^=]+)$")
_FIELDS = ("input", "output", "cached_input", "cache_write")
_REQUIRED = ("input", "output")


def _check_price(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{what}: price must be a number (USD per million tokens), not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what}: price must be a finite number >= 0 (USD per million tokens), not {value!r}")
    return float(value)


@dataclass(frozen=True)
class Price:
    """USD per million input, output, cached-input (cache read) and cache-write tokens.

    Without ``cached_input_per_mtok`` / ``cache_write_per_mtok`` those tokens cost the
    plain input rate (what a provider without prompt caching bills).
    """

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None

    def __post_init__(self) -> None:
        for name in ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok"):
            value = getattr(self, name)
            if value is not None or name in ("input_per_mtok", "output_per_mtok"):
                object.__setattr__(self, name, _check_price(value, name))

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0, cache_write_tokens: int = 0) -> float:
        """USD; ``input_tokens`` counts every input token, cache reads and writes included."""
        plain = max(0, input_tokens - cached_input_tokens - cache_write_tokens)
        cached_rate = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        write_rate = self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok
        return (plain * self.input_per_mtok + cached_input_tokens * cached_rate + cache_write_tokens * write_rate
                + output_tokens * self.output_per_mtok) / _MTOK


class PriceTable:
    """The user's prices (model name -> :class:`Price`) over the genai-prices library.

    ``PriceTable(prices)`` with ``library=True`` (the default) falls back to genai-prices
    for models the mapping does not name; ``library=False`` prices only the mapping.
    Immutable.
    """

    def __init__(self, prices: Mapping[str, Price] | None = None, *, library: bool = True) -> None:
        table: dict[str, Price] = {}
        for name, price in (prices or {}).items():
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"price table: model name must be a non-empty string, not {name!r}")
            if not isinstance(price, Price):
                raise ConfigError(f"price table: {name}: expected a Price, not {price!r}")
            table[name.strip()] = price
        self._prices: Mapping[str, Price] = MappingProxyType(table)
        self._by_length = sorted(table, key=lambda n: (-len(n), n))
        self.library = bool(library)

    @classmethod
    def default(cls) -> PriceTable:
        """No overrides: every price from genai-prices."""
        return cls()

    def with_overrides(self, prices: Mapping[str, Price]) -> PriceTable:
        """A new table: this one with ``prices`` added or replacing same-named entries."""
        return PriceTable({**self._prices, **prices}, library=self.library)

    def names(self) -> list[str]:
        """The overridden model names (the library's are not listed)."""
        return sorted(self._prices)

    def as_dict(self) -> dict[str, tuple[float, float]]:
        """JSON-safe: overridden name -> [input, output] per million tokens (for reports)."""
        return {name: (p.input_per_mtok, p.output_per_mtok) for name, p in sorted(self._prices.items())}

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and (self.price_for(model) is not None or self._library_cost(model, 1, 1, 0, 0, None) is not None)

    def __len__(self) -> int:
        return len(self._prices)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PriceTable) and dict(self._prices) == dict(other._prices) and self.library == other.library

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PriceTable({len(self._prices)} override(s){', over genai-prices' if self.library else ''})"

    def price_for(self, model: str) -> Price | None:
        """The user's price of ``model``, or None when no override names it.

        Tried in order, for the name as given and then with each leading ``provider/``
        segment removed (``openai/gpt-4o`` -> ``gpt-4o``): the exact name, then the
        longest known name followed by ``-`` or ``@`` and a snapshot stamp (see
        ``_STAMP``: ``2024-08-06``, ``20250514``, ``0613``, ``001``, ``latest``).
        """
        if not isinstance(model, str):
            return None
        candidate = model.strip()
        while candidate:
            price = self._lookup(candidate)
            if price is not None:
                return price
            _, slash, rest = candidate.partition("/")
            candidate = rest if slash else ""
        return None

    def _lookup(self, model: str) -> Price | None:
        price = self._prices.get(model)
        if price is not None:
            return price
        for name in self._by_length:
            if len(model) <= len(name) + 1 or not model.startswith(name):
                continue
            if model[len(name)] in _STAMP_SEPARATORS and _STAMP.fullmatch(model[len(name) + 1:]):
                return self._prices[name]
        return None

    def cost(self, model: str, input_tokens: int, output_tokens: int, *, cached_input_tokens: int = 0,
             cache_write_tokens: int = 0, provider: str | None = None) -> float | None:
        """USD for a call, or None when the model is unpriced.

        ``input_tokens`` counts every input token (cache reads and writes included, see
        :class:`~pytest_llmeval.providers.usage.Usage`); ``provider`` (``"openai"``,
        ``"anthropic"``) helps the library pick the right vendor's price.
        """
        price = self.price_for(model)
        if price is not None:
            return price.cost(input_tokens, output_tokens, cached_input_tokens, cache_write_tokens)
        if not self.library:
            return None
        return self._library_cost(model, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, provider)

    @staticmethod
    def _library_cost(model: str, input_tokens: int, output_tokens: int, cached: int, write: int, provider: str | None) -> float | None:
        if not isinstance(model, str) or not model.strip():
            return None
        return _library_price(model.strip(), provider, input_tokens, output_tokens, cached, write)


@functools.lru_cache(maxsize=4096)
def _library_price(model: str, provider: str | None, input_tokens: int, output_tokens: int, cached: int, write: int) -> float | None:
    try:
        import genai_prices
    except ImportError:  # the library is a dependency; a broken install prices nothing
        return None
    usage = genai_prices.Usage(input_tokens=input_tokens, output_tokens=output_tokens,
                               cache_read_tokens=cached, cache_write_tokens=write)
    for provider_id in ([provider, None] if provider else [None]):
        try:
            return float(genai_prices.calc_price(usage, model, provider_id=provider_id).total_price)
        except LookupError:
            continue
    return None


@functools.lru_cache(maxsize=1)
def price_source() -> dict[str, Any]:
    """``{"library": "genai-prices", "version": "0.2.3", "date": "2026-10-15"}``: the price
    data a run used. ``date`` is the newest past date the bundled data states (a price's
    start date or a "checked" note), i.e. how current the table is; None if it names none."""
    try:
        import importlib.metadata as md

        distribution = md.distribution("genai-prices")
        version = distribution.version
    except Exception:  # noqa: BLE001 - not installed: say so
        return {"library": "genai-prices", "version": None, "date": None}
    date = None
    try:
        # The data module's file, found without importing the package (0.3 s of pydantic
        # models that a run whose calls were all replayed or overridden never needs).
        data = Path(str(distribution.locate_file("genai_prices/data.py")))
        if data.is_file():
            text = data.read_text(encoding="utf-8")
            dates = [f"{y}-{int(m):02d}-{int(d):02d}" for y, m, d in re.findall(r"datetime\.date\((\d{4}), (\d{1,2}), (\d{1,2})\)", text)]
            dates += re.findall(r"[Cc]hecked (\d{4}-\d{2}-\d{2})", text)
            import datetime

            today = datetime.date.today().isoformat()  # prices announced for later are not "checked"
            dates = [d for d in dates if d <= today]
            date = max(dates) if dates else None
    except (OSError, ValueError):  # unreadable: the date is unknown
        date = None
    return {"library": "genai-prices", "version": version, "date": date}


# --------------------------------------------------------------------------- parsers


def parse_price_lines(lines: Sequence[str], source: str) -> dict[str, Price]:
    """Parse the ini form, one model a line: ``my-model = 0.5 / 1.5`` (input / output),
    optionally followed by the cached-input and cache-write rates: ``m = 3 / 15 / 0.3 / 3.75``.

    Blank lines and lines starting with ``#`` or ``;`` are skipped. A bad line, a negative
    price or a model named twice is a ConfigError naming ``source`` and the line.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    prices: dict[str, Price] = {}
    for number, raw in enumerate(lines, start=1):
        text = str(raw).strip()
        if not text or text.startswith(("#", ";")):
            continue
        where = f"{source}: line {number} {text!r}"
        match = _LINE.match(text)
        parts = [part.strip() for part in match["prices"].split("/")] if match else []
        if match is None or not 2 <= len(parts) <= len(_FIELDS) or not all(parts):
            raise ConfigError(f"{where}: expected 'model = input / output' (USD per million tokens), e.g. 'my-model = 0.5 / 1.5'"
                              " (optionally '/ cached_input / cache_write' after them)")
        name = match["name"].strip()
        values = []
        for field, part in zip(_FIELDS, parts):
            try:
                value = float(part)
            except ValueError:
                raise ConfigError(f"{where}: {field} price {part!r} is not a number") from None
            values.append(_check_price(value, f"{where}: {field}"))
        if name in prices:
            raise ConfigError(f"{where}: model {name!r} is priced twice")
        prices[name] = Price(*values)
    return prices


def load_price_file(path: Path) -> dict[str, Price]:
    """Read a YAML price file (safe loading).

    Shape: ``{"models": {name: {"input": x, "output": y}}}``, or the inner mapping alone.
    Any problem -- missing file, YAML syntax, a model without ``input`` or ``output``, a
    value that is not a number, a negative price, an unknown key, a model listed twice --
    is a ConfigError reading ``path:line: field: problem``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: price file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read price file: {exc}") from None

    import yaml

    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{line}: invalid YAML: {exc.problem or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from None
        return _prices_from_yaml(loader, root, path)
    finally:
        loader.dispose()


def _prices_from_yaml(loader: Any, root: Any, path: Path) -> dict[str, Price]:
    import yaml

    def fail(node: Any, field: str | None, problem: str) -> ConfigError:
        where = f"{path}:{node.start_mark.line + 1}" if node is not None else str(path)
        return ConfigError(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")

    def items(node: Any, field: str | None) -> list[tuple[str, Any, Any]]:
        if not isinstance(node, yaml.MappingNode):
            raise fail(node, field, f"expected a mapping, got {_describe(node)}")
        seen: set[str] = set()
        out = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise fail(key_node, field, f"keys must be strings, got {_describe(key_node)}")
            key = key_node.value
            if key in seen:
                raise fail(key_node, _join(field, key), "listed twice")
            seen.add(key)
            out.append((key, key_node, value_node))
        return out

    if root is None:
        raise ConfigError(f"{path}: empty price file: expected 'models: {{<model>: {{input: <usd/Mtok>, output: <usd/Mtok>}}}}'")
    top = items(root, None)
    models_node, prefix = root, None
    if any(key == "models" for key, _, _ in top):
        for key, key_node, _ in top:
            if key != "models":
                raise fail(key_node, key, "unknown key (expected only 'models')")
        models_node, prefix = top[0][2], "models"

    prices: dict[str, Price] = {}
    for name, name_node, entry in items(models_node, prefix):
        field = _join(prefix, name)
        if not name.strip():
            raise fail(name_node, field, "model name is empty")
        values: dict[str, float] = {}
        for key, key_node, value_node in items(entry, field):
            if key not in _FIELDS:
                raise fail(key_node, _join(field, key), "unknown key (expected 'input', 'output' and optionally 'cached_input',"
                           " 'cache_write', USD per million tokens)")
            if not isinstance(value_node, yaml.ScalarNode) or value_node.tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
                raise fail(value_node, _join(field, key), f"not a number: {_describe(value_node)}")
            value = loader.construct_object(value_node)
            try:
                values[key] = _check_price(value, "price")
            except ConfigError:
                raise fail(value_node, _join(field, key), f"price must be a finite number >= 0 (USD per million tokens), not {value_node.value}") from None
        for key in _REQUIRED:
            if key not in values:
                raise fail(entry, _join(field, key), "missing (USD per million tokens)")
        prices[name.strip()] = Price(values["input"], values["output"], values.get("cached_input"), values.get("cache_write"))
    return prices


def _join(prefix: str | None, key: str) -> str:
    return key if prefix is None else f"{prefix}.{key}"


def _describe(node: Any) -> str:
    import yaml

    if isinstance(node, yaml.ScalarNode):
        return repr(node.value) if node.tag != "tag:yaml.org,2002:null" else "nothing (null)"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return "nothing"
