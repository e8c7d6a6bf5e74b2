"""Session-wide defaults for clients created without explicit arguments.

The plugin sets them once per run (the record/replay cache, the price table, the
default provider config); a client reads them when it makes a call, so clients built
at import time of a user's app still use the run's cache and prices.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ContextManager, Iterator, Mapping, TypeVar

from .config import ProviderConfig

if TYPE_CHECKING:
    from .cache import ResponseCache
    from .pricing import PriceTable

__all__ = ["Defaults", "bind", "current_config", "current_repeat", "current_variant", "defaults", "set_defaults", "use_repeat",
           "use_suite_config", "use_variant"]


@dataclass(frozen=True)
class Defaults:
    config: ProviderConfig | None = None
    cache: ResponseCache | None = None
    prices: PriceTable | None = None
    judge: ProviderConfig | None = None  # the LLM judge's model (default: ``config``)


_DEFAULTS = Defaults()
_T = TypeVar("_T")
_REPEAT: contextvars.ContextVar[int] = contextvars.ContextVar("llm_eval_repeat", default=0)
_VARIANT: contextvars.ContextVar[tuple[str, Mapping[str, Any]] | None] = contextvars.ContextVar("llm_eval_variant", default=None)
_SUITE_CONFIG: contextvars.ContextVar[ProviderConfig | None] = contextvars.ContextVar("llm_eval_suite_config", default=None)


@contextmanager
def bind(var: contextvars.ContextVar[_T], value: _T) -> Iterator[_T]:
    """Set ``var`` to ``value`` inside the ``with`` block (and the threads and tasks it
    starts with a copy of its context); the previous value comes back after it."""
    token = var.set(value)
    try:
        yield value
    finally:
        var.reset(token)


def current_config() -> ProviderConfig:
    """The config a bare client uses now: the running suite's, the run's, or the default."""
    return _SUITE_CONFIG.get() or _DEFAULTS.config or ProviderConfig()


def use_suite_config(config: ProviderConfig | None) -> ContextManager[ProviderConfig | None]:
    """Run the block with a suite's marker ``provider={...}`` settings (None: the run's)."""
    return bind(_SUITE_CONFIG, config)


def defaults() -> Defaults:
    return _DEFAULTS


def set_defaults(value: Defaults) -> None:
    global _DEFAULTS
    _DEFAULTS = value


def current_repeat() -> int:
    """Which repeat of its case the running call belongs to (part of the cache key)."""
    return _REPEAT.get()


def use_repeat(repeat: int) -> ContextManager[int]:
    """Run the block as repeat ``repeat`` of its case."""
    return bind(_REPEAT, repeat)


def current_variant() -> str | None:
    """The running case's A/B variant key (a digest of its name and settings), or None:
    part of the cache key, so each variant records and replays its own answers."""
    variant = _VARIANT.get()
    return variant[0] if variant is not None else None


def variant_overrides() -> Mapping[str, Any]:
    """The running variant's provider settings (``model``, ``provider``, ...): the clients
    apply them to app calls, over a client's own config (never to judge calls)."""
    variant = _VARIANT.get()
    return variant[1] if variant is not None else {}


def use_variant(key: str, overrides: Mapping[str, Any]) -> ContextManager[tuple[str, Mapping[str, Any]] | None]:
    """Run the block as a case of the variant with cache key ``key`` and provider settings ``overrides``."""
    return bind(_VARIANT, (key, overrides))
