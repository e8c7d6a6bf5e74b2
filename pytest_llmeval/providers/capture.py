"""Capture: every HTTP call an app makes to an LLM endpoint, counted against its case.

This module owns the one seam through which calls made by *other* clients -- the
``openai`` and ``anthropic`` SDKs (sync and async), litellm, LangChain's ``ChatOpenAI`` /
``ChatAnthropic`` -- reach the run's accounting and record/replay cache:

* :func:`enable` / :func:`disable` -- wrap ``Client.send`` and ``AsyncClient.send`` of
  ``httpx`` and ``httpx2`` (whichever an installed SDK uses; one not imported yet is
  wrapped when it is first imported), and undo it;
* :func:`own_call` -- marks the plugin's own clients' requests, which they account
  themselves, so they are not counted twice.

What is captured: a POST whose path ends in ``/chat/completions``, ``/responses``,
``/embeddings`` or ``/messages`` (see :func:`~pytest_llmeval.providers.usage.api_of`),
with a JSON body. Everything else passes through untouched. For each captured call:

* with a cache that reads and holds the request, the recorded answer is returned
  without any network call (``cached=True``, cost 0); in strict mode a request with no
  recording is answered ``400`` with ``x-should-retry: false`` (so the SDK raises at once,
  without retries) and the miss is kept on the case's ledger, which fails the case with
  a :class:`~pytest_llmeval.errors.CacheMissError` naming the case and the request;
* otherwise the request goes out; when its answer is complete (for a stream: when the
  app has read it to the end or closed it), one
  :class:`~pytest_llmeval.providers.accounting.CallRecord` goes to the running case's
  ledger with model, tokens (usage unknown when the answer has none), latency, status
  and retries, and a 200 answer is stored in a writing cache.

A/B variants: a request made for a case that runs under a variant is first rewritten
with the variant's ``model`` / ``base_url`` / ``api_key_env`` / ``api_version`` (see
:mod:`~pytest_llmeval.providers.capture_variant`); its cache key holds the variant, so
each variant records and replays its own answers.

Retries: SDKs retry by sending the same request again (the official SDKs say so in an
``x-stainless-retry-count`` header). A request identical to one whose last attempt
failed, in the same case, is a retry: its record replaces the failed one, with
``retries`` and ``retry_kinds`` grown, so a case's ledger holds one record per logical
call whatever the SDK's retry policy.

Limits: calls from threads started without a copied context, from subprocesses, or
through an HTTP stack other than httpx/httpx2 (``requests``, aiohttp used directly) are
not seen; a stream the app never reads to the end nor closes is never recorded.
Nothing here imports httpx until :func:`enable` finds it imported or being imported.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib
import importlib.abc
import importlib.util
import json
import sys
import threading
import time
import weakref
from typing import Any, Callable, ContextManager, Iterator

from ..errors import CacheMissError
from . import accounting, capture_variant, otel, runtime
from .usage import Usage, api_of, usage_from_json, usage_from_sse

__all__ = ["HTTP_MODULES", "disable", "enable", "enabled", "own_call"]

HTTP_MODULES = ("httpx", "httpx2")
_OWN: contextvars.ContextVar[bool] = contextvars.ContextVar("pytest_llmeval_own_call", default=False)
_LOCK = threading.RLock()
_ORIGINALS: dict[str, tuple[Any, Any, Any]] = {}  # module name -> (module, Client.send, AsyncClient.send)
_ENABLED = False
_FINDER: _PatchOnImport | None = None
_MAX_RECORDED_BODY = 32 * 1024 * 1024
# Failed attempts still open to a retry, per case ledger: request fingerprint -> (record, first start).
_OPEN: weakref.WeakKeyDictionary[accounting.Ledger, dict[str, tuple[accounting.CallRecord, float]]] = weakref.WeakKeyDictionary()


def own_call() -> ContextManager[bool]:
    """Requests sent inside the block are the plugin's own clients': not captured."""
    return runtime.bind(_OWN, True)


def enabled() -> bool:
    return _ENABLED


def enable() -> None:
    """Wrap the send methods of httpx and httpx2 (now if imported, else on import). Idempotent."""
    global _ENABLED, _FINDER
    with _LOCK:
        _ENABLED = True
        for name in HTTP_MODULES:
            if name in sys.modules:
                _patch(sys.modules[name])
        if _FINDER is None and any(name not in sys.modules for name in HTTP_MODULES):
            _FINDER = _PatchOnImport()
            sys.meta_path.insert(0, _FINDER)


def disable() -> None:
    """Restore the original send methods and stop watching imports."""
    global _ENABLED, _FINDER
    with _LOCK:
        _ENABLED = False
        if _FINDER is not None:
            try:
                sys.meta_path.remove(_FINDER)
            except ValueError:
                pass
            _FINDER = None
        for name, (module, send, asend) in list(_ORIGINALS.items()):
            module.Client.send = send
            module.AsyncClient.send = asend
            del _ORIGINALS[name]


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Wraps httpx / httpx2 right after they are first imported (so enabling costs no import)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in HTTP_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            with _LOCK:
                if _ENABLED:
                    _patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


# --------------------------------------------------------------------------- patching


def _patch(module: Any) -> None:
    name = module.__name__
    if not hasattr(module, "Client") or not hasattr(module, "AsyncClient"):
        return
    known = _ORIGINALS.get(name)
    if known is not None and known[0] is module:
        return
    send, asend = module.Client.send, module.AsyncClient.send
    _ORIGINALS[name] = (module, send, asend)  # a module imported afresh (tests restore sys.modules) is wrapped anew
    tee_sync, tee_async = _tee_classes(module)

    def captured_send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        call = _Call.of(request, module)
        if call is None:
            return send(self, request, *args, **kwargs)
        answer = call.replay()
        if answer is not None:
            return answer
        try:
            response = send(self, call.request, *args, **kwargs)
        except Exception as exc:
            call.failed(_transport_kind(exc))
            raise
        if kwargs.get("stream"):
            response.stream = tee_sync(response.stream, call, response)
        else:
            call.answered(response, response.content)
        return response

    async def captured_asend(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        call = _Call.of(request, module)
        if call is None:
            return await asend(self, request, *args, **kwargs)
        answer = call.replay()
        if answer is not None:
            return answer
        try:
            response = await asend(self, call.request, *args, **kwargs)
        except Exception as exc:
            call.failed(_transport_kind(exc))
            raise
        if kwargs.get("stream"):
            response.stream = tee_async(response.stream, call, response)
        else:  # a recording is written by the cache's writer thread, not on the event loop
            call.answered(response, response.content)
        return response

    captured_send.__wrapped__ = send  # type: ignore[attr-defined]
    captured_asend.__wrapped__ = asend  # type: ignore[attr-defined]
    module.Client.send = captured_send
    module.AsyncClient.send = captured_asend


class _Tee:
    """What the sync and async tees share: the chunks seen so far, reported once at the end."""

    def __init__(self, inner: Any, call: _Call, response: Any) -> None:
        self._inner, self._call, self._response, self._chunks, self._done = inner, call, response, [], False

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._call.answered(self._response, b"".join(self._chunks), raw=True)


def _tee_classes(module: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Byte streams that pass an answer through to the app and report it once it ended."""

    class TeeSync(_Tee, module.SyncByteStream):  # type: ignore[name-defined,misc]
        def __iter__(self) -> Iterator[bytes]:
            for chunk in self._inner:
                self._chunks.append(chunk)
                yield chunk
            self._finish()

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._finish()

    class TeeAsync(_Tee, module.AsyncByteStream):  # type: ignore[name-defined,misc]
        async def __aiter__(self) -> Any:
            async for chunk in self._inner:
                self._chunks.append(chunk)
                yield chunk
            self._finish()

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._finish()

    return TeeSync, TeeAsync


