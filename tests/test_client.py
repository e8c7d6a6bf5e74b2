"""ChatClient and AsyncChatClient against the real loopback LLM server, over HTTP.

Nothing of our own is mocked: every call goes through httpx to
:class:`~pytest_llmeval.testing.LoopbackLLMServer` (the ``llm_server`` fixture), which
injects latency and faults. Back-off is kept tiny so the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import contextvars
import http.server
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from pytest_llmeval.errors import (
    CacheMissError,
    ClientRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
    RateLimitError,
    ResponseParseError,
    ServerError,
)
from pytest_llmeval.providers import accounting, runtime
from pytest_llmeval.providers.cache import ResponseCache
from pytest_llmeval.providers.client import AsyncChatClient, ChatClient, ChatResult
from pytest_llmeval.providers.config import ProviderConfig
from pytest_llmeval.providers.pricing import Price, PriceTable
from pytest_llmeval.testing import Faults

KEY_ENV = "LLMEVAL_CLIENT_TEST_KEY"
KEY = "sk-planted-SECRET-7f3a9c0d1e2b4a68"
USER = [{"role": "user", "content": "what is two plus two"}]  # 5 words
# List prices (USD per million tokens) as genai-prices has them: input / output.
GPT_MINI = Price(0.15, 0.60)
HAIKU = Price(0.80, 4.00)


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("no-ca")


@pytest.fixture(autouse=True)
def no_ca_bundle(monkeypatch, empty_dir):
    """Every loopback call is plain HTTP, yet each new httpx client loads the whole CA
    bundle (about 50 ms, most of this file's CPU time). httpx honours SSL_CERT_DIR, which
    OpenSSL reads lazily, so point it at an empty folder while these tests run."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(empty_dir))


@pytest.fixture
def server(llm_server):
    llm_server.default_answer = "four it is"  # 3 words
    return llm_server


def config(server, provider: str = "openai", **changes) -> ProviderConfig:
    settings = dict(
        provider=provider, model="gpt-4o-mini" if provider == "openai" else "claude-3-5-haiku-latest",
        base_url=server.base_url, api_key_env=KEY_ENV, timeout=5.0, max_retries=2,
        backoff_base=0.01, backoff_max=1.0,
    )
    settings.update(changes)
    return ProviderConfig(**settings)


class SyncCaller:
    """One ChatClient, called directly."""

    def __init__(self, cfg: ProviderConfig | None, **kwargs) -> None:
        self.client = ChatClient(cfg, **kwargs)

    def chat(self, messages, **params) -> ChatResult:
        return self.client.chat(messages, **params)

    def complete(self, prompt, **params) -> str:
        return self.client.complete(prompt, **params)

    def close(self) -> None:
        self.client.close()


class AsyncCaller:
    """One AsyncChatClient on one event loop (an ``asyncio.Runner``, what ``asyncio.run``
    uses), each call run in a copy of the caller's context, so the current ledger, repeat
    and call kind reach the coroutine as they would reach a task."""

    def __init__(self, cfg: ProviderConfig | None, **kwargs) -> None:
        self.runner = asyncio.Runner()
        self.client = self.runner.run(self._build(cfg, kwargs))

    @staticmethod
    async def _build(cfg, kwargs) -> AsyncChatClient:
        return AsyncChatClient(cfg, **kwargs)

    def _run(self, coro):
        return self.runner.run(coro, context=contextvars.copy_context())

    def chat(self, messages, **params) -> ChatResult:
        return self._run(self.client.chat(messages, **params))

    def complete(self, prompt, **params) -> str:
        return self._run(self.client.complete(prompt, **params))

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.close()


@pytest.fixture(params=["sync", "async"])
def make(request):
    """Factory of a sync or async caller (the test runs once with each)."""
    made = []

    def factory(cfg: ProviderConfig | None = None, **kwargs):
        caller = (SyncCaller if request.param == "sync" else AsyncCaller)(cfg, **kwargs)
        made.append(caller)
        return caller

    yield factory
    for caller in made:
        caller.close()


class RecordingTransport(httpx.HTTPTransport):
    """The real HTTP transport, noting each request's URL (to see the query string sent)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[httpx.URL] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return super().handle_request(request)


class RecordingAsyncTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return await super().handle_async_request(request)


def cache_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*.json"))


# -- round trips ---------------------------------------------------------------------------


def test_openai_round_trip(server, make):
    caller = make(config(server))
    result = caller.chat([{"role": "system", "content": "Be brief."}, *USER], temperature=0)
    assert isinstance(result, ChatResult)
    assert result.text == "four it is"
    assert result.model == "gpt-4o-mini"
    assert (result.input_tokens, result.output_tokens) == (2 + 5, 3)
    assert result.cost == pytest.approx(GPT_MINI.cost(7, 3))
    assert result.cost == pytest.approx((7 * 0.15 + 3 * 0.60) / 1e6)
    assert result.cached is False and result.retries == 0
    assert result.latency_ms > 0
    assert result.raw["object"] == "chat.completion"
    sent = server.received[-1]
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, *USER]
    headers = server.received_headers[-1]
    assert headers["authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in headers


def test_anthropic_round_trip_sends_system_separately(server, make):
    caller = make(config(server, "anthropic"))
    result = caller.chat([{"role": "system", "content": "Be brief."}, *USER])
    assert result.text == "four it is"
    assert result.model == "claude-3-5-haiku-latest"
    assert (result.input_tokens, result.output_tokens) == (7, 3)
    assert result.cost == pytest.approx(HAIKU.cost(7, 3))
    assert result.cost == pytest.approx((7 * 0.80 + 3 * 4.00) / 1e6)
    assert result.raw["type"] == "message"
    sent = server.received[-1]
    assert sent["system"] == "Be brief."
    assert sent["messages"] == USER  # no system role left among the messages
    assert all(m["role"] != "system" for m in sent["messages"])
    assert sent["max_tokens"] == 1024
    headers = server.received_headers[-1]
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"]
    assert "authorization" not in headers


def test_the_callers_messages_are_not_changed(server, make):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    snapshot = [dict(m) for m in messages]
    make(config(server, "anthropic")).chat(messages)
    make(config(server)).chat(messages)
    assert messages == snapshot


def test_anthropic_without_system_sends_no_system_field(server, make):
    make(config(server, "anthropic")).chat(USER, max_tokens=20)
    sent = server.received[-1]
    assert "system" not in sent and sent["max_tokens"] == 20


def test_anthropic_system_given_as_content_parts(server, make):
    parts = [{"type": "text", "text": "Be brief."}]
    make(config(server, "anthropic")).chat([{"role": "system", "content": parts}, *USER])
    assert server.received[-1]["system"] in ("Be brief.", parts)


def test_unpriced_model_has_no_cost(server, make):
    for provider in ("openai", "anthropic"):
        result = make(config(server, provider, model="my-local-llama")).chat(USER)
        assert result.text == "four it is" and result.model == "my-local-llama"
        assert result.cost is None
        assert result.input_tokens == 5


def test_model_argument_overrides_the_config(server, make):
    result = make(config(server)).chat(USER, model="gpt-4o")
    assert server.received[-1]["model"] == "gpt-4o"
    assert result.cost == pytest.approx(PriceTable.default().cost("gpt-4o", 5, 3))


def test_keyword_overrides_build_the_config(server, make):
    caller = make(base_url=server.base_url, model="gpt-4o-mini", api_key_env=KEY_ENV)
    assert caller.complete("hello") == "four it is"
    assert server.received_headers[-1]["authorization"] == f"Bearer {KEY}"


def test_no_model_is_a_client_error_before_any_request(server, make):
    caller = make(config(server, model=""))
    with pytest.raises(ClientRequestError, match="no model"):
        caller.chat(USER)
    assert server.requests == 0


def test_complete_shorthand(server, make):
    server.answer = lambda request: f"echo {request['messages'][-1]['content']}"
    for provider in ("openai", "anthropic"):
        caller = make(config(server, provider))
        assert caller.complete("ping pong", system="Reply in kind.") == "echo ping pong"
        sent = server.received[-1]
        if provider == "anthropic":
            assert sent["system"] == "Reply in kind."
            assert sent["messages"] == [{"role": "user", "content": "ping pong"}]
        else:
            assert sent["messages"] == [{"role": "system", "content": "Reply in kind."},
                                        {"role": "user", "content": "ping pong"}]
        assert caller.complete("no system") == "echo no system"
        assert "system" not in server.received[-1]
        assert all(m["role"] == "user" for m in server.received[-1]["messages"])


def test_without_the_key_variable_no_credentials_are_sent(server, make, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    assert make(config(server)).complete("hi") == "four it is"
    assert "authorization" not in server.received_headers[-1]


def test_key_is_read_when_sending_not_when_building(server, make, monkeypatch):
    caller = make(config(server))
    monkeypatch.setenv(KEY_ENV, "sk-rotated-key")
    caller.complete("hi")
    assert server.received_headers[-1]["authorization"] == "Bearer sk-rotated-key"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_azure_style_deployment_query_and_api_key_header(server, kind):
    cfg = config(server, base_url=f"{server.url}/openai/deployments/dep1", api_version="2024-06-01",
                 auth_header="api-key", model="gpt-4o-mini")
    if kind == "sync":
        transport = RecordingTransport()
        with ChatClient(cfg, transport=transport) as client:
            result = client.chat(USER)
    else:
        transport = RecordingAsyncTransport()

        async def go():
            async with AsyncChatClient(cfg, transport=transport) as client:
                return await client.chat(USER)

        result = asyncio.run(go())
    assert result.text == "four it is"
    assert result.cost == pytest.approx(GPT_MINI.cost(5, 3))
    (url,) = transport.urls
    assert url.path == "/openai/deployments/dep1/chat/completions"
    assert url.params["api-version"] == "2024-06-01"
    headers = server.received_headers[-1]
    assert headers["api-key"] == KEY
    assert "authorization" not in headers
    assert KEY not in str(url)


# -- retries and failures --------------------------------------------------------------------


def test_fail_first_two_then_success(server, make):
    for provider in ("openai", "anthropic"):
        server.reset()
        server.faults = Faults(fail_first=2)
        result = make(config(server, provider, max_retries=3)).chat(USER)
        assert result.text == "four it is"
        assert result.retries == 2
        assert server.requests == 3


def test_retry_after_is_honoured(server, make):
    server.faults = Faults(fail_first=1, fail_status=429, retry_after=0.2)
    caller = make(config(server, backoff_base=0.001, max_retries=2))
    started = time.perf_counter()
    result = caller.chat(USER)
    elapsed = time.perf_counter() - started
    assert result.retries == 1 and server.requests == 2
    assert 0.2 <= elapsed < 10  # the server's 0.2 s, not the 0.001 s backoff; loose above for loaded machines


def test_retry_after_longer_than_backoff_max_fails_at_once(server, make):
    server.faults = Faults(rate_429=1.0, retry_after=30)
    caller = make(config(server, backoff_max=1.0, max_retries=5))
    ledger = accounting.Ledger()
    started = time.perf_counter()
    with accounting.use_ledger(ledger), pytest.raises(RateLimitError) as info:
        caller.chat(USER)
    assert time.perf_counter() - started < 10  # not the server's 30 s
    assert [(r.error, r.retries) for r in ledger.records] == [("rate_limit", 0)]
    assert server.requests == 1
    assert info.value.status == 429 and info.value.kind == "rate_limit"
    assert "HTTP 429" in str(info.value)


def test_408_and_529_are_retried(server, make):
    caller = make(config(server, max_retries=2))
    for status in (408, 529):
        server.reset()
        server.faults = Faults(fail_first=1, fail_status=status)
        assert caller.chat(USER).retries == 1
        assert server.requests == 2


def test_a_retry_then_a_final_error_names_all_attempts(server, make):
    # a 500 (retried), then a 429 asking for a wait longer than backoff_max (final)
    server.faults = Faults(fail_first=1, rate_429=1.0, retry_after=30)
    ledger = accounting.Ledger()
    with accounting.use_ledger(ledger), pytest.raises(RateLimitError) as info:
        make(config(server, max_retries=4, backoff_max=1.0)).chat(USER)
    assert str(info.value).endswith("(after 2 attempts)")
    assert server.requests == 2
    (record,) = ledger.records
    assert (record.error, record.retry_kinds) == ("rate_limit", ("server_error",))


def test_rate_limit_exhausted(server, make):
    server.faults = Faults(rate_429=1.0, retry_after=0)
    with pytest.raises(RateLimitError, match=r"\(after 3 attempts\)"):
        make(config(server, max_retries=2)).chat(USER)
    assert server.requests == 3


def test_max_retries_exhausted_is_a_server_error_naming_everything(server, make):
    server.faults = Faults(rate_500=1.0)
    for provider in ("openai", "anthropic"):
        server.reset()
        caller = make(config(server, provider, model="my-model", max_retries=2))
        with pytest.raises(ServerError) as info:
            caller.chat(USER)
        error = info.value
        message = str(error)
        assert message.startswith(f"{provider} my-model at {server.base_url}: HTTP 500: ")
        assert "injected fault: internal server error (rate_500)" in message  # the server's own message
        assert message.endswith("(after 3 attempts)")
        assert error.status == 500 and error.kind == "server_error"
        assert error.provider == provider and error.model == "my-model"
        assert server.requests == 3


def test_no_retries_means_one_attempt(server, make):
    server.faults = Faults(rate_500=1.0)
    with pytest.raises(ServerError) as info:
        make(config(server, max_retries=0)).chat(USER)
    assert server.requests == 1
    assert "attempts" not in str(info.value)


def test_client_errors_are_not_retried(server, make):
    caller = make(config(server, max_retries=4))
    for status in (400, 401, 404):
        server.reset()
        server.faults = Faults(fail_first=5, fail_status=status)
        with pytest.raises(ClientRequestError) as info:
            caller.chat(USER)
        assert server.requests == 1
        assert info.value.status == status and info.value.kind == "client_error"
        assert f"HTTP {status}" in str(info.value)
        assert "scripted failure" in str(info.value)
        assert "attempts" not in str(info.value)


def test_a_real_400_from_the_server(server, make):
    # the query string swallows "/chat/completions": the request reaches /v1/responses without "input"
    with pytest.raises(ClientRequestError, match="'input' is required") as info:
        make(config(server, base_url=f"{server.url}/v1/responses?route=", max_retries=4)).chat(USER)
    assert info.value.status == 400
    assert server.requests == 1


def test_a_base_url_that_404s(server, make):
    ledger = accounting.Ledger()
    with accounting.use_ledger(ledger):
        with pytest.raises(ClientRequestError) as info:
            make(config(server, base_url=f"{server.url}/wrong/prefix", max_retries=4)).chat(USER)
    assert info.value.status == 404
    assert "HTTP 404" in str(info.value) and "unknown path" in str(info.value)
    (record,) = ledger.records
    assert record.error == "client_error" and record.retries == 0  # not retried


def test_timeout(server, make):
    server.faults = Faults(rate_timeout=1.0, timeout_delay=1)
    caller = make(config(server, timeout=0.2, max_retries=1))
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout) as info:
        caller.chat(USER)
    assert time.perf_counter() - started < 1.5  # two 0.2 s waits, not the server's 1 s stalls
    assert info.value.kind == "timeout" and info.value.status is None
    assert "no answer within 0.2s" in str(info.value)
    assert "(after 2 attempts)" in str(info.value)
    assert server.requests == 2


def test_dropped_connection(server, make):
    server.faults = Faults(rate_drop=1.0)
    with pytest.raises(ProviderConnectionError) as info:
        make(config(server, max_retries=1)).chat(USER)
    assert info.value.kind == "connect"
    assert "(after 2 attempts)" in str(info.value)
    assert server.requests == 2


def test_connection_refused(make):
    import socket

    with socket.socket() as probe:  # a port nobody listens on: bound, then closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    caller = make(ProviderConfig(base_url=f"http://127.0.0.1:{port}/v1", model="gpt-4o-mini", api_key_env=KEY_ENV,
                                 max_retries=1, backoff_base=0.01, connect_timeout=1.0))
    with pytest.raises(ProviderConnectionError) as info:
        caller.chat(USER)
    assert "(after 2 attempts)" in str(info.value) and KEY not in str(info.value)


def test_openai_client_at_the_anthropic_endpoint_is_a_parse_error(server, make):
    # the query string swallows the "/chat/completions" the client appends: the request
    # reaches /v1/messages and gets a (valid) Anthropic answer, not an OpenAI one
    caller = make(config(server, base_url=f"{server.url}/v1/messages?route=", max_retries=3))
    with pytest.raises(ResponseParseError) as info:
        caller.chat(USER)
    assert info.value.kind == "parse" and info.value.status == 200
    assert "not a openai response" in str(info.value)
    assert server.requests == 1  # not retried


def test_anthropic_client_at_the_openai_endpoint_is_a_parse_error(server, make):
    caller = make(config(server, "anthropic", base_url=f"{server.url}/v1/chat/completions?route=", max_retries=3))
    with pytest.raises(ResponseParseError) as info:
        caller.chat(USER)
    assert "not a anthropic response" in str(info.value)
    assert "chat.completion" in str(info.value)  # a preview of what came back
    assert server.requests == 1


@pytest.fixture
def html_server():
    """A plain HTTP server answering every POST with 200 and an HTML page (a proxy's
    login page, say): the loopback LLM server itself only ever sends JSON."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b"<html><body>Please log in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_a_200_that_is_not_json_is_a_parse_error(html_server, make):
    caller = make(ProviderConfig(base_url=html_server, model="gpt-4o-mini", api_key_env=KEY_ENV, backoff_base=0.01))
    with pytest.raises(ResponseParseError, match="not JSON: <html><body>Please log in"):
        caller.chat(USER)


# -- many faults, many calls ------------------------------------------------------------------

MIXED = Faults(rate_429=0.10, retry_after=0, rate_500=0.05, seed=11)


def _check_mixed(server, outcomes, ledger):
    assert len(outcomes) == 200
    ok = [o for o in outcomes if isinstance(o, ChatResult)]
    failed = [o for o in outcomes if not isinstance(o, ChatResult)]
    assert all(isinstance(o, ProviderError) and o.kind in ("rate_limit", "server_error") for o in failed), failed
    assert all(o.text == "four it is" for o in ok)
    assert len(ok) >= 195
    records = ledger.records
    assert len(records) == 200
    retries = sum(r.retries for r in records)
    assert retries > 0
    assert sum(o.retries for o in ok) == sum(r.retries for r in records if r.error is None)
    assert server.requests == 200 + retries  # every attempt is either the last or a counted retry
    kinds = ledger.summary()["app"]["retry_kinds"]
    assert set(kinds) <= {"rate_limit", "server_error"} and sum(kinds.values()) == retries
    assert "rate_limit" in kinds


def test_mixed_faults_200_sequential_sync_calls(server):
    server.faults = MIXED
    ledger = accounting.Ledger()
    outcomes = []
    with ChatClient(config(server, max_retries=6, backoff_base=0.001)) as client, accounting.use_ledger(ledger):
        for _ in range(200):
            try:
                outcomes.append(client.chat(USER))
            except ProviderError as error:
                outcomes.append(error)
    _check_mixed(server, outcomes, ledger)


def test_mixed_faults_200_concurrent_async_calls(server):
    server.faults = MIXED
    ledger = accounting.Ledger()

    async def go():
        async with AsyncChatClient(config(server, max_retries=6, backoff_base=0.001)) as client:
            calls = [client.chat(USER) for _ in range(200)]
            return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=15)

    with accounting.use_ledger(ledger):
        outcomes = asyncio.run(go())
    _check_mixed(server, outcomes, ledger)


