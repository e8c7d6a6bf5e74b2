"""HTTP clients for chat models: OpenAI-compatible chat completions and Anthropic messages.

:class:`ChatClient` (sync) and :class:`AsyncChatClient` share one sans-IO core,
``_Core._steps``: a generator that builds each request, consults the record/replay cache
and the rate limiter, classifies failures, computes backoff and records usage on the
running case's ledger, yielding the I/O it needs (send this request, sleep N seconds,
store this cache entry) and being sent the outcome. Each client only performs those
actions, blocking or awaiting (the async one writes cache entries in a worker thread).

Retries: timeouts, dropped connections, HTTP 408/429/5xx are retried up to
``max_retries`` times with exponential backoff and full jitter; a ``Retry-After`` header
is honoured (a wait longer than ``backoff_max`` fails at once instead of hanging). Other
4xx and unparsable answers are not retried. After the last try the call raises a
:class:`~pytest_llmeval.errors.ProviderError` naming the provider, model, status and the
provider's message. API keys never appear in messages, cache entries or ledgers.

Answers: usage is read by :mod:`~pytest_llmeval.providers.usage` (one parser for our
clients and the SDK capture; an answer without usage is "usage unknown", not 0 tokens).
An OpenAI ``content: null`` with a ``refusal`` (or an Anthropic ``stop_reason: refusal``)
is handed on as the text with :attr:`ChatResult.refused` set; ``content: null`` with
neither a refusal nor tool calls is a :class:`~pytest_llmeval.errors.ResponseParseError`.
``stream=True`` is sent as a streamed request (with ``stream_options.include_usage`` for
OpenAI) and read to the end: the result is the whole answer, its usage from the stream.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generator, Mapping, Sequence

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
from . import accounting, otel, runtime
from .cache import ResponseCache, cache_key, key_url
from .capture import own_call
from .redaction import redact
from .usage import Usage, text_from_json, usage_from_json, usage_from_sse
from .config import ProviderConfig
from .pricing import PriceTable
from .ratelimit import shared_limiter

__all__ = ["AsyncChatClient", "ChatClient", "ChatResult", "Message"]

Message = Mapping[str, Any]
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
_ANTHROPIC_VERSION = "2023-06-01"
# A pool that keeps fewer idle connections than calls in flight closes and reopens
# connections all the time (measured before: 20 kept alive at 32 in flight opened ~960
# connections per 1,000 requests). 64 idle connections cover the default concurrency (16)
# and the benchmark's (32) with room; more would make httpcore's per-request scan of idle
# connections (O(pool size), on the event loop for the async client) costlier at very high
# concurrency. Above 64 calls in flight, connections are reopened again.
_POOL = httpx.Limits(max_connections=256, max_keepalive_connections=64)
# The async client spreads its calls over up to 8 pools (one httpx.AsyncClient each) with
# an eighth of those limits, so the whole stays within _POOL. httpcore's async pool does
# O(pool size) work per idle connection on every request and release (keep-alive checks
# that ask anyio for socket attributes; a count of all connections per idle one), all on
# the event loop: at 32 calls in flight in one pool that scan was most of the loop's CPU.
# A pool is added only when every pool has _SHARD_BUSY calls in flight, and a call goes to
# the least busy pool, so C calls in flight open about C connections, as one pool would.
_SHARDS = 8
_SHARD_BUSY = 8
_SHARD_POOL = httpx.Limits(max_connections=256 // _SHARDS, max_keepalive_connections=64 // _SHARDS)
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
    refused: bool = False  # the model refused: ``text`` is its refusal
    usage_known: bool = True  # False: the answer had no usage (tokens 0 are not a fact)
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class _Call:
    url: str
    params: Mapping[str, str]
    body: dict[str, Any]
    request: dict[str, Any]  # everything that changes the answer: the cache key's input
    key: str
    model: str
    stream: bool = False


@dataclass(frozen=True)
class _Send:
    request: httpx.Request  # answered with the httpx.Response, or the httpx.TransportError raised


@dataclass(frozen=True)
class _Sleep:
    seconds: float  # a rate-limit slot or a backoff; answered with None


_Action = _Send | _Sleep


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

    # -- the call, without I/O ---------------------------------------------------------

    def _steps(self, http: httpx.Client | httpx.AsyncClient, messages: Sequence[Message], model: str | None,
               params: Mapping[str, Any], cache_key_extra: Mapping[str, Any] | None) -> Generator[_Action, Any, ChatResult]:
        """One chat call as a sans-IO generator: it yields what to do (:class:`_Send`,
        :class:`_Sleep`), is sent the outcome, and returns the
        :class:`ChatResult` or raises the final :class:`~pytest_llmeval.errors.ProviderError`.
        Replay, rate limit, retries and ``Retry-After``, typed errors, accounting and cache
        writes (handed to the cache's writer thread) live here; a client's ``chat`` only
        performs the actions, blocking or awaiting.
        ``http`` only builds requests (``build_request`` is synchronous in both clients)."""
        call = self._prepare(messages, model, params, cache_key_extra)
        replayed = self._replay(call)
        if replayed is not None:
            return replayed
        retry_kinds: list[str] = []
        started = time.perf_counter()
        while True:
            limiter = self._limiter
            if limiter is not None:
                wait = limiter.reserve()
                if wait > 0:
                    yield _Sleep(wait)
            outcome = yield _Send(http.build_request("POST", call.url, params=call.params, headers=self._headers(),
                                                     json=call.body, timeout=self._timeout()))
            if isinstance(outcome, httpx.TransportError):
                error = self._transport_error(call, outcome)
            elif outcome.status_code == 200:
                try:
                    result, entry = self._answer(call, outcome, (time.perf_counter() - started) * 1000, retry_kinds)
                except ResponseParseError as exc:
                    raise self._give_up(call, exc, retry_kinds, (time.perf_counter() - started) * 1000) from None
                if entry is not None:
                    self.cache.store(call.key, call.request, entry)  # type: ignore[union-attr]
                return result
            else:
                error = self._http_error(call, outcome)
            delay = self._delay(error, len(retry_kinds))
            if delay is None:
                raise self._give_up(call, error, retry_kinds, (time.perf_counter() - started) * 1000)
            yield _Sleep(delay)
            retry_kinds.append(error.kind)

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
            if body.get("stream"):
                body.setdefault("stream_options", {"include_usage": True})
        query = {"api-version": config.api_version} if config.api_version else {}
        request = {"provider": config.provider, "base_url": key_url(config.base_url), "query": query, "body": body, "repeat": runtime.current_repeat()}
        variant = runtime.current_variant()
        if variant is not None:
            request["variant"] = variant  # each A/B variant records its own answers
        if cache_key_extra:
            request["extra"] = dict(cache_key_extra)  # e.g. a judge's sample index: keyed, never sent
        return _Call(url, query, body, request, cache_key(request), model, bool(body.get("stream")))

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

    def _read(self, call: _Call, data: Any) -> tuple[str, bool, Usage | None, str | None]:
        """(text, refused, usage or None, model or None) of a JSON answer or of a stored
        stream (``{"http": {"content_type": "text/event-stream", "text": ...}}``)."""
        api = "messages" if self.config.provider == "anthropic" else "chat"
        http = data.get("http") if isinstance(data, Mapping) else None
        if isinstance(http, Mapping) and "text" in http:
            usage, model, text = usage_from_sse(api, str(http["text"]))
            return text, False, usage, model
        try:
            if api == "messages":
                if not isinstance(data["content"], list):
                    raise TypeError("'content' is not a list")
                text = text_from_json(api, data) or ""
                refused = data.get("stop_reason") == "refusal"
            else:
                message = data["choices"][0]["message"]
                content, refusal = message.get("content"), message.get("refusal")
                refused = content is None and isinstance(refusal, str) and bool(refusal)
                if content is None and not refused and not message.get("tool_calls") and not message.get("function_call"):
                    raise ValueError("message content is null, with no refusal and no tool calls")
                text = refusal if refused else (content if isinstance(content, str) else "")
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise ResponseParseError(
                self._redact(f"{self._who(call)}: answer is not a {self.config.provider} response ({type(exc).__name__}: {exc}): {_preview(json.dumps(data, default=str))}"),
                status=200, provider=self.config.provider, model=call.model,
            ) from None
        usage, model = usage_from_json(api, data)
        return text, refused, usage, model

    def _result(self, call: _Call, data: Any, *, latency_ms: float, retry_kinds: tuple[str, ...], cached: bool) -> ChatResult:
        text, refused, usage, model = self._read(call, data)
        known = usage is not None
        usage = usage or Usage(0, 0)
        if cached:
            cost: float | None = 0.0
        else:
            cost = None if not known else self.prices.cost(
                call.model, usage.input_tokens, usage.output_tokens, cached_input_tokens=usage.cached_input_tokens,
                cache_write_tokens=usage.cache_write_tokens, provider=self.config.provider)
        accounting.record_call(accounting.CallRecord(
            kind=accounting.current_kind(), provider=self.config.provider, model=call.model,
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, latency_ms=latency_ms, cost=cost, cached=cached,
            retries=len(retry_kinds), retry_kinds=retry_kinds, cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens, reasoning_tokens=usage.reasoning_tokens, usage_known=known,
        ))
        if otel.enabled():
            otel.note_captured_call()  # a GenAI span around this call must not count it again
        return ChatResult(text, model or call.model, usage.input_tokens, usage.output_tokens, latency_ms, cost, cached,
                          len(retry_kinds), data, refused, known, usage.cached_input_tokens, usage.cache_write_tokens,
                          usage.reasoning_tokens)

    def _decode(self, call: _Call, response: httpx.Response) -> Any:
        """The answer to store and read: its JSON, or for a stream its SSE text."""
        if call.stream and "text/event-stream" in response.headers.get("content-type", ""):
            return {"http": {"content_type": "text/event-stream", "text": response.text}}
        try:
            return response.json()
        except ValueError:
            raise ResponseParseError(self._redact(f"{self._who(call)}: HTTP 200 with a body that is not JSON: {_preview(response.text)}"),
                                     status=200, provider=self.config.provider, model=call.model) from None

    def _answer(self, call: _Call, response: httpx.Response, latency_ms: float, retry_kinds: list[str]) -> tuple[ChatResult, Any]:
        """The result, and the entry to store in the cache (None: nothing to store)."""
        data = self._decode(call, response)
        result = self._result(call, data, latency_ms=latency_ms, retry_kinds=tuple(retry_kinds), cached=False)
        cache = self.cache
        return result, (data if cache is not None and cache.writes_enabled else None)

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
        if otel.enabled():
            otel.note_captured_call()
        if retry_kinds:
            error.args = (f"{error.args[0]} (after {len(retry_kinds) + 1} attempts)",)
        return error

    def _redact(self, text: str) -> str:
        return redact(text)


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
        ``cache_key_extra`` only distinguishes otherwise identical calls in the cache.
        Raises :class:`~pytest_llmeval.errors.ProviderError` (a subclass per kind) after
        the last try, :class:`~pytest_llmeval.errors.CacheMissError` in strict replay."""
        steps = self._steps(self._http, messages, model, params, cache_key_extra)
        try:
            action = next(steps)
            while True:
                action = steps.send(self._perform(action))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _perform(self, action: _Action) -> httpx.Response | httpx.TransportError | None:
        if isinstance(action, _Sleep):
            time.sleep(action.seconds)
        else:
            try:
                with own_call():
                    return self._http.send(action.request)
            except httpx.TransportError as exc:
                return exc
        return None

    def complete(self, prompt: str, *, system: str | None = None, **params: Any) -> str:
        """Shorthand: one user message (and an optional system prompt) in, text out."""
        return self.chat(_prompt_messages(prompt, system), **params).text

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
        self._pools = _AsyncPools(transport)

    async def chat(self, messages: Sequence[Message], *, model: str | None = None,
                   cache_key_extra: Mapping[str, Any] | None = None, **params: Any) -> ChatResult:
        """As :meth:`ChatClient.chat`; cache entries are written by the cache's writer
        thread, never on the event loop."""
        steps = self._steps(self._pools.builder, messages, model, params, cache_key_extra)
        try:
            action = next(steps)
            while True:
                action = steps.send(await self._perform(action))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _perform(self, action: _Action) -> httpx.Response | httpx.TransportError | None:
        if isinstance(action, _Sleep):
            await asyncio.sleep(action.seconds)
        else:
            try:
                with own_call():
                    return await self._pools.send(action.request)
            except httpx.TransportError as exc:
                return exc
        return None

    async def complete(self, prompt: str, *, system: str | None = None, **params: Any) -> str:
        return (await self.chat(_prompt_messages(prompt, system), **params)).text

    async def aclose(self) -> None:
        await self._pools.aclose()

    async def __aenter__(self) -> AsyncChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _AsyncPools:
    """The async client's connection pools: one ``httpx.AsyncClient`` (its own pool) per
    shard, added when every shard has ``_SHARD_BUSY`` calls in flight, up to ``_SHARDS``.
    A request goes to the shard with the fewest calls in flight. Used from one event loop
    (no lock: nothing awaits between choosing a shard and counting the call). A given
    ``transport`` is used as the one and only shard."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None) -> None:
        self._transport = transport
        self._clients: list[httpx.AsyncClient] = []
        self._busy: list[int] = []
        self._add()

    @property
    def builder(self) -> httpx.AsyncClient:
        """A client to build requests with (any shard builds the same request)."""
        return self._clients[0]

    def _add(self) -> int:
        limits = _POOL if self._transport is not None else _SHARD_POOL
        self._clients.append(httpx.AsyncClient(transport=self._transport, limits=limits, verify=_ssl_context()))
        self._busy.append(0)
        return len(self._clients) - 1

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send on the least busy shard; raises what ``httpx.AsyncClient.send`` raises."""
        shard = min(range(len(self._busy)), key=self._busy.__getitem__)
        if self._busy[shard] >= _SHARD_BUSY and self._transport is None and len(self._clients) < _SHARDS:
            shard = self._add()
        self._busy[shard] += 1
        try:
            return await self._clients[shard].send(request)
        finally:
            self._busy[shard] -= 1

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


def _prompt_messages(prompt: str, system: str | None) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


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
