"""Capture of SDK calls (providers/capture.py) with the real openai and anthropic packages
against the loopback server: per-case tokens, cost, latency, retries, streams, the other
OpenAI APIs, record/replay and strict misses."""

from __future__ import annotations

import asyncio
import json

# The SDKs (and whichever of httpx / httpx2 they use) are imported here, before any
# in-process pytester run: those runs restore sys.modules and would import them afresh.
import anthropic
import openai
import pytest

from pytest_llmeval.providers import accounting, capture, runtime
from pytest_llmeval.providers.cache import ResponseCache
from pytest_llmeval.providers.client import AsyncChatClient, ChatClient
from pytest_llmeval.testing import Faults, LoopbackLLMServer

KEY = "sk-test-capture-0123456789"
QUESTION = "what is two plus two"  # 5 words: 5 input tokens at the loopback server
MESSAGES = [{"role": "user", "content": QUESTION}]
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-20250514"


@pytest.fixture
def server():
    with LoopbackLLMServer(lambda request: "four it is") as running:
        yield running


@pytest.fixture(autouse=True)
def captured():
    capture.enable()
    yield
    capture.disable()
    runtime.set_defaults(runtime.Defaults())


def use_cache(path, mode: str) -> ResponseCache:
    """A cache as the run's default. The previous default is closed first (its recordings
    written), as a session closes its cache at its end."""
    previous = runtime.defaults().cache
    if previous is not None:
        previous.close()
    cache = ResponseCache(path, mode)
    runtime.set_defaults(runtime.Defaults(cache=cache))
    return cache


def in_case(call, label: str = "case 'c1'"):
    """Run ``call()`` as a case would: with its own ledger in context. Returns (result, records, ledger)."""
    ledger = accounting.Ledger(label=label)
    with accounting.use_ledger(ledger):
        result = call()
    return result, ledger.records, ledger


def openai_client(server, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, **kw)


def anthropic_client(server, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=KEY, **kw)


def reference(server, provider: str, model: str):
    """What the plugin's own client records for the same question (not captured twice)."""
    client = ChatClient(provider=provider, model=model, base_url=server.base_url, api_key_env="NO_SUCH_KEY")
    _, records, _ = in_case(lambda: client.chat(MESSAGES, max_tokens=64) if provider == "anthropic" else client.chat(MESSAGES))
    assert len(records) == 1 and records[0].source == "client"
    return records[0]


def same_usage(record, expected) -> None:
    assert (record.input_tokens, record.output_tokens) == (expected.input_tokens, expected.output_tokens) == (5, 3)
    assert record.cost == pytest.approx(expected.cost) and record.cost > 0
    assert record.usage_known and record.error is None and not record.cached and record.source == "capture"


def test_openai_sdk_sync_and_async_count_like_the_plugin_client(server):
    expected = reference(server, "openai", OPENAI_MODEL)
    client = openai_client(server)
    answer, records, _ = in_case(lambda: client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES))
    assert answer.choices[0].message.content == "four it is"
    assert len(records) == 1
    same_usage(records[0], expected)
    assert records[0].provider == "openai" and records[0].model == OPENAI_MODEL and records[0].latency_ms > 0

    async def async_call():
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY) as aclient:
            return await aclient.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)

    answer, records, _ = in_case(lambda: asyncio.run(async_call()))
    assert answer.choices[0].message.content == "four it is"
    same_usage(records[0], expected)
    assert len(records) == 1


def test_anthropic_sdk_sync_and_async_count_like_the_plugin_client(server):
    expected = reference(server, "anthropic", ANTHROPIC_MODEL)
    client = anthropic_client(server)
    answer, records, _ = in_case(lambda: client.messages.create(model=ANTHROPIC_MODEL, max_tokens=64, messages=MESSAGES))
    assert answer.content[0].text == "four it is"
    assert len(records) == 1 and records[0].provider == "anthropic"
    same_usage(records[0], expected)

    async def async_call():
        async with anthropic.AsyncAnthropic(base_url=server.url, api_key=KEY) as aclient:
            return await aclient.messages.create(model=ANTHROPIC_MODEL, max_tokens=64, messages=MESSAGES)

    _, records, _ = in_case(lambda: asyncio.run(async_call()))
    assert len(records) == 1
    same_usage(records[0], expected)


def test_the_plugin_client_is_not_counted_twice(server):
    client = ChatClient(model=OPENAI_MODEL, base_url=server.base_url, api_key_env="NO_SUCH_KEY")

    async def both():
        async with AsyncChatClient(model=OPENAI_MODEL, base_url=server.base_url, api_key_env="NO_SUCH_KEY") as aclient:
            await aclient.chat(MESSAGES)

    _, records, _ = in_case(lambda: (client.chat(MESSAGES), asyncio.run(both())))
    assert [r.source for r in records] == ["client", "client"]


