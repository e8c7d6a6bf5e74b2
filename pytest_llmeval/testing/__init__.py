"""Test helpers shipped with pytest-llmeval, for users' offline tests and our own.

This package owns the public names of the testing toolkit; today that is the loopback
LLM server (:class:`LoopbackLLMServer`, :class:`Faults`) defined in
:mod:`pytest_llmeval.testing.server`. Names are imported lazily on first access, so
importing this package costs nothing and ``python -m pytest_llmeval.testing.server``
runs without a double-import warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Faults, LoopbackLLMServer

__all__ = ["Faults", "LoopbackLLMServer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