# -- accounting ------------------------------------------------------------------------------


def test_a_call_is_recorded_on_the_ledger(server, make):
    ledger = accounting.Ledger()
    with accounting.use_ledger(ledger):
        result = make(config(server)).chat(USER)
    (record,) = ledger.records
    assert record.kind == "app"
    assert record.provider == "openai" and record.model == "gpt-4o-mini"
    assert (record.input_tokens, record.output_tokens) == (5, 3)
    assert record.latency_ms > 0
    assert record.cost == pytest.approx(result.cost) and record.cost > 0
    assert record.cached is False and record.error is None
    assert record.retries == 0 and record.retry_kinds == ()


def test_retries_are_recorded_with_their_kinds(server, make):
    server.faults = Faults(fail_first=2, fail_status=429, retry_after=0)
    ledger = accounting.Ledger()
    with accounting.use_ledger(ledger):
        make(config(server, "anthropic", max_retries=3)).chat(USER)
    (record,) = ledger.records
    assert record.retries == 2 and record.retry_kinds == ("rate_limit", "rate_limit")
    assert record.error is None and record.provider == "anthropic"


def test_judge_calls_are_recorded_as_judge(server, make):
    ledger = accounting.Ledger()
    caller = make(config(server))
    with accounting.use_ledger(ledger):
        caller.chat(USER)
        with accounting.call_kind("judge"):
            caller.chat(USER)
    assert [r.kind for r in ledger.records] == ["app", "judge"]
    summary = ledger.summary()
    assert summary["app"]["calls"] == summary["judge"]["calls"] == 1


