"""Capture of calls made through litellm and LangChain (ChatOpenAI, ChatAnthropic): the same
per-case tokens and cost as the plugin's own client, and strict replay without a request."""

from __future__ import annotations

import asyncio

import litellm
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from test_capture import ANTHROPIC_MODEL, KEY, MESSAGES, OPENAI_MODEL, QUESTION, in_case, reference, same_usage, use_cache

from pytest_llmeval.providers import capture, runtime
from pytest_llmeval.testing import LoopbackLLMServer


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


def test_litellm_sync_and_async(server):
    expected = reference(server, "openai", OPENAI_MODEL)
    answer, records, _ = in_case(lambda: litellm.completion(
        model=f"openai/{OPENAI_MODEL}", api_base=server.base_url, api_key=KEY, messages=MESSAGES))
    assert answer.choices[0].message.content == "four it is"
    assert len(records) == 1
    same_usage(records[0], expected)

    answer, records, _ = in_case(lambda: asyncio.run(litellm.acompletion(
        model=f"openai/{OPENAI_MODEL}", api_base=server.base_url, api_key=KEY, messages=MESSAGES)))
    assert answer.choices[0].message.content == "four it is"
    assert len(records) == 1
    same_usage(records[0], expected)


def test_litellm_anthropic(server):
    expected = reference(server, "anthropic", ANTHROPIC_MODEL)
    answer, records, _ = in_case(lambda: litellm.completion(
        model=f"anthropic/{ANTHROPIC_MODEL}", api_base=server.url, api_key=KEY, messages=MESSAGES, max_tokens=64))
    assert answer.choices[0].message.content == "four it is"
    assert len(records) == 1
    same_usage(records[0], expected)


def test_langchain_chat_models(server):
    expected = reference(server, "openai", OPENAI_MODEL)
    model = ChatOpenAI(model=OPENAI_MODEL, base_url=server.base_url, api_key=KEY, max_retries=0)
    answer, records, _ = in_case(lambda: model.invoke(QUESTION))
    assert answer.content == "four it is"
    assert len(records) == 1
    same_usage(records[0], expected)

    expected = reference(server, "anthropic", ANTHROPIC_MODEL)
    claude = ChatAnthropic(model=ANTHROPIC_MODEL, base_url=server.url, api_key=KEY, max_tokens=64, max_retries=0)
    answer, records, _ = in_case(lambda: claude.invoke(QUESTION))
    assert answer.content == "four it is"
    assert len(records) == 1
    same_usage(records[0], expected)


def test_strict_replay_of_litellm_and_langchain_makes_no_request(server, tmp_path):
    use_cache(tmp_path / "cache", "readwrite")
    calls = [
        lambda url: litellm.completion(model=f"openai/{OPENAI_MODEL}", api_base=url + "/v1", api_key=KEY, messages=MESSAGES).choices[0].message.content,
        lambda url: ChatOpenAI(model=OPENAI_MODEL, base_url=url + "/v1", api_key=KEY).invoke(QUESTION).content,
    ]
    for call in calls:
        assert in_case(lambda: call(server.url))[0] == "four it is"
    use_cache(tmp_path / "cache", "strict")
    with LoopbackLLMServer() as other:
        for call in calls:
            text, records, _ = in_case(lambda: call(other.url))
            assert text == "four it is" and records[0].cached
        assert other.requests == 0
