"""Answers read correctly (refusals, null content, missing usage, streams) by the plugin's
clients against the loopback server, and secrets that never leave: keys with whitespace,
and a judge that echoes the key."""

from __future__ import annotations

import asyncio
import os

import pytest

from pytest_llmeval.errors import ConfigError, ResponseParseError
from pytest_llmeval.providers import accounting
from pytest_llmeval.providers.cache import ResponseCache
from pytest_llmeval.providers.client import AsyncChatClient, ChatClient
from pytest_llmeval.providers.redaction import redact
from pytest_llmeval.testing import LoopbackLLMServer

MESSAGES = [{"role": "user", "content": "what is two plus two"}]


@pytest.fixture
def server():
    with LoopbackLLMServer(lambda request: "four it is") as running:
        yield running


@pytest.fixture(params=["sync", "async"])
def chat(request, server):
    """chat(provider, **params) -> ChatResult through ChatClient or AsyncChatClient."""

    def call(provider: str = "openai", *, cache=None, **params):
        model = "gpt-4o-mini" if provider == "openai" else "claude-sonnet-4-20250514"
        config = dict(provider=provider, model=model, base_url=server.base_url, api_key_env="TEST_KEY", max_retries=0)
        if request.param == "sync":
            with ChatClient(cache=cache, **config) as client:
                return client.chat(MESSAGES, **params)

        async def run():
            async with AsyncChatClient(cache=cache, **config) as client:
                return await client.chat(MESSAGES, **params)

        return asyncio.run(run())

    return call


