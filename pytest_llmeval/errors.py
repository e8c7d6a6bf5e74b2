"""The plugin's exception family.

Hierarchy::

    LLMEvalError                 root: catch this to handle anything the plugin raises
    ├── DatasetError             a dataset file is missing, unparsable or has a bad row
    ├── ScorerError              an unknown scorer, bad scorer options, or a scorer that failed
    ├── ConfigError              a bad command-line option, ini value or marker argument
    ├── BaselineError            a baseline file that exists but cannot be read or trusted
    ├── CacheError               a record/replay cache entry that cannot be read or written
    │   └── CacheMissError       strict replay: the call is not in the cache
    └── ProviderError            a model call failed after its retries (``status``, ``kind``)
        ├── ProviderTimeout      the provider did not answer within the timeout
        ├── ProviderConnectionError  connecting failed or the connection dropped
        ├── RateLimitError       HTTP 429
        ├── ServerError          HTTP 5xx
        ├── ClientRequestError   any other HTTP 4xx (bad request, auth, not found): not retried
        └── ResponseParseError   the answer is not the protocol's JSON

Every message names what the user has to fix: the file, the line and the field where
there is one.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BaselineError",
    "CacheError",
    "CacheMissError",
    "ClientRequestError",
    "ConfigError",
    "DatasetError",
    "LLMEvalError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeout",
    "RateLimitError",
    "ResponseParseError",
    "ScorerError",
    "ServerError",
]


class LLMEvalError(Exception):
    """Root of every error the plugin raises on purpose."""


class DatasetError(LLMEvalError):
    """A dataset that cannot be turned into cases.

    ``str(error)`` reads ``path:line: field: problem``; the parts are kept as attributes.
    """

    def __init__(self, path: str, line: int | None, field: str | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem
        where = path if line is None else f"{path}:{line}"
        what = problem if field is None else f"field {field!r}: {problem}"
        super().__init__(f"{where}: {what}")


class ScorerError(LLMEvalError):
    """An unknown or misconfigured scorer, or a scorer that raised while scoring."""


class ConfigError(LLMEvalError):
    """A bad option, ini value or ``llm_eval`` marker argument."""


class BaselineError(LLMEvalError):
    """A baseline file that exists but is corrupt, unreadable or of an unknown format."""


class CacheError(LLMEvalError):
    """A cache entry that exists but cannot be read, or cannot be written."""


class CacheMissError(CacheError):
    """Strict replay mode and the call is not in the cache."""


class ProviderError(LLMEvalError):
    """A model call that failed for good (after retries where retrying makes sense).

    ``kind`` is one of ``timeout``, ``connect``, ``rate_limit``, ``server_error``,
    ``client_error``, ``parse``; ``status`` is the HTTP status when there was one.
    Messages never contain API keys.
    """

    kind = "error"

    def __init_subclass__(cls, *, kind: str | None = None, **kwargs: Any) -> None:
        """``class X(ProviderError, kind="...")`` sets the subclass's ``kind`` (else inherited)."""
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind

    def __init__(self, message: str, *, status: int | None = None, provider: str = "", model: str = "") -> None:
        self.status = status
        self.provider = provider
        self.model = model
        super().__init__(message)


# One class per failure kind, so that callers catch exactly the kind they handle
# (``except RateLimitError``).
class ProviderTimeout(ProviderError, kind="timeout"):
    """The request did not complete within the configured timeout (retried)."""


class ProviderConnectionError(ProviderError, kind="connect"):
    """No connection to the endpoint: refused, reset or not resolved (retried)."""


class RateLimitError(ProviderError, kind="rate_limit"):
    """HTTP 429 on the last attempt; ``Retry-After`` was honoured between attempts."""


class ServerError(ProviderError, kind="server_error"):
    """HTTP 5xx on the last attempt."""


class ClientRequestError(ProviderError, kind="client_error"):
    """HTTP 4xx other than 408/429: the request itself is wrong (not retried)."""


class ResponseParseError(ProviderError, kind="parse"):
    """A 2xx response whose body is not the API's JSON shape (not retried)."""