def test_a_final_failure_is_recorded_with_its_kind(server, make):
    server.faults = Faults(rate_500=1.0)
    ledger = accounting.Ledger()
    with accounting.use_ledger(ledger), pytest.raises(ServerError):
        make(config(server, max_retries=2)).chat(USER)
    (record,) = ledger.records
    assert record.error == "server_error"
    assert record.retries == 2 and record.retry_kinds == ("server_error", "server_error")
    assert record.input_tokens == record.output_tokens == 0 and record.cost == 0.0
    assert ledger.summary()["app"]["errors"] == {"server_error": 1}


def test_a_timeout_is_recorded(server, make):
    server.faults = Faults(rate_timeout=1.0, timeout_delay=1)
    ledger = accounting.Ledger()
    with accounting.use_ledger(ledger), pytest.raises(ProviderTimeout):
        make(config(server, timeout=0.2, max_retries=0)).chat(USER)
    (record,) = ledger.records
    assert record.error == "timeout" and record.latency_ms >= 150


def test_a_parse_failure_is_recorded(server, make):
    server.faults = Faults(fail_first=1)
    ledger = accounting.Ledger()
    caller = make(config(server, base_url=f"{server.url}/v1/messages?route=", max_retries=3))
    with accounting.use_ledger(ledger), pytest.raises(ResponseParseError):
        caller.chat(USER)
    assert [(r.error, r.retry_kinds) for r in ledger.records] == [("parse", ("server_error",))]


