"""Provider configuration: where to send a model call and how patiently.

API keys are never part of a config: only the name of the environment variable that
holds one, read when a request is sent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Mapping

from ..errors import ConfigError

__all__ = [
    "DEFAULT_BACKOFF_BASE",
    "DEFAULT_BACKOFF_MAX",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "PROVIDERS",
    "ProviderConfig",
]

PROVIDERS = ("openai", "anthropic")
DEFAULT_TIMEOUT = 60.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 4
DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_BASE_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com/v1"}
DEFAULT_KEY_ENVS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


@dataclass(frozen=True)
class ProviderConfig:
    """How to reach one model.

    ``provider`` picks the protocol: ``openai`` (chat completions: OpenAI, Azure OpenAI,
    vLLM, Ollama, llama.cpp server, LiteLLM) or ``anthropic`` (messages). For Azure set
    ``api_version`` (sent as the ``api-version`` query parameter) and ``auth_header="api-key"``.
    ``rate_limit`` is requests per second shared by every client of this base URL.
    """

    provider: str = "openai"
    model: str = ""
    base_url: str = ""
    api_key_env: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_max: float = DEFAULT_BACKOFF_MAX
    rate_limit: float | None = None
    api_version: str | None = None
    auth_header: str = "authorization"

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ConfigError(f"provider {self.provider!r} is not one of {', '.join(PROVIDERS)}")
        if not self.base_url:
            object.__setattr__(self, "base_url", DEFAULT_BASE_URLS[self.provider])
        if self.api_key_env is None:
            object.__setattr__(self, "api_key_env", DEFAULT_KEY_ENVS[self.provider])
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        from .redaction import register_key_env

        register_key_env(self.api_key_env)
        for name in ("timeout", "connect_timeout", "backoff_max"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"provider {name} must be positive, got {getattr(self, name)!r}")
        if self.backoff_base < 0:
            raise ConfigError(f"provider backoff_base must not be negative, got {self.backoff_base!r}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"provider max_retries must be a non-negative integer, got {self.max_retries!r}")
        if self.rate_limit is not None and not self.rate_limit > 0:
            raise ConfigError(f"provider rate_limit must be positive requests/second, got {self.rate_limit!r}")

    def api_key(self) -> str | None:
        """The key from the environment variable named by ``api_key_env`` (None if unset
        or blank), without surrounding whitespace (a trailing newline from ``$(cat file)``
        is common). A key with whitespace or control characters *inside* is refused with a
        ConfigError that names the variable, never the key."""
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env)
        if value is None:
            return None
        key = value.strip()
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in key):
            raise ConfigError(f"the API key in ${self.api_key_env} has whitespace or control characters inside it: "
                              "it cannot be sent as a header; set the variable to the key alone")
        return key or None

    def with_overrides(self, overrides: Mapping[str, Any]) -> ProviderConfig:
        """A copy with some fields replaced (from a marker's ``provider={...}``)."""
        unknown = set(overrides) - set(self.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown provider settings {sorted(unknown)}; known: {', '.join(sorted(self.__dataclass_fields__))}")
        changes = dict(overrides)
        if changes.get("provider", self.provider) != self.provider:
            # Defaults that came from the old provider follow the new one.
            if "base_url" not in changes and self.base_url == DEFAULT_BASE_URLS[self.provider]:
                changes["base_url"] = ""
            if "api_key_env" not in changes and self.api_key_env == DEFAULT_KEY_ENVS[self.provider]:
                changes["api_key_env"] = None
        return replace(self, **changes)