def test_streams_are_counted_when_read_to_the_end(server):
    client = openai_client(server)

    def read(stream) -> str:
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    text, records, _ = in_case(lambda: read(client.chat.completions.create(
        model=OPENAI_MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True})))
    assert text == "four it is"
    assert len(records) == 1 and records[0].usage_known and (records[0].input_tokens, records[0].output_tokens) == (5, 3)

    # Without include_usage OpenAI sends no usage chunk: usage unknown, not 0 tokens.
    _, records, _ = in_case(lambda: read(client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES, stream=True)))
    assert len(records) == 1 and not records[0].usage_known and records[0].cost is None

    def anthropic_stream() -> str:
        with anthropic_client(server).messages.stream(model=ANTHROPIC_MODEL, max_tokens=64, messages=MESSAGES) as stream:
            return stream.get_final_text()

    text, records, _ = in_case(anthropic_stream)
    assert text == "four it is"
    assert len(records) == 1 and (records[0].input_tokens, records[0].output_tokens) == (5, 3) and records[0].cost > 0

    async def async_stream() -> str:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY) as aclient:
            stream = await aclient.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES, stream=True,
                                                          stream_options={"include_usage": True})
            return "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])

    text, records, _ = in_case(lambda: asyncio.run(async_stream()))
    assert text == "four it is" and records[0].usage_known and records[0].output_tokens == 3


def test_responses_and_embeddings_apis(server):
    client = openai_client(server)
    response, records, _ = in_case(lambda: client.responses.create(model=OPENAI_MODEL, input=QUESTION))
    assert response.output_text == "four it is"
    assert len(records) == 1 and (records[0].input_tokens, records[0].output_tokens) == (5, 3)
    assert records[0].cost == pytest.approx((5 * 0.15 + 3 * 0.60) / 1e6)

    def stream_responses() -> str:
        return "".join(event.delta for event in client.responses.create(model=OPENAI_MODEL, input=QUESTION, stream=True)
                       if event.type == "response.output_text.delta")

    text, records, _ = in_case(stream_responses)
    assert text == "four it is" and (records[0].input_tokens, records[0].output_tokens) == (5, 3)

    vectors, records, _ = in_case(lambda: client.embeddings.create(model="text-embedding-3-small", input=["hello there world"]))
    assert len(vectors.data[0].embedding) == 8
    assert len(records) == 1 and (records[0].input_tokens, records[0].output_tokens) == (3, 0)
    assert records[0].cost == pytest.approx(3 * 0.02 / 1e6)


def test_retries_make_one_record_with_their_kinds(server):
    server.faults = Faults(fail_first=2, fail_status=429, retry_after=0)
    client = openai_client(server, max_retries=3)
    _, records, _ = in_case(lambda: client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES))
    assert server.requests == 3
    assert len(records) == 1
    assert (records[0].retries, records[0].retry_kinds, records[0].error) == (2, ("rate_limit", "rate_limit"), None)
    assert records[0].output_tokens == 3

    server.faults = Faults(fail_first=100, fail_status=500)
    client = openai_client(server, max_retries=1)
    with pytest.raises(openai.InternalServerError):
        in_case(lambda: client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES))
    ledger = accounting.Ledger()
    with accounting.use_ledger(ledger), pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)
    (record,) = ledger.records
    assert (record.retries, record.retry_kinds, record.error) == (1, ("server_error",), "server_error")


def test_cached_and_cache_write_tokens_are_priced_at_their_own_rates(server):
    def openai_cached(request, payload):
        payload["usage"] = {"prompt_tokens": 10_000, "completion_tokens": 100, "total_tokens": 10_100,
                            "prompt_tokens_details": {"cached_tokens": 9_000},
                            "completion_tokens_details": {"reasoning_tokens": 40}}
        return payload

    server.reshape = openai_cached
    _, records, _ = in_case(lambda: openai_client(server).chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES))
    (record,) = records
    assert (record.input_tokens, record.cached_input_tokens, record.output_tokens, record.reasoning_tokens) == (10_000, 9_000, 100, 40)
    assert record.cost == pytest.approx(0.000885, abs=1e-12)  # not $0.001560

    def anthropic_cache(request, payload):
        payload["usage"] = {"input_tokens": 10, "cache_creation_input_tokens": 1_000, "cache_read_input_tokens": 5_000,
                            "output_tokens": 5}
        return payload

    server.reshape = anthropic_cache
    _, records, _ = in_case(lambda: anthropic_client(server).messages.create(model="claude-sonnet-4", max_tokens=64, messages=MESSAGES))
    (record,) = records
    assert (record.input_tokens, record.cache_write_tokens, record.cached_input_tokens, record.output_tokens) == (6_010, 1_000, 5_000, 5)
    assert record.cost == pytest.approx(0.005355, abs=1e-12)


def test_an_answer_without_usage_is_usage_unknown_not_zero(server):
    server.reshape = lambda request, payload: {k: v for k, v in payload.items() if k != "usage"}
    _, records, ledger = in_case(lambda: openai_client(server).chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES))
    (record,) = records
    assert not record.usage_known and record.cost is None
    summary = ledger.summary()["app"]
    assert summary["usage_unknown_calls"] == 1 and summary["unpriced_models"] == []