def test_recorded_latency_includes_retries_and_backoff(server, make):
    server.faults = Faults(fail_first=1, fail_status=429, retry_after=0.3)
    ledger = accounting.Ledger()
    with accounting.use_ledger(ledger):
        make(config(server, backoff_base=0.001)).chat(USER)
    (record,) = ledger.records
    assert record.retries == 1
    assert record.latency_ms >= 300


def test_calls_outside_a_ledger_record_nothing_and_work(server, make):
    assert accounting.current_ledger() is None
    server.faults = Faults(fail_first=1)
    caller = make(config(server))
    assert caller.chat(USER).retries == 1
    server.faults = Faults(rate_500=1.0)
    with pytest.raises(ServerError):
        caller.chat(USER)


# -- record/replay cache ----------------------------------------------------------------------


def test_cache_readwrite_replays_without_a_request(server, make, tmp_path):
    cache = ResponseCache(tmp_path, "readwrite")
    caller = make(config(server), cache=cache)
    first = caller.chat(USER)
    assert server.requests == 1 and first.cached is False and first.cost > 0
    cache.flush()
    assert len(cache_files(tmp_path)) == 1
    server.default_answer = "something else now"
    ledger = accounting.Ledger()
    with accounting.use_ledger(ledger):
        second = caller.chat(USER)
    assert server.requests == 1
    assert second.text == first.text == "four it is"
    assert second.cached is True and second.cost == 0.0
    assert (second.input_tokens, second.output_tokens) == (first.input_tokens, first.output_tokens)
    (record,) = ledger.records
    assert record.cached is True and record.cost == 0.0 and record.input_tokens == 5
    assert cache.hits == 1


