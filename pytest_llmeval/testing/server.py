"""A real HTTP server on loopback that impersonates an LLM provider, for offline tests.

This module owns :class:`LoopbackLLMServer` and :class:`Faults`: a standard-library
(``http.server``) server that speaks the OpenAI chat-completions, responses and embeddings
protocols and the Anthropic messages protocol, each also streamed (``"stream": true``:
server-sent events, with the usage chunk), answers from a callable or a lookup table, sleeps a
configurable latency in per-connection threads (so concurrent clients are not
serialised), and injects reproducible faults (429 with ``Retry-After``, 500, slow
answers that trip client timeouts, dropped connections, scripted first-N failures).
It also owns the command line ``python -m pytest_llmeval.testing.server``.

Paths served (a query string such as ``?api-version=...`` is ignored):

* ``POST /v1/chat/completions``, ``/chat/completions``, ``/openai/v1/chat/completions``
  and Azure-style ``/openai/deployments/<name>/chat/completions`` -- OpenAI protocol;
* ``POST /v1/responses`` (``/responses``) -- OpenAI responses; ``POST /v1/embeddings``
  (``/embeddings``) -- OpenAI embeddings (8 deterministic floats per input, or their
  base64 float32 bytes with ``encoding_format: base64``, as the ``openai`` SDK asks);
* ``POST /v1/messages`` and ``/messages`` -- Anthropic protocol (the official
  ``anthropic`` SDK appends ``/v1/messages`` itself: give it :attr:`LoopbackLLMServer.url`);
* ``GET /v1/models`` (also ``/models``) lists the model; ``GET /health`` returns 200.

Token usage is a deterministic approximation: whitespace-separated words of the prompt
(every message's text, plus Anthropic ``system``, or the responses ``input`` and
``instructions``) and of the answer, each at least 1. A stream of chat completions
carries its usage chunk only when the request asks (``stream_options.include_usage``),
as OpenAI does. ``reshape(request, payload) -> payload`` lets a test change an answer
before it is sent (drop ``usage``, add cached tokens, a refusal...); a stream is built
from the reshaped payload.

Only the standard library is imported, and nothing heavy: the module is safe to import
from a pytest plugin.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Answer", "Faults", "LoopbackLLMServer", "main"]

#: An answer callable: receives the parsed JSON request body, returns the answer text.
Answer = Callable[[dict[str, Any]], str]

_OPENAI_PATH = re.compile(
    r"^(?:/v1|/openai/v1|/openai/deployments/(?P<deployment>[^/]+))?/chat/completions$"
)
_ANTHROPIC_PATH = re.compile(r"^(?:/v1)?/messages$")
_RESPONSES_PATH = re.compile(r"^(?:/v1|/openai/v1)?/responses$")
_EMBEDDINGS_PATH = re.compile(r"^(?:/v1|/openai/v1|/openai/deployments/(?P<deployment>[^/]+))?/embeddings$")
_MODELS_PATH = re.compile(r"^(?:/v1|/openai/v1)?/models$")
_HEALTH_PATHS = frozenset({"/health", "/healthz", "/v1/health"})

_SUPPORTED = (
    "POST /v1/chat/completions, POST /chat/completions, "
    "POST /openai/deployments/<name>/chat/completions, POST /v1/responses, POST /v1/embeddings, POST /v1/messages, "
    "GET /v1/models, GET /health"
)

# Error "type" per status: (OpenAI style, Anthropic style).
_ERROR_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("authentication_error", "authentication_error"),
    403: ("permission_error", "permission_error"),
    404: ("not_found_error", "not_found_error"),
    405: ("invalid_request_error", "invalid_request_error"),
    408: ("timeout_error", "timeout_error"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_error"),
    529: ("server_error", "overloaded_error"),
}

_MAX_BODY = 64 * 1024 * 1024


@dataclass
class Faults:
    """Faults to inject; each rate is a probability in [0, 1] drawn per API request.

    Draws come from ``random.Random(seed)`` under a lock, four per request whatever the
    rates, so the same seed gives the same fault sequence for the same request order.
    The generator is reseeded when a new ``Faults`` object is assigned to the server and
    on :meth:`LoopbackLLMServer.reset`. Precedence when several fire: ``fail_first``,
    drop, 429, 500, timeout.
    """

    rate_429: float = 0.0
    """Probability of HTTP 429 with a ``Retry-After`` header."""
    retry_after: float = 0.0
    """Seconds sent as ``Retry-After`` (``"0"``, ``"0.1"``, ``"2"``) on 429 answers."""
    rate_500: float = 0.0
    """Probability of HTTP 500 with an error JSON body."""
    rate_timeout: float = 0.0
    """Probability of sleeping ``timeout_delay`` before answering (so a client timeout fires)."""
    timeout_delay: float = 5.0
    rate_drop: float = 0.0
    """Probability of closing the connection without any response."""
    fail_first: int = 0
    """The first N requests (since these faults were set, or since reset) get ``fail_status``."""
    fail_status: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_500", "rate_timeout", "rate_drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be a probability in [0, 1], got {value!r}")
        for name in ("retry_after", "timeout_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"Faults.{name} must be >= 0 seconds, got {getattr(self, name)!r}")
        if self.fail_first < 0:
            raise ValueError(f"Faults.fail_first must be >= 0, got {self.fail_first!r}")
        if not 400 <= self.fail_status <= 599:
            raise ValueError(f"Faults.fail_status must be an HTTP error status, got {self.fail_status!r}")


def _format_seconds(value: float) -> str:
    """``0`` -> ``"0"``, ``0.1`` -> ``"0.1"``, ``2.0`` -> ``"2"``."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _text_of(content: Any) -> str:
    """Text of a message content: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                if part.get("type", "text") == "text":
                    texts.append(part["text"])
        return "\n".join(texts)
    return ""


def _words(text: str) -> int:
    return len(text.split())


def _messages(request: Mapping[str, Any]) -> list[Any]:
    """Chat/messages ``messages``, or a responses ``input`` (a string is one user message)."""
    if isinstance(request.get("messages"), list):
        return request["messages"]
    given = request.get("input")
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    return given if isinstance(given, list) else []


def _prompt_tokens(request: Mapping[str, Any]) -> int:
    words = _words(_text_of(request.get("system"))) + _words(_text_of(request.get("instructions")))
    for message in _messages(request):
        if isinstance(message, dict):
            words += _words(_text_of(message.get("content")))
    return max(1, words)


def _last_user_text(request: Mapping[str, Any]) -> str | None:
    for message in reversed(_messages(request)):
        if isinstance(message, dict) and message.get("role", "user") == "user":
            return _text_of(message.get("content"))
    return None


def _sse(events: Sequence[tuple[str | None, Any]]) -> bytes:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    return "".join(out).encode("utf-8")


def _pieces(text: str) -> list[str]:
    """The answer cut into word-sized deltas (at least one, so an empty answer streams too)."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