def test_a_refusal_is_handed_on_with_a_flag(server, chat):
    def refuse(request, payload):
        payload["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
        return payload

    server.reshape = refuse
    result = chat()
    assert result.refused and result.text == "I can't help with that."
    server.reshape = lambda request, payload: {**payload, "stop_reason": "refusal"}
    result = chat("anthropic")
    assert result.refused and result.text == "four it is"
    server.reshape = None
    assert not chat().refused


def test_null_content_with_nothing_else_is_an_error(server, chat):
    def empty(request, payload):
        payload["choices"][0]["message"] = {"role": "assistant", "content": None}
        return payload

    server.reshape = empty
    with pytest.raises(ResponseParseError, match="content is null, with no refusal and no tool calls") as info:
        chat()
    assert info.value.kind == "parse"


def test_an_answer_without_usage_is_usage_unknown(server, chat):
    server.reshape = lambda request, payload: {k: v for k, v in payload.items() if k != "usage"}
    ledger = accounting.Ledger()
    with accounting.use_ledger(ledger):
        result = chat()
    assert result.text == "four it is" and not result.usage_known and result.cost is None
    (record,) = ledger.records
    assert not record.usage_known and ledger.summary()["app"]["usage_unknown_calls"] == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_streaming_gives_the_whole_answer_and_its_usage(server, chat, provider, tmp_path):
    plain = chat(provider)
    streamed = chat(provider, stream=True)
    assert streamed.text == plain.text == "four it is"
    assert (streamed.input_tokens, streamed.output_tokens, streamed.cost) == (plain.input_tokens, plain.output_tokens, plain.cost)
    assert streamed.usage_known
    if provider == "openai":
        assert server.received[-1]["stream_options"] == {"include_usage": True}  # else OpenAI sends no usage

    cache = ResponseCache(tmp_path, "readwrite")
    chat(provider, stream=True, cache=cache)
    cache.flush()
    server.reset()
    replayed = chat(provider, stream=True, cache=ResponseCache(tmp_path, "strict"))
    assert replayed.cached and replayed.text == "four it is" and replayed.output_tokens == plain.output_tokens
    assert server.requests == 0


def test_a_key_with_a_trailing_newline_is_stripped(server, chat, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "  sk-test-abcdef0123456789\n")
    assert chat().text == "four it is"
    assert server.received_headers[-1]["authorization"] == "Bearer sk-test-abcdef0123456789"


def test_a_key_with_whitespace_inside_is_refused_without_printing_it(server, chat, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-test-abc def0123456789")
    with pytest.raises(ConfigError) as info:
        chat()
    assert "$TEST_KEY" in str(info.value) and "sk-test" not in str(info.value)
    assert server.requests == 0  # refused before sending, and not retried as a connection error


def test_redact_removes_keys_and_credential_headers(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_API_KEY", "sk-live-9f8e7d6c5b4a")
    text = ("key sk-live-9f8e7d6c5b4a; Authorization: Bearer abc.def-123456789; {'x-api-key': 'zzzzzzzzzzzz'}"
            ' "authorization": "Bearer qqqqqqqqqqqq"')
    out = redact(text)
    for secret in ("sk-live-9f8e7d6c5b4a", "abc.def-123456789", "zzzzzzzzzzzz", "qqqqqqqqqqqq"):
        assert secret not in out
    assert out.count("[REDACTED]") == 4
    assert redact("nothing to hide here") == "nothing to hide here"


def test_redacting_twice_changes_nothing(monkeypatch):
    """A key found in a header value is redacted first; the header pass then must take the
    mark whole, not leave its ']' behind (a cache entry is redacted, then quoted again)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET123")
    for text in ("Authorization: Bearer sk-test-SECRET123", '{"authorization": "Bearer sk-test-SECRET123"}',
                 "x-api-key: sk-test-SECRET123, more", "x-api-key: zz.sk-test-SECRET123", "x-api-key: sk-test-SECRET123.extra"):
        once = redact(text)
        assert "SECRET123" not in once and "]]" not in once and "zz" not in once and "extra" not in once, once
        assert redact(once) == once, once
    assert redact("Authorization: Bearer sk-test-SECRET123") == "Authorization: [REDACTED]"


JUDGED = """
import os, pytest
from pytest_llmeval.providers import ChatClient

client = ChatClient(base_url=os.environ["LOOPBACK_BASE_URL"], model="gpt-4o-mini")

def app(question):
    return client.complete(question)

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["judge:correctness"])
def test_eval(llm_case, llm_eval):
    pass
"""


def test_redaction_while_another_thread_changes_the_environment(monkeypatch):
    # pytest sets and removes PYTEST_CURRENT_TEST in its own thread while the app's calls
    # are redacted in theirs: a variable removed mid-read must not fail a call.
    import sys
    import threading

    monkeypatch.setenv("TOGGLE_API_KEY", "sk-toggled-0000")
    stop = threading.Event()

    def toggle() -> None:
        while not stop.is_set():
            os.environ["PYTEST_TOGGLED"] = "x"
            os.environ.pop("PYTEST_TOGGLED", None)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread = threading.Thread(target=toggle)
    thread.start()
    try:
        for _ in range(20000):
            assert redact("key sk-toggled-0000") == "key [REDACTED]"
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)


def test_a_judge_that_echoes_the_key_leaks_it_nowhere(pytester, write_jsonl, server, monkeypatch):
    key = "sk-echoed-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("LOOPBACK_BASE_URL", server.base_url)
    monkeypatch.setenv("LLM_EVAL_JUDGE_BASE_URL", server.base_url)
    pytester.makeini("[pytest]\nllm_eval_judge_model = gpt-4o-mini\n")

    def answer(request):  # the app answers; the judge echoes the header it was sent
        if "ANSWER:" in str(request["messages"]):
            return f"I received Authorization: Bearer {key} and {key}, no JSON here"
        return "Paris"

    server.answer = answer
    write_jsonl("data.jsonl", [{"id": "fr", "inputs": {"question": "capital of France?"}, "expected": "Paris"}])
    pytester.makepyfile(test_eval=JUDGED)
    result = pytester.runpytest("--llm-eval", "--junitxml=junit.xml", "--llm-eval-report=r.json",
                                "--llm-eval-markdown=summary.md", "--llm-eval-cache=readwrite", "-rA")
    output = "\n".join(result.outlines + result.errlines)
    assert "unparsable judgment" in output and "[REDACTED]" in output
    assert key not in output
    files = [p for p in pytester.path.rglob("*") if p.is_file()]
    assert {"junit.xml", "r.json", "summary.md"} <= {p.name for p in files}
    assert any(".llm-eval/cache" in str(p) for p in files)
    for path in files:
        assert key not in path.read_text(errors="replace"), path


def test_the_async_client_writes_the_cache_off_the_event_loop(server, tmp_path, monkeypatch):
    # Where the writer process cannot run, the cache's writer thread writes the files: still
    # not the event loop (test_cache_writer.py: with the process, not this process at all).
    import threading

    from pytest_llmeval.providers import cache as cache_module

    def no_process(root):
        raise OSError("no child processes here")

    monkeypatch.setattr(cache_module, "WriterProcess", no_process)
    cache = ResponseCache(tmp_path, "readwrite")
    writers: list[str] = []
    write = cache_module.write_batch

    def spy(root, batch):
        writers.extend(threading.current_thread().name for _ in batch)
        return write(root, batch)

    monkeypatch.setattr(cache_module, "write_batch", spy)

    async def run():
        async with AsyncChatClient(model="gpt-4o-mini", base_url=server.base_url, api_key_env="TEST_KEY", cache=cache) as client:
            await client.chat(MESSAGES)
            return threading.current_thread().name

    loop_thread = asyncio.run(run())
    cache.flush()
    assert len(writers) == 1 and writers[0] != loop_thread and cache.writes == 1
