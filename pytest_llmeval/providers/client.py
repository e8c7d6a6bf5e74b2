"""HTTP clients for chat models: OpenAI-compatible chat completions and Anthropic messages.

:class:`ChatClient` (sync) and :class:`AsyncChatClient` share one core that builds the
request, consults the record/replay cache, classifies failures, computes backoff and
records usage on the running case's ledger. Only the send-and-wait loop differs.

Retries: timeouts, dropped connections, HTTP 408/429/5xx are retried up to
``max_retries`` times with exponential backoff and full jitter; a ``Retry-After`` header
is honoured (a wait longer than ``backoff_max`` fails at once instead of hanging). Other
4xx and unparsable answers are not retried. After the last try the call raises a
:class:`~pytest_llmeval.errors.ProviderError` naming the provider, model, status and the
provider's message. API keys never appear in messages, cache entries or ledgers.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import httpx

from ..errors import (
    ClientRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimitError,
    ResponseParseError,
    ServerError,
)
from . import accounting, runtime
from .cache import ResponseCache, cache_key
from .config import ProviderConfig
from .pricing import PriceTable
from .ratelimit import shared_limiter

__all__ = ["AsyncChatClient", "ChatClient", "ChatResult", "Message"]

Message = Mapping[str, Any]
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
_ANTHROPIC_VERSION = "2023-06-01"
_POOL = httpx.Limits(max_connections=256, max_keepalive_connections=64)
# httpcore's async pool spends CPU per request scanning idle connections; fewer kept-alive
# connections keeps that cheap (measured: 2x faster at 32 concurrent requests on 2 cores).
_ASYNC_POOL = httpx.Limits(max_connections=256, max_keepalive_connections=20)
_SSL_CONTEXT: Any = None


def _ssl_context() -> Any:
    """One SSL context per process: building one loads the CA bundle (~50 ms)."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        import ssl

        _SSL_CONTEXT = ssl.create_default_context()
    return _SSL_CONTEXT