def test_cache_key_changes_with_repeat_params_and_model(server, make, tmp_path):
    for provider in ("openai", "anthropic"):
        server.reset()
        root = tmp_path / provider
        cache = ResponseCache(root, "readwrite")
        caller = make(config(server, provider), cache=cache)
        caller.chat(USER)
        caller.chat(USER)
        assert server.requests == 1
        with runtime.use_repeat(1):
            assert caller.chat(USER).cached is False
            assert server.requests == 2
            assert caller.chat(USER).cached is True
        assert caller.chat(USER).cached is True  # repeat 0 is still there
        caller.chat(USER, temperature=0.5)
        caller.chat(USER, model="my-other-model")
        caller.chat([{"role": "user", "content": "another question"}])
        assert server.requests == 5
        cache.flush()
        assert len(cache_files(root)) == 5


def test_cache_strict_miss_raises_and_makes_no_request(server, make, tmp_path):
    caller = make(config(server, model="gpt-4o-mini"), cache=ResponseCache(tmp_path, "strict"))
    with pytest.raises(CacheMissError) as info:
        caller.chat(USER)
    message = str(info.value)
    assert "strict" in message and "gpt-4o-mini" in message and "openai" in message
    assert "--llm-eval-cache=readwrite" in message
    assert str(tmp_path) in message
    assert server.requests == 0