def _embedding(text: str, index: int) -> list[float]:
    seed = sum(ord(ch) for ch in text) + index
    return [round(((seed * (i + 7)) % 97) / 97.0, 6) for i in range(8)]


class _HTTPServer(ThreadingHTTPServer):
    """Threaded server: one daemon thread per connection, deep backlog, tracked sockets."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], owner: LoopbackLLMServer) -> None:
        self.owner = owner
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can
        # stall for seconds on a misconfigured resolver; loopback needs none of it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        self.owner._connected()
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every handler blocked on a (keep-alive) socket, so its thread ends."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)) or self.stopping.is_set():
            return  # the client went away or we are stopping: nothing worth a traceback
        super().handle_error(request, client_address)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    server_version = "LoopbackLLM/1.0"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    disable_nagle_algorithm = True  # TCP_NODELAY: no 40 ms delayed-ACK stalls
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Silence the default one-line-per-request stderr log."""

    # -- routing -------------------------------------------------------------------

    def _path(self) -> str:
        return urlsplit(self.path).path.rstrip("/") or "/"

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = self._path()
        owner = self.server.owner
        if path in _HEALTH_PATHS:
            self._send_json(200, {"status": "ok"})
        elif _MODELS_PATH.match(path):
            model = {"id": owner.model, "object": "model", "created": 0, "owned_by": "loopback"}
            self._send_json(200, {"object": "list", "data": [model]})
        elif _OPENAI_PATH.match(path) or _ANTHROPIC_PATH.match(path) or _RESPONSES_PATH.match(path) or _EMBEDDINGS_PATH.match(path):
            self._send_error(405, f"{path} takes POST, not GET", "method_not_allowed",
                             anthropic=bool(_ANTHROPIC_PATH.match(path)), extra={"Allow": "POST"})
        else:
            self._send_error(404, f"unknown path {path!r}; served: {_SUPPORTED}", "not_found")

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        path = self._path()
        chat, embeddings = _OPENAI_PATH.match(path), _EMBEDDINGS_PATH.match(path)
        api = ("chat" if chat else "messages" if _ANTHROPIC_PATH.match(path) else "responses" if _RESPONSES_PATH.match(path)
               else "embeddings" if embeddings else None)
        body = self._read_body()
        if body is None:
            return  # an error was sent and the connection is closing
        if api is None:
            self._send_error(404, f"unknown path {path!r}; served: {_SUPPORTED}", "not_found")
            return
        match = chat or embeddings
        deployment = match.group("deployment") if match else None
        owner = self.server.owner
        owner._begin()
        try:
            self._api(body, api=api, deployment=deployment)
        finally:
            owner._end()

    # -- the API endpoints ---------------------------------------------------------

    def _api(self, body: bytes, *, api: str, deployment: str | None) -> None:
        owner = self.server.owner
        anthropic = api == "messages"
        try:
            request = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            self._send_error(400, f"request body is not valid JSON: {error}", "invalid_json",
                             anthropic=anthropic)
            return
        if not isinstance(request, dict):
            self._send_error(400, "request body must be a JSON object", "invalid_request",
                             anthropic=anthropic)
            return
        owner._record(request, {name.lower(): value for name, value in self.headers.items()})
        if api in ("chat", "messages") and not isinstance(request.get("messages"), list):
            self._send_error(400, "'messages' is required and must be a list", "missing_messages",
                             anthropic=anthropic)
            return
        if api in ("responses", "embeddings") and not isinstance(request.get("input"), (str, list)):
            self._send_error(400, "'input' is required (a string or a list)", "missing_input")
            return

        fault, faults = owner._draw_fault()
        stopping = self.server.stopping
        if fault == "drop":
            self._drop()
            return
        if fault == "fail_first" and faults is not None:
            status = faults.fail_status
            self._send_error(status, f"injected fault: scripted failure (fail_first={faults.fail_first})",
                             "injected_fault", anthropic=anthropic,
                             extra=self._retry_headers(faults) if status == 429 else None)
            return
        if fault == "429" and faults is not None:
            self._send_error(429, "injected fault: rate limit exceeded (rate_429)", "rate_limit_exceeded",
                             anthropic=anthropic, extra=self._retry_headers(faults))
            return
        if fault == "500":
            self._send_error(500, "injected fault: internal server error (rate_500)", "injected_fault",
                             anthropic=anthropic)
            return
        if fault == "timeout" and faults is not None and stopping.wait(faults.timeout_delay):
            return  # stopped while stalling

        latency = float(owner.latency)
        if latency > 0 and stopping.wait(latency):
            return  # stopped while sleeping: the socket is already shut down
        model = request.get("model")
        if not isinstance(model, str) or not model:
            model = deployment or owner.model
        number = next(owner._ids)
        if api == "embeddings":
            self._embeddings(request, model)
            return
        try:
            answer = owner._answer_for(json.loads(body))  # a private copy for the callable
        except Exception as error:  # noqa: BLE001 - any user error becomes a provider error
            self._send_error(500, f"answer callable raised {type(error).__name__}: {error}",
                             "answer_error", anthropic=anthropic)
            return

        prompt, completion = _prompt_tokens(request), max(1, _words(answer))
        if api == "responses":
            payload: dict[str, Any] = {
                "id": f"resp_{number}",
                "object": "response",
                "created_at": int(time.time()),
                "status": "completed",
                "model": model,
                "output": [{
                    "type": "message", "id": f"msg_{number}", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": answer, "annotations": []}],
                }],
                "usage": {
                    "input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": prompt + completion,
                },
            }
        elif anthropic:
            payload: dict[str, Any] = {
                "id": f"msg_{number}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": answer}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": prompt, "output_tokens": completion},
            }
        else:
            payload = {
                "id": f"chatcmpl-{number}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop",
                }],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        reshape = owner.reshape
        if reshape is not None:
            try:
                payload = reshape(request, payload)
            except Exception as error:  # noqa: BLE001 - a test's hook failing is a server error
                self._send_error(500, f"reshape raised {type(error).__name__}: {error}", "answer_error", anthropic=anthropic)
                return
        if request.get("stream"):
            self._send_stream(api, request, payload)
        else:
            self._send_json(200, payload)

    def _embeddings(self, request: dict[str, Any], model: str) -> None:
        import base64
        import struct

        given = request["input"]
        texts = [given] if isinstance(given, str) else [str(t) for t in given]
        data = []
        for i, text in enumerate(texts):
            vector = _embedding(text, i)
            value: Any = vector
            if request.get("encoding_format") == "base64":
                value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = max(1, sum(_words(t) for t in texts))
        payload: dict[str, Any] = {"object": "list", "data": data, "model": model,
                                   "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        reshape = self.server.owner.reshape
        self._send_json(200, reshape(request, payload) if reshape is not None else payload)

    def _send_stream(self, api: str, request: Mapping[str, Any], payload: dict[str, Any]) -> None:
        """The (reshaped) answer as server-sent events, framed with a Content-Length."""
        usage = payload.get("usage")
        events: list[tuple[str | None, Any]] = []
        if api == "messages":
            text = "".join(p.get("text", "") for p in payload.get("content") or () if isinstance(p, dict))
            start_usage = {k: v for k, v in (usage or {}).items() if k != "output_tokens"}
            message = {**payload, "content": [], "stop_reason": None, "usage": {**start_usage, "output_tokens": 1}}
            events.append(("message_start", {"type": "message_start", "message": message}))
            events.append(("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
            for piece in _pieces(text):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}))
            events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
            delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": payload.get("stop_reason"), "stop_sequence": None}}
            if usage is not None:
                delta["usage"] = {"output_tokens": usage.get("output_tokens", 0)}
            events.append(("message_delta", delta))
            events.append(("message_stop", {"type": "message_stop"}))
        elif api == "responses":
            texts = [c.get("text", "") for item in payload.get("output") or () for c in item.get("content") or ()]
            sequence = itertools.count()
            events.append(("response.created", {"type": "response.created", "sequence_number": next(sequence),
                                                "response": {**payload, "status": "in_progress", "output": [], "usage": None}}))
            for piece in _pieces("".join(texts)):
                events.append(("response.output_text.delta", {"type": "response.output_text.delta", "item_id": payload["output"][0]["id"] if payload.get("output") else "msg",
                                                              "output_index": 0, "content_index": 0, "delta": piece, "sequence_number": next(sequence)}))
            events.append(("response.completed", {"type": "response.completed", "sequence_number": next(sequence), "response": payload}))
        else:
            choice = (payload.get("choices") or [{}])[0]
            message = choice.get("message") or {}
            base = {"id": payload.get("id"), "object": "chat.completion.chunk", "created": payload.get("created"), "model": payload.get("model")}
            events.append((None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}))
            if message.get("refusal") is not None and message.get("content") is None:
                events.append((None, {**base, "choices": [{"index": 0, "delta": {"refusal": message["refusal"]}, "finish_reason": None}]}))
            for piece in _pieces(message.get("content") or ""):
                events.append((None, {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}))
            events.append((None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason", "stop")}]}))
            options = request.get("stream_options")
            if usage is not None and isinstance(options, dict) and options.get("include_usage"):
                events.append((None, {**base, "choices": [], "usage": usage}))
            events.append((None, "[DONE]"))
        data = _sse(events)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Content-Length", str(len(data)))
            self._headers_buffer.append(b"\r\n" + data)
            self.flush_headers()
        except OSError:
            self.close_connection = True

    # -- wire helpers --------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None after answering a bad framing."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._send_error(400, f"invalid Content-Length {length_header!r}", "invalid_request")
            return None
        if length > _MAX_BODY:
            self.close_connection = True
            self._send_error(413, f"request body over {_MAX_BODY} bytes", "request_too_large")
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                self._send_error(400, "invalid chunked request body", "invalid_request")
                return None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY:
                self.close_connection = True
                self._send_error(413, f"request body over {_MAX_BODY} bytes", "request_too_large")
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(65537)  # the CRLF after the chunk

    @staticmethod
    def _retry_headers(faults: Faults) -> dict[str, str]:
        return {
            "Retry-After": _format_seconds(faults.retry_after),
            "retry-after-ms": str(int(round(faults.retry_after * 1000))),
        }

    def _drop(self) -> None:
        """Close the connection without sending a single byte of response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send_error(self, status: int, message: str, code: str | None, *, anthropic: bool = False,
                    extra: Mapping[str, str] | None = None) -> None:
        fallback = ("server_error", "api_error") if status >= 500 else ("invalid_request_error",) * 2
        openai_type, anthropic_type = _ERROR_TYPES.get(status, fallback)
        error: dict[str, Any] = {
            "message": message,
            "type": anthropic_type if anthropic else openai_type,
            "param": None,
            "code": code,
        }
        payload: dict[str, Any] = {"type": "error", "error": error} if anthropic else {"error": error}
        self._send_json(status, payload, extra)

    def _send_json(self, status: int, payload: Any, extra: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            # Headers and body in one write (end_headers would flush the headers alone).
            self._headers_buffer.append(b"\r\n" + data)
            self.flush_headers()
        except OSError:  # the client gave up (timed out) or we are stopping
            self.close_connection = True


class LoopbackLLMServer:
    """An OpenAI/Anthropic-compatible LLM server on loopback, for offline tests.

    ``answer`` (a callable given the parsed request body, returning the answer text)
    wins over ``table`` (last user message text -> answer), which falls back to
    ``default_answer``. ``answer``, ``table``, ``default_answer``, ``latency`` (seconds
    slept before each successful answer) and ``faults`` may be changed while the server
    runs. An answer callable that raises makes an HTTP 500 carrying its message.

    Use as a context manager, or call :meth:`start` and :meth:`stop`::

        with LoopbackLLMServer(table={"2+2?": "4"}, latency=0.05) as server:
            client = OpenAI(base_url=server.base_url, api_key="test")

    ``connections`` counts accepted TCP connections (every path). Counters (``requests``, ``in_flight``, ``max_in_flight``) and the ``received`` /
    ``received_headers`` lists cover the chat and messages endpoints only; a request is
    recorded when its body parses as a JSON object, so the two lists stay aligned.
    """

    def __init__(
        self,
        answer: Answer | None = None,
        *,
        table: Mapping[str, str] | None = None,
        default_answer: str = "OK",
        latency: float = 0.0,
        model: str = "loopback-model",
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        reshape: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency!r}")
        self.answer: Answer | None = answer
        self.table: Mapping[str, str] | None = table
        self.default_answer: str = default_answer
        self.latency: float = latency
        self.model: str = model
        self.faults: Faults | None = faults
        self.reshape = reshape
        self.host: str = host
        self._requested_port = port
        self.requests: int = 0
        self.connections: int = 0  # TCP connections accepted (keep-alive reuse shows as fewer than requests)
        self.in_flight: int = 0
        self.max_in_flight: int = 0
        self.received: list[dict[str, Any]] = []
        self.received_headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._fault_lock = threading.Lock()
        self._fault_owner: Faults | None = None
        self._fault_rng = random.Random(0)
        self._fault_count = 0
        self._ids = itertools.count(1)
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> LoopbackLLMServer:
        """Bind and serve in a daemon thread; returns self. A no-op if already running."""
        if self._server is not None:
            return self
        server_class = _HTTPServer6 if ":" in self.host else _HTTPServer
        server = server_class((self.host, self._requested_port), self)
        self._port = int(server.server_address[1])
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"loopback-llm-server:{self._port}", daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers and close open (keep-alive) connections."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.stopping.set()
        server.shutdown()  # returns once serve_forever has left its loop
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> LoopbackLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._port is None:
            raise RuntimeError("LoopbackLLMServer is not started: call start() or use it in a with block")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (the Anthropic SDK's base URL)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` (an OpenAI client's base URL)."""
        return f"{self.url}/v1"

    def reset(self) -> None:
        """Zero the counters, clear the received lists and restart the fault sequence.

        ``in_flight`` is a gauge of requests being handled now, so it is kept, and
        ``max_in_flight`` restarts from it.
        """
        with self._lock:
            self.requests = 0
            self.connections = 0
            self.max_in_flight = self.in_flight
            self.received.clear()
            self.received_headers.clear()
        with self._fault_lock:
            self._fault_owner = None

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"<LoopbackLLMServer {where} requests={self.requests} latency={self.latency}>"

    # -- used by the handler threads -------------------------------------------------

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1

    def _begin(self) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            if self.in_flight > self.max_in_flight:
                self.max_in_flight = self.in_flight

    def _end(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _record(self, request: dict[str, Any], headers: dict[str, str]) -> None:
        with self._lock:
            self.received.append(request)
            self.received_headers.append(headers)

    def _draw_fault(self) -> tuple[str | None, Faults | None]:
        """The fault for this request (None, "fail_first", "drop", "429", "500", "timeout")."""
        faults = self.faults
        if faults is None:
            return None, None
        with self._fault_lock:
            if faults is not self._fault_owner:  # new faults (or reset): restart the sequence
                self._fault_owner = faults
                self._fault_rng = random.Random(faults.seed)
                self._fault_count = 0
            self._fault_count += 1
            rng = self._fault_rng
            draws = (rng.random(), rng.random(), rng.random(), rng.random())
            count = self._fault_count
        if count <= faults.fail_first:
            return "fail_first", faults
        for kind, rate, draw in zip(
            ("drop", "429", "500", "timeout"),
            (faults.rate_drop, faults.rate_429, faults.rate_500, faults.rate_timeout),
            draws,
        ):
            if draw < rate:
                return kind, faults
        return None, faults

    def _answer_for(self, request: dict[str, Any]) -> str:
        answer = self.answer
        if answer is not None:
            text = answer(request)
            if not isinstance(text, str):
                raise TypeError(f"answer callable returned {type(text).__name__}, expected str")
            return text
        table = self.table
        if table:
            key = _last_user_text(request)
            if key is not None:
                if key in table:
                    return table[key]
                if key.strip() in table:
                    return table[key.strip()]
        return self.default_answer


# -- command line ------------------------------------------------------------------


def _load_table(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in data.items()
    ):
        raise ValueError(f"{path}: the table must be a JSON object of prompt text -> answer text")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; prints ``LOOPBACK_BASE_URL=<base url>`` once listening."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(
        prog="python -m pytest_llmeval.testing.server",
        description="An OpenAI/Anthropic-compatible LLM server on loopback, for offline evals.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (default 8000)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="sleep before each answer")
    parser.add_argument("--table", help="JSON object: last user message text -> answer text")
    parser.add_argument("--default-answer", default="OK")
    parser.add_argument("--model", default="loopback-model")
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=0.0, help="seconds, sent on 429s")
    parser.add_argument("--rate-500", type=float, default=0.0)
    parser.add_argument("--rate-timeout", type=float, default=0.0)
    parser.add_argument("--timeout-delay", type=float, default=5.0, help="seconds a timeout fault stalls")
    parser.add_argument("--rate-drop", type=float, default=0.0)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--fail-status", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        table = _load_table(args.table) if args.table else None
        faults = Faults(
            rate_429=args.rate_429, retry_after=args.retry_after, rate_500=args.rate_500,
            rate_timeout=args.rate_timeout, timeout_delay=args.timeout_delay,
            rate_drop=args.rate_drop, fail_first=args.fail_first, fail_status=args.fail_status,
            seed=args.seed,
        )
        server = LoopbackLLMServer(
            table=table, default_answer=args.default_answer, latency=args.latency_ms / 1000.0,
            model=args.model, faults=faults, host=args.host, port=args.port,
        )
        server.start()
    except (OSError, ValueError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")

    done = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    print(f"LOOPBACK_BASE_URL={server.base_url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