@dataclass(frozen=True)
class ChatResult:
    """One model answer with its usage."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost: float | None
    cached: bool
    retries: int
    raw: Mapping[str, Any]


@dataclass(frozen=True)
class _Call:
    url: str
    params: Mapping[str, str]
    body: dict[str, Any]
    request: dict[str, Any]  # everything that changes the answer: the cache key's input
    key: str
    model: str


class _Core:
    def __init__(self, config: ProviderConfig | None, cache: ResponseCache | None, prices: PriceTable | None, overrides: Mapping[str, Any]) -> None:
        # A bare ChatClient() follows the run: the suite's marker provider={...}, else the
        # run's defaults, looked up at call time. A config or overrides fix it at creation.
        self._fixed: ProviderConfig | None = None
        if config is not None or overrides:
            base = config or runtime.current_config()
            self._fixed = base.with_overrides(overrides) if overrides else base
        self._cache = cache
        self._prices = prices

    @property
    def config(self) -> ProviderConfig:
        config = self._fixed or runtime.current_config()
        overrides = runtime.variant_overrides()  # an A/B variant's model/provider: app calls only
        if overrides and accounting.current_kind() == "app":
            config = config.with_overrides(overrides)
        return config

    @property
    def _limiter(self) -> Any:
        return shared_limiter(self.config.base_url, self.config.rate_limit)

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout)

    @property
    def cache(self) -> ResponseCache | None:
        return self._cache if self._cache is not None else runtime.defaults().cache

    @property
    def prices(self) -> PriceTable:
        return self._prices or runtime.defaults().prices or PriceTable.default()

    # -- request ----------------------------------------------------------------------

    def _prepare(self, messages: Sequence[Message], model: str | None, params: Mapping[str, Any],
                 cache_key_extra: Mapping[str, Any] | None = None) -> _Call:
        config = self.config
        model = model or config.model
        if not model:
            raise ClientRequestError(f"{config.provider}: no model given (set llm_eval_model or pass model=)", provider=config.provider)
        body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages], **params}
        if config.provider == "anthropic":
            system = [_text_of(m["content"]) for m in body["messages"] if m.get("role") == "system"]
            body["messages"] = [m for m in body["messages"] if m.get("role") != "system"]
            if system:
                given = [_text_of(body["system"])] if "system" in body else []
                body["system"] = "\n\n".join(given + system)
            body.setdefault("max_tokens", 1024)
            url = f"{config.base_url}/messages"
        else:
            url = f"{config.base_url}/chat/completions"
        query = {"api-version": config.api_version} if config.api_version else {}
        request = {"provider": config.provider, "base_url": config.base_url, "query": query, "body": body, "repeat": runtime.current_repeat()}
        variant = runtime.current_variant()
        if variant is not None:
            request["variant"] = variant  # each A/B variant records its own answers
        if cache_key_extra:
            request["extra"] = dict(cache_key_extra)  # e.g. a judge's sample index: keyed, never sent
        return _Call(url, query, body, request, cache_key(request), model)

    def _headers(self) -> dict[str, str]:
        config, key = self.config, self.config.api_key()
        headers = {"content-type": "application/json"}
        if config.provider == "anthropic":
            headers["anthropic-version"] = _ANTHROPIC_VERSION
            if key:
                headers["x-api-key"] = key
        elif key:
            headers[config.auth_header] = f"Bearer {key}" if config.auth_header.lower() == "authorization" else key
        return headers

    # -- answers ----------------------------------------------------------------------

    def _replay(self, call: _Call) -> ChatResult | None:
        cache = self.cache
        if cache is None:
            return None
        stored = cache.lookup(call.key, describe=f"{self.config.provider} {call.model}")
        if stored is None:
            return None
        return self._result(call, stored, latency_ms=0.0, retry_kinds=(), cached=True)

    def _result(self, call: _Call, data: Any, *, latency_ms: float, retry_kinds: tuple[str, ...], cached: bool) -> ChatResult:
        try:
            if self.config.provider == "anthropic":
                text = "".join(part.get("text", "") for part in data["content"] if part.get("type") == "text")
                usage = data.get("usage") or {}
                tokens = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
            else:
                text = data["choices"][0]["message"].get("content") or ""
                usage = data.get("usage") or {}
                tokens = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise ResponseParseError(
                self._redact(f"{self._who(call)}: answer is not a {self.config.provider} response ({type(exc).__name__}: {exc}): {_preview(json.dumps(data, default=str))}"),
                status=200, provider=self.config.provider, model=call.model,
            ) from None
        model = str(data.get("model") or call.model)
        cost = 0.0 if cached else self.prices.cost(call.model, *tokens)
        accounting.record_call(accounting.CallRecord(
            kind=accounting.current_kind(), provider=self.config.provider, model=call.model,
            input_tokens=tokens[0], output_tokens=tokens[1], latency_ms=latency_ms, cost=cost, cached=cached,
            retries=len(retry_kinds), retry_kinds=retry_kinds,
        ))
        return ChatResult(text, model, tokens[0], tokens[1], latency_ms, cost, cached, len(retry_kinds), data)

    def _answer(self, call: _Call, response: httpx.Response, latency_ms: float, retry_kinds: list[str]) -> ChatResult:
        try:
            data = response.json()
        except ValueError:
            raise ResponseParseError(self._redact(f"{self._who(call)}: HTTP 200 with a body that is not JSON: {_preview(response.text)}"),
                                     status=200, provider=self.config.provider, model=call.model) from None
        result = self._result(call, data, latency_ms=latency_ms, retry_kinds=tuple(retry_kinds), cached=False)
        cache = self.cache
        if cache is not None:
            cache.store(call.key, call.request, data)
        return result

    # -- failures ---------------------------------------------------------------------

    def _who(self, call: _Call) -> str:
        return f"{self.config.provider} {call.model} at {self.config.base_url}"

    def _http_error(self, call: _Call, response: httpx.Response) -> ProviderError:
        status = response.status_code
        try:
            body = response.json()
            message = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else body.get("error") or body.get("message")
        except (ValueError, AttributeError):
            message = None
        text = f"{self._who(call)}: HTTP {status}: {self._redact(str(message or _preview(response.text) or response.reason_phrase))}"
        kind = RateLimitError if status == 429 else ServerError if status >= 500 else ClientRequestError
        error = kind(text, status=status, provider=self.config.provider, model=call.model)
        error.retryable = status in _RETRY_STATUSES  # type: ignore[attr-defined]
        error.retry_after = _retry_after(response.headers.get("retry-after"))  # type: ignore[attr-defined]
        return error

    def _transport_error(self, call: _Call, exc: httpx.TransportError) -> ProviderError:
        if isinstance(exc, httpx.TimeoutException):
            error: ProviderError = ProviderTimeout(f"{self._who(call)}: no answer within {self.config.timeout:g}s ({type(exc).__name__})",
                                                   provider=self.config.provider, model=call.model)
        else:
            error = ProviderConnectionError(f"{self._who(call)}: {type(exc).__name__}: {self._redact(str(exc))}",
                                            provider=self.config.provider, model=call.model)
        error.retryable = True  # type: ignore[attr-defined]
        error.retry_after = None  # type: ignore[attr-defined]
        return error

    def _delay(self, error: ProviderError, attempt: int) -> float | None:
        """Seconds to wait before the next try, or None when this error is final."""
        if not getattr(error, "retryable", False) or attempt >= self.config.max_retries:
            return None
        config = self.config
        delay = random.uniform(0, min(config.backoff_max, config.backoff_base * 2**attempt))
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            if retry_after > config.backoff_max:
                return None
            delay = max(delay, retry_after)
        return delay

    def _give_up(self, call: _Call, error: ProviderError, retry_kinds: list[str], latency_ms: float) -> ProviderError:
        accounting.record_call(accounting.CallRecord(
            kind=accounting.current_kind(), provider=self.config.provider, model=call.model, input_tokens=0, output_tokens=0,
            latency_ms=latency_ms, cost=0.0, cached=False, error=error.kind, retries=len(retry_kinds), retry_kinds=tuple(retry_kinds),
        ))
        if retry_kinds:
            error.args = (f"{error.args[0]} (after {len(retry_kinds) + 1} attempts)",)
        return error

    def _redact(self, text: str) -> str:
        key = self.config.api_key()
        return text.replace(key, "[REDACTED]") if key else text


class ChatClient(_Core):
    """Synchronous client. ``ChatClient(config)`` or ``ChatClient(model=..., base_url=...)``;
    without a config it uses the run's default (ini ``llm_eval_*`` keys)."""

    def __init__(self, config: ProviderConfig | None = None, *, transport: httpx.BaseTransport | None = None,
                 cache: ResponseCache | None = None, prices: PriceTable | None = None, **overrides: Any) -> None:
        super().__init__(config, cache, prices, overrides)
        self._http = httpx.Client(transport=transport, limits=_POOL, verify=_ssl_context())

    def chat(self, messages: Sequence[Message], *, model: str | None = None,
             cache_key_extra: Mapping[str, Any] | None = None, **params: Any) -> ChatResult:
        """One chat call. ``params`` go to the provider (temperature, max_tokens, ...);
        ``cache_key_extra`` only distinguishes otherwise identical calls in the cache."""
        call = self._prepare(messages, model, params, cache_key_extra)
        replayed = self._replay(call)
        if replayed is not None:
            return replayed
        retry_kinds: list[str] = []
        started = time.perf_counter()
        while True:
            limiter = self._limiter
            if limiter is not None:
                limiter.wait()
            try:
                response = self._http.post(call.url, params=call.params, headers=self._headers(), json=call.body, timeout=self._timeout())
            except httpx.TransportError as exc:
                error = self._transport_error(call, exc)
            else:
                if response.status_code == 200:
                    try:
                        return self._answer(call, response, (time.perf_counter() - started) * 1000, retry_kinds)
                    except ResponseParseError as exc:
                        raise self._give_up(call, exc, retry_kinds, (time.perf_counter() - started) * 1000) from None
                error = self._http_error(call, response)
            delay = self._delay(error, len(retry_kinds))
            if delay is None:
                raise self._give_up(call, error, retry_kinds, (time.perf_counter() - started) * 1000)
            time.sleep(delay)
            retry_kinds.append(error.kind)

    def complete(self, prompt: str, *, system: str | None = None, **params: Any) -> str:
        """Shorthand: one user message (and an optional system prompt) in, text out."""
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return self.chat(messages, **params).text

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncChatClient(_Core):
    """Asynchronous twin of :class:`ChatClient`, for async targets."""

    def __init__(self, config: ProviderConfig | None = None, *, transport: httpx.AsyncBaseTransport | None = None,
                 cache: ResponseCache | None = None, prices: PriceTable | None = None, **overrides: Any) -> None:
        super().__init__(config, cache, prices, overrides)
        self._http = httpx.AsyncClient(transport=transport, limits=_ASYNC_POOL, verify=_ssl_context())

    async def chat(self, messages: Sequence[Message], *, model: str | None = None,
                   cache_key_extra: Mapping[str, Any] | None = None, **params: Any) -> ChatResult:
        call = self._prepare(messages, model, params, cache_key_extra)
        replayed = self._replay(call)
        if replayed is not None:
            return replayed
        retry_kinds: list[str] = []
        started = time.perf_counter()
        while True:
            limiter = self._limiter
            if limiter is not None:
                await limiter.wait_async()
            try:
                response = await self._http.post(call.url, params=call.params, headers=self._headers(), json=call.body, timeout=self._timeout())
            except httpx.TransportError as exc:
                error = self._transport_error(call, exc)
            else:
                if response.status_code == 200:
                    try:
                        return self._answer(call, response, (time.perf_counter() - started) * 1000, retry_kinds)
                    except ResponseParseError as exc:
                        raise self._give_up(call, exc, retry_kinds, (time.perf_counter() - started) * 1000) from None
                error = self._http_error(call, response)
            delay = self._delay(error, len(retry_kinds))
            if delay is None:
                raise self._give_up(call, error, retry_kinds, (time.perf_counter() - started) * 1000)
            await asyncio.sleep(delay)
            retry_kinds.append(error.kind)

    async def complete(self, prompt: str, *, system: str | None = None, **params: Any) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return (await self.chat(messages, **params)).text

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _text_of(content: Any) -> str:
    """A message content as text: a string, or the text parts of a list of parts."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text")
    return str(content)


def _preview(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."