def test_cache_strict_replays_what_readwrite_recorded(server, make, tmp_path):
    recorder = ResponseCache(tmp_path, "readwrite")
    make(config(server), cache=recorder).chat(USER)
    recorder.flush()
    result = make(config(server), cache=ResponseCache(tmp_path, "strict")).chat(USER)
    assert result.cached is True and result.text == "four it is"
    assert server.requests == 1


def test_cache_read_mode_calls_on_a_miss_and_stores_nothing(server, make, tmp_path):
    cache = ResponseCache(tmp_path, "read")
    caller = make(config(server), cache=cache)
    assert caller.chat(USER).cached is False
    assert caller.chat(USER).cached is False
    assert server.requests == 2
    assert cache_files(tmp_path) == []
    assert cache.misses == 2


def test_errors_are_not_cached(server, make, tmp_path):
    cache = ResponseCache(tmp_path, "readwrite")
    server.faults = Faults(fail_first=1)
    with pytest.raises(ServerError):
        make(config(server, max_retries=0), cache=cache).chat(USER)
    assert cache_files(tmp_path) == []
    result = make(config(server, max_retries=0), cache=cache).chat(USER)
    assert result.text == "four it is"
    cache.flush()
    (entry,) = cache_files(tmp_path)
    assert "four it is" in entry.read_text() and "injected fault" not in entry.read_text()
    assert make(config(server), cache=cache).chat(USER).cached is True
    assert server.requests == 2


def test_a_success_after_retries_stores_only_the_success(server, make, tmp_path):
    server.faults = Faults(fail_first=1)
    cache = ResponseCache(tmp_path, "readwrite")
    make(config(server), cache=cache).chat(USER)
    cache.flush()
    (entry,) = cache_files(tmp_path)
    assert "injected fault" not in entry.read_text()


def test_cache_files_hold_no_credentials(server, make, tmp_path):
    cache = ResponseCache(tmp_path, "readwrite")
    for provider in ("openai", "anthropic"):
        make(config(server, provider), cache=cache).chat([{"role": "system", "content": "sys"}, *USER])
    azure = config(server, base_url=f"{server.url}/openai/deployments/dep1", api_version="2024-06-01",
                   auth_header="api-key")
    make(azure, cache=cache).chat(USER)
    assert {h.get("authorization") or h.get("x-api-key") or h.get("api-key") for h in server.received_headers} \
        == {f"Bearer {KEY}", KEY}  # the key was sent every time...
    cache.flush()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 3  # ...and is in none of the entries
    for path in files:
        text = path.read_text()
        assert KEY not in text
        assert "authorization" not in text.lower()
        assert "x-api-key" not in text.lower() and "api-key\"" not in text.lower()
        assert KEY_ENV not in text


