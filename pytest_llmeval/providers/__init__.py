"""Model providers: HTTP clients, retries, rate limits, pricing, accounting and the cache.

Nothing here is imported until a client is used: httpx loads with ``client``.

- ``config``: :class:`ProviderConfig` and its ``DEFAULT_*`` values
- ``client``: :class:`ChatClient` / :class:`AsyncChatClient` for OpenAI-compatible chat
  completions and Anthropic messages, with retries and ``Retry-After``
- ``ratelimit``: a requests-per-second limit shared across a suite
- ``pricing``: the price table; ``accounting``: per-case usage; ``cache``: record/replay
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import ProviderConfig

if TYPE_CHECKING:
    from .client import AsyncChatClient, ChatClient, ChatResult

__all__ = ["AsyncChatClient", "ChatClient", "ChatResult", "ProviderConfig"]


def __getattr__(name: str) -> Any:
    if name in ("AsyncChatClient", "ChatClient", "ChatResult"):
        from . import client

        return getattr(client, name)
    raise AttributeError(name)