def _transport_kind(exc: BaseException) -> str:
    name = type(exc).__name__
    return "timeout" if "Timeout" in name else "connect"


def _status_kind(status: int) -> str:
    if status == 429:
        return "rate_limit"
    return "server_error" if status >= 500 else "client_error"


# --------------------------------------------------------------------------- one call


class _Call:
    """One captured attempt: what was asked, for which case, and since when."""

    def __init__(self, request: Any, module: Any, api: str, body: Any) -> None:
        from .cache import cache_request, cache_key

        self.module = module
        self.request = request
        self.api = api
        self.provider = "anthropic" if api == "messages" else "openai"
        self.body = body
        self.model = str(body.get("model") or "") if isinstance(body, dict) else ""
        self.stream = isinstance(body, dict) and bool(body.get("stream"))
        self.ledger = accounting.current_ledger()
        self.kind = accounting.current_kind()
        self.key_request = cache_request(str(request.url), self.provider, body, runtime.current_repeat(), api=api)
        variant = runtime.current_variant()
        if variant is not None:
            self.key_request["variant"] = variant  # each A/B variant records and replays its own answers
        self.key = cache_key(self.key_request)
        self.fingerprint = hashlib.sha256(f"{request.method} {request.url}".encode() + request.content).hexdigest()
        self.started = time.perf_counter()
        self.retry_header = _int(request.headers.get("x-stainless-retry-count"))

    @classmethod
    def of(cls, request: Any, module: Any) -> _Call | None:
        if not _ENABLED or _OWN.get() or request.method != "POST":
            return None
        api = api_of(request.url.path)
        if api is None:
            return None
        try:
            content = request.content  # httpx builds JSON bodies eagerly; a streamed upload is not ours
        except Exception:  # noqa: BLE001 - RequestNotRead and the like
            return None
        try:
            body = json.loads(content)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict):
            return None
        request, body, _ = capture_variant.apply(request, module, api, body)  # an A/B variant's model/endpoint
        return cls(request, module, api, body)

    def describe(self) -> str:
        stream = ", stream" if self.stream else ""
        return f"{self.provider} POST {self.request.url.path} model {self.model or '?'}{stream}"

    # -- replay ----------------------------------------------------------------------

    def replay(self) -> Any:
        """A response from the cache, a strict-miss response, or None (go to the network)."""
        cache = runtime.defaults().cache
        if cache is None or not cache.reads:
            return None
        try:
            stored = cache.lookup(self.key, describe=self.describe())
        except CacheMissError as exc:
            label = self.ledger.label if self.ledger is not None else ""
            message = f"{label}: {exc}" if label else str(exc)
            if self.ledger is not None:
                self.ledger.miss(message)
            self._record(None, status=None, error="cache_miss", cached=False)
            error = {"type": "error", "error": {"type": "cache_miss", "message": message}} if self.provider == "anthropic" \
                else {"error": {"type": "cache_miss", "message": message, "code": "cache_miss", "param": None}}
            return self.module.Response(400, headers={"content-type": "application/json", "x-should-retry": "false"},
                                        content=json.dumps(error).encode(), request=self.request)
        if stored is None:
            return None
        http = stored.get("http") if isinstance(stored.get("http"), dict) else None
        if http is None:  # an entry written by the plugin's own client: the JSON body itself
            http = {"content_type": "application/json", "json": stored}
        if "text" in http:
            content = str(http["text"]).encode("utf-8")
        else:
            content = json.dumps(http.get("json")).encode("utf-8")
        content_type = str(http.get("content_type") or "application/json")
        usage, model = self._usage(content, content_type)
        self._record(usage, status=200, error=None, cached=True, model=model)
        return self.module.Response(200, headers={"content-type": content_type}, content=content, request=self.request)

    # -- answers ---------------------------------------------------------------------

    def failed(self, kind: str) -> None:
        self._record(None, status=None, error=kind, cached=False)

    def answered(self, response: Any, content: bytes, *, raw: bool = False) -> None:
        status = int(response.status_code)
        if status != 200:
            self._record(None, status=status, error=_status_kind(status), cached=False)
            return
        if raw and response.headers.get("content-encoding") not in (None, "", "identity"):
            content = _decode(response, content)
        content_type = response.headers.get("content-type", "")
        usage, model = self._usage(content, content_type)
        self._record(usage, status=200, error=None, cached=False, model=model)
        self._store(content, content_type)

    def _usage(self, content: bytes, content_type: str) -> tuple[Usage | None, str | None]:
        text = content.decode("utf-8", "replace")
        if "text/event-stream" in content_type:
            usage, model, _ = usage_from_sse(self.api, text)
            return usage, model
        try:
            return usage_from_json(self.api, json.loads(text))
        except ValueError:
            return None, None

    def _store(self, content: bytes, content_type: str) -> None:
        cache = runtime.defaults().cache
        if cache is None or not cache.writes_enabled or len(content) > _MAX_RECORDED_BODY:
            return
        text = content.decode("utf-8", "replace")
        if "text/event-stream" in content_type:
            http: dict[str, Any] = {"content_type": content_type, "text": text}
        else:
            try:
                http = {"content_type": content_type or "application/json", "json": json.loads(text)}
            except ValueError:
                return
        cache.store(self.key, self.key_request, {"http": http})

    def _record(self, usage: Usage | None, *, status: int | None, error: str | None, cached: bool, model: str | None = None) -> None:
        ledger = self.ledger
        if ledger is None:
            return
        if otel.enabled():
            otel.note_captured_call()  # a GenAI span around this call must not count it again
        latency_ms = 0.0 if cached else (time.perf_counter() - self.started) * 1000
        retries, retry_kinds, previous, first_started = 0, (), None, self.started
        retry_kinds: tuple[str, ...]
        with _LOCK:
            open_calls = _OPEN.setdefault(ledger, {})
            earlier = open_calls.pop(self.fingerprint, None)
            if earlier is not None and not cached and (self.retry_header is None or self.retry_header > 0):
                previous, first_started = earlier
                retry_kinds = (*previous.retry_kinds, previous.error or "unknown")
                retries = previous.retries + 1
                latency_ms = (time.perf_counter() - first_started) * 1000
            record = self._make(usage, error=error, cached=cached, latency_ms=latency_ms, retries=retries,
                                retry_kinds=retry_kinds, model=model)
            if error is not None and error != "cache_miss":
                open_calls[self.fingerprint] = (record, first_started if previous is not None else self.started)
        if previous is not None:
            ledger.replace(previous, record)
        else:
            ledger.add(record)

    def _make(self, usage: Usage | None, *, error: str | None, cached: bool, latency_ms: float, retries: int,
              retry_kinds: tuple[str, ...], model: str | None) -> accounting.CallRecord:
        name = self.model or model or "unknown"
        known = usage is not None or error is not None
        usage = usage or Usage(0, 0)
        cost: float | None = 0.0
        if error is None and not cached:
            cost = None if not known else _prices().cost(
                name, usage.input_tokens, usage.output_tokens, cached_input_tokens=usage.cached_input_tokens,
                cache_write_tokens=usage.cache_write_tokens, provider=self.provider)
        return accounting.CallRecord(
            kind=self.kind, provider=self.provider, model=name, input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens, latency_ms=latency_ms, cost=cost, cached=cached, error=error,
            retries=retries, retry_kinds=retry_kinds, cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens, reasoning_tokens=usage.reasoning_tokens,
            usage_known=known, source="capture",
        )


def _prices() -> Any:
    from .pricing import PriceTable

    return runtime.defaults().prices or PriceTable.default()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _decode(response: Any, content: bytes) -> bytes:
    """A raw (still compressed) streamed body, decoded as the response would."""
    try:
        decoder = response._get_content_decoder()
        return decoder.decode(content) + decoder.flush()
    except Exception:  # noqa: BLE001 - an unknown encoding: keep the bytes (usage then reads as unknown)
        return content