def test_record_then_strict_replay_on_another_port_makes_no_request(server, tmp_path):
    cache = use_cache(tmp_path / "cache", "readwrite")
    client = openai_client(server)
    _, records, _ = in_case(lambda: client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES, temperature=0))
    assert server.requests == 1 and not records[0].cached
    _, _, _ = in_case(lambda: anthropic_client(server).messages.create(model=ANTHROPIC_MODEL, max_tokens=64, messages=MESSAGES))
    cache.flush()
    entries = list((tmp_path / "cache").rglob("*.json"))
    assert len(entries) == 2
    for entry in entries:
        text = entry.read_text(encoding="utf-8")
        assert KEY not in text and "authorization" not in text.lower() and "x-api-key" not in text.lower()
        assert "127.0.0.1" not in text and str(server.port) not in text  # keyed by http://loopback

    use_cache(tmp_path / "cache", "strict")
    with LoopbackLLMServer(host="127.0.0.1") as other:
        # another port, and "localhost" spelled for 127.0.0.1: the same recordings
        replaying = openai.OpenAI(base_url=f"http://localhost:{other.port}/v1", api_key="another-key-0000")
        answer, records, _ = in_case(lambda: replaying.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES, temperature=0))
        assert answer.choices[0].message.content == "four it is"
        assert records[0].cached and records[0].cost == 0.0 and records[0].input_tokens == 5
        reply, _, _ = in_case(lambda: anthropic.Anthropic(base_url=other.url, api_key="k").messages.create(
            model=ANTHROPIC_MODEL, max_tokens=64, messages=MESSAGES))
        assert reply.content[0].text == "four it is"
        assert other.requests == 0


def test_strict_miss_is_an_error_naming_case_and_request_and_never_a_live_call(server, tmp_path):
    use_cache(tmp_path / "cache", "strict")
    client = openai_client(server)  # the SDK's default 2 retries: a miss must not be retried
    ledger = accounting.Ledger(label="case 'paris'")
    with accounting.use_ledger(ledger), pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)
    assert server.requests == 0
    message = str(info.value)
    assert "case 'paris'" in message and "not in the cache (strict replay)" in message
    assert "openai POST /v1/chat/completions model gpt-4o-mini" in message
    assert ledger.misses and ledger.misses[0].startswith("case 'paris': not in the cache")
    assert [r.error for r in ledger.records] == ["cache_miss"]

    async def async_miss():
        async with anthropic.AsyncAnthropic(base_url=server.url, api_key=KEY) as aclient:
            await aclient.messages.create(model=ANTHROPIC_MODEL, max_tokens=64, messages=MESSAGES)

    with pytest.raises(anthropic.BadRequestError, match="anthropic POST /v1/messages model claude-sonnet-4-20250514"):
        in_case(lambda: asyncio.run(async_miss()))
    assert server.requests == 0


def test_switched_off_capture_sees_nothing(server):
    capture.disable()
    _, records, _ = in_case(lambda: openai_client(server).chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES))
    assert records == () and server.requests == 1


def test_recorded_stream_replays_as_a_stream(server, tmp_path):
    cache = use_cache(tmp_path / "cache", "readwrite")
    client = openai_client(server)

    def read() -> str:
        stream = client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True})
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert in_case(read)[0] == "four it is"
    cache.flush()
    (entry,) = (tmp_path / "cache").rglob("*.json")
    assert json.loads(entry.read_text(encoding="utf-8"))["response"]["http"]["content_type"].startswith("text/event-stream")
    use_cache(tmp_path / "cache", "strict")
    server.reset()
    text, records, _ = in_case(read)
    assert text == "four it is" and server.requests == 0
    assert records[0].cached and records[0].output_tokens == 3


@pytest.mark.parametrize("child", [True, False], ids=["writer-process", "writer-thread"])
def test_async_sdk_calls_are_recorded_off_the_event_loop(server, tmp_path, monkeypatch, child):
    # The entry's file is written by the cache's writer process, or where that cannot run by
    # its writer thread: never on the event loop.
    import threading

    from pytest_llmeval.providers import cache as cache_module

    if not child:
        def no_process(root):
            raise OSError("no child processes here")

        monkeypatch.setattr(cache_module, "WriterProcess", no_process)
    cache = use_cache(tmp_path / "cache", "readwrite")
    writers: list[str] = []
    write = cache_module.write_batch

    def spy(root, batch):
        writers.extend(threading.current_thread().name for _ in batch)
        return write(root, batch)

    monkeypatch.setattr(cache_module, "write_batch", spy)

    async def call():
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY) as aclient:
            await aclient.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)
            return threading.current_thread().name

    loop_thread, records, _ = in_case(lambda: asyncio.run(call()))
    cache.flush()
    assert writers == ([] if child else [writers[0]]) and loop_thread not in writers
    assert cache.writes == 1 and records[0].output_tokens == 3