# -- secrets ---------------------------------------------------------------------------------


def test_a_key_echoed_in_an_error_is_redacted(server, make):
    def leaky(request):
        headers = server.received_headers[-1]
        credential = headers.get("authorization") or headers.get("x-api-key")
        raise RuntimeError(f"upstream rejected credential {credential}")

    server.answer = leaky
    for provider in ("openai", "anthropic"):
        with pytest.raises(ServerError) as info:
            make(config(server, provider, max_retries=1)).chat(USER)
        message = str(info.value)
        assert "answer callable raised RuntimeError: upstream rejected credential" in message
        assert "[REDACTED]" in message
        assert KEY not in message and KEY not in repr(info.value) and KEY not in str(info.value.args)
        assert "(after 2 attempts)" in message


def test_a_key_echoed_in_an_unparsable_answer_is_redacted(server, make):
    server.answer = lambda request: f"your key is {server.received_headers[-1]['x-api-key']}"
    caller = make(config(server, "anthropic", base_url=f"{server.url}/v1/chat/completions?route="))
    with pytest.raises(ResponseParseError) as info:
        caller.chat(USER)
    assert KEY not in str(info.value)
    assert "[REDACTED]" in str(info.value)


def test_a_key_changed_after_earlier_calls_is_redacted(server, make, monkeypatch):
    """Redaction remembers the secrets it found only while the environment is unchanged."""
    def leaky(request):
        raise RuntimeError(f"bad key {server.received_headers[-1]['authorization'].split()[-1]}")

    server.answer = leaky
    caller = make(config(server, max_retries=0))
    for key in (KEY, "sk-rotated-SECRET-0a1b2c3d4e5f6789"):
        monkeypatch.setenv(KEY_ENV, key)
        with pytest.raises(ServerError) as info:
            caller.chat(USER)
        assert "bad key [REDACTED]" in str(info.value) and key not in str(info.value)


def test_config_never_shows_the_key(server):
    cfg = config(server)
    assert cfg.api_key() == KEY
    for text in (repr(cfg), str(cfg), repr(ChatClient(cfg).config), repr(cfg.with_overrides({"timeout": 3}))):
        assert KEY not in text
        assert KEY_ENV in text or "api_key_env" in text


def test_results_and_records_hold_no_key(server, make):
    ledger = accounting.Ledger()
    with accounting.use_ledger(ledger):
        result = make(config(server)).chat(USER)
    assert KEY not in repr(result)
    assert KEY not in repr(ledger.records) and KEY not in repr(ledger.summary())


# -- rate limit and concurrency ----------------------------------------------------------------


def test_rate_limit_spaces_concurrent_calls(server):
    cfg = config(server, rate_limit=20)
    with ChatClient(cfg) as client, ThreadPoolExecutor(10) as pool:
        started = time.perf_counter()
        results = list(pool.map(lambda _: client.chat(USER), range(10)))
        elapsed = time.perf_counter() - started
    assert len(results) == 10 and server.requests == 10
    assert elapsed >= 0.44  # 10 slots 50 ms apart: the last starts 450 ms after the first


def test_rate_limit_is_shared_by_clients_of_one_base_url(server):
    cfg = config(server, rate_limit=20)
    with ChatClient(cfg) as one, ChatClient(cfg.with_overrides({"model": "gpt-4o"})) as two:
        with ThreadPoolExecutor(10) as pool:
            started = time.perf_counter()
            futures = [pool.submit((one if i % 2 else two).chat, USER) for i in range(10)]
            [f.result(timeout=10) for f in futures]
            elapsed = time.perf_counter() - started
    assert elapsed >= 0.44


def test_rate_limit_applies_to_async_clients(server):
    cfg = config(server, rate_limit=20)

    async def go():
        async with AsyncChatClient(cfg) as client:
            started = time.perf_counter()
            await asyncio.gather(*(client.chat(USER) for _ in range(10)))
            return time.perf_counter() - started

    assert asyncio.run(go()) >= 0.44


def test_64_concurrent_sync_calls_share_one_client(server):
    server.latency = 0.2
    ledger = accounting.Ledger()
    with ChatClient(config(server)) as client, ThreadPoolExecutor(64) as pool:
        def burst():
            gate = threading.Barrier(64)  # every thread starts its call at the same moment

            def one():
                gate.wait(timeout=10)
                return client.chat(USER)

            futures = [pool.submit(contextvars.copy_context().run, one) for _ in range(64)]
            return [f.result(timeout=10) for f in futures]

        burst()  # warm up: the pool's 64 threads and keep-alive connections exist
        server.reset()
        with accounting.use_ledger(ledger):
            started = time.perf_counter()
            results = burst()
            elapsed = time.perf_counter() - started
    assert all(r.text == "four it is" for r in results)
    assert server.requests == 64
    # Serialised would be 12.8 s; the bound leaves room for a loaded 2-core CI machine.
    # max_in_flight below is the sharper evidence.
    assert elapsed < 64 * 0.2 / 2
    assert server.max_in_flight >= 16  # serial would be 1; a loaded 2-core machine may not reach 64
    assert len(ledger) == 64  # every thread's call reached the case's ledger (copied context)


def test_64_concurrent_async_calls(server):
    server.latency = 0.2

    async def go():
        async with AsyncChatClient(config(server)) as client:
            started = time.perf_counter()
            results = await asyncio.gather(*(client.chat(USER) for _ in range(64)))
            return results, time.perf_counter() - started

    results, elapsed = asyncio.run(go())
    assert len(results) == 64 and all(r.text == "four it is" for r in results)
    assert server.requests == 64
    assert elapsed < 64 * 0.2 / 2  # serialised: 12.8 s (loose bound: loaded CI machines)
    assert server.max_in_flight >= 16  # serial would be 1; a loaded 2-core machine may not reach 64


def test_async_calls_spread_over_pools_reuse_their_connections(server):
    """32 calls in flight open 32 connections, spread over the client's pools (the least
    busy first), and a second burst reuses them all: none is closed as surplus."""
    server.latency = 0.2

    async def go():
        async with AsyncChatClient(config(server)) as client:
            first = await asyncio.gather(*(client.chat(USER) for _ in range(32)))
            opened = server.connections
            second = await asyncio.gather(*(client.chat(USER) for _ in range(32)))
            return first + second, opened

    results, opened = asyncio.run(go())
    assert len(results) == 64 and all(r.text == "four it is" for r in results)
    assert server.max_in_flight >= 16  # the calls overlapped (a loaded machine may not reach 32)
    assert opened <= 32 and server.connections == opened  # the second burst opened none


# -- run-wide defaults --------------------------------------------------------------------------


@pytest.fixture
def defaults_reset():
    yield runtime.set_defaults
    runtime.set_defaults(runtime.Defaults())


def test_runtime_defaults_are_used_by_a_bare_client(server, make, tmp_path, defaults_reset):
    cache = ResponseCache(tmp_path, "readwrite")
    prices = PriceTable({"house-model": Price(1.0, 2.0)})
    cfg = ProviderConfig(base_url=server.base_url, model="house-model", api_key_env=KEY_ENV, backoff_base=0.01)
    defaults_reset(runtime.Defaults(config=cfg, cache=cache, prices=prices))
    caller = make()
    first = caller.chat(USER)
    assert server.received[-1]["model"] == "house-model"
    assert server.received_headers[-1]["authorization"] == f"Bearer {KEY}"
    assert first.cost == pytest.approx((5 * 1.0 + 3 * 2.0) / 1e6)
    cache.flush()
    assert len(cache_files(tmp_path)) == 1
    second = caller.chat(USER)
    assert second.cached is True and server.requests == 1


def test_explicit_arguments_win_over_runtime_defaults(server, make, tmp_path, defaults_reset):
    defaults_reset(runtime.Defaults(config=ProviderConfig(base_url="http://127.0.0.1:9/v1", model="x"),
                                    cache=ResponseCache(tmp_path / "default", "readwrite"),
                                    prices=PriceTable({"x": Price(1.0, 1.0)})))
    own = ResponseCache(tmp_path / "own", "readwrite")
    result = make(config(server), cache=own, prices=PriceTable({"gpt-4o-mini": Price(10.0, 10.0)})).chat(USER)
    assert result.cost == pytest.approx(80 / 1e6)
    own.flush()
    assert len(cache_files(tmp_path / "own")) == 1
    assert not (tmp_path / "default").exists()


def test_defaults_set_after_the_client_is_built_still_apply(server, tmp_path, defaults_reset):
    client = ChatClient(config(server))  # built "at import time" of a user's app
    cache = ResponseCache(tmp_path, "readwrite")
    defaults_reset(runtime.Defaults(cache=cache, prices=PriceTable({"gpt-4o-mini": Price(1.0, 1.0)})))
    try:
        result = client.chat(USER)
    finally:
        client.close()
    assert result.cost == pytest.approx(8 / 1e6)
    cache.flush()
    assert len(cache_files(tmp_path)) == 1
