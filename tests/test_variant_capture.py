"""A/B variants reach apps that call the SDKs: through real pytest runs with variants, the
loopback server sees each variant's model (and base URL, key), the report's per-variant
models, cost and tokens follow it, the cache keeps variants apart, and judge calls,
embeddings and calls of another protocol are left alone."""

from __future__ import annotations

import json

# Imported before any in-process pytester run (see tests/test_capture.py).
import anthropic
import openai
import pytest

from pytest_llmeval.providers import accounting, capture, runtime
from pytest_llmeval.testing import LoopbackLLMServer

APPS = {
    "openai": ("gpt-4o-mini", "gpt-4o", """
import openai
client = openai.OpenAI(base_url=os.environ["LOOPBACK_BASE_URL"], api_key="sk-app-key-0123456789")
def app(question):
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    return answer.choices[0].message.content
"""),
    "openai_async": ("gpt-4o-mini", "gpt-4o", """
import openai
client = openai.AsyncOpenAI(base_url=os.environ["LOOPBACK_BASE_URL"], api_key="sk-app-key-0123456789")
async def app(question):
    answer = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    return answer.choices[0].message.content
"""),
    "anthropic": ("claude-sonnet-4-20250514", "claude-3-5-haiku-20241022", """
import anthropic
client = anthropic.Anthropic(base_url=os.environ["LOOPBACK_BASE_URL"].removesuffix("/v1"), api_key="sk-ant-app-0123456789")
def app(question):
    answer = client.messages.create(model="claude-sonnet-4-20250514", max_tokens=64, messages=[{"role": "user", "content": question}])
    return answer.content[0].text
"""),
    "anthropic_async": ("claude-sonnet-4-20250514", "claude-3-5-haiku-20241022", """
import anthropic
client = anthropic.AsyncAnthropic(base_url=os.environ["LOOPBACK_BASE_URL"].removesuffix("/v1"), api_key="sk-ant-app-0123456789")
async def app(question):
    answer = await client.messages.create(model="claude-sonnet-4-20250514", max_tokens=64, messages=[{"role": "user", "content": question}])
    return answer.content[0].text
"""),
}
TEST = """
import os, pytest
{app}
@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], variants={variants})
def test_eval(llm_case, llm_eval):
    assert llm_eval.output == "yes " + (llm_eval.variant.model or {control!r})
"""
N = 4
# USD per million tokens: the variant's model costs 10x the app's own.
PRICES = "[pytest]\nllm_eval_prices =\n    {control} = 1 / 2\n    {variant} = 10 / 20\n"


@pytest.fixture
def server(monkeypatch):
    with LoopbackLLMServer(lambda request: "yes " + request["model"]) as running:
        monkeypatch.setenv("LOOPBACK_BASE_URL", running.base_url)
        yield running


@pytest.fixture
def project(pytester, write_jsonl):
    def make(app: str, variants: dict) -> tuple[str, str]:
        control, variant, source = APPS[app]
        write_jsonl("data.jsonl", [{"id": f"c{i}", "inputs": {"question": f"question number {i}"}, "expected": "yes"}
                                   for i in range(N)])
        pytester.makepyfile(test_eval=TEST.format(app=source, variants=repr(variants), control=control))
        pytester.makeini(PRICES.format(control=control, variant=variant))
        return control, variant

    return make


def run(pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    path = pytester.path / "r.json"
    result = pytester.runpytest("--llm-eval", f"--llm-eval-report={path}", *args)
    return result, json.loads(path.read_text(encoding="utf-8"))


def by_variant(report: dict) -> dict[str, dict]:
    return {s["variant"]: s for s in report["suites"]}


@pytest.mark.parametrize("app", list(APPS))
def test_the_variant_model_reaches_the_server_and_the_per_variant_cost(pytester, project, server, app):
    control, variant = APPS[app][:2]
    provider = "anthropic" if app.startswith("anthropic") else "openai"
    project(app, {"control": {}, "big": {"model": variant}})
    result, report = run(pytester)
    result.assert_outcomes(passed=2 * N + 3)  # both variants' cases, their gate items, the comparison
    assert sorted(body["model"] for body in server.received) == sorted([control] * N + [variant] * N)
    suites = by_variant(report)
    assert suites["control"]["models"] == [f"{provider}:{control}"]
    assert suites["big"]["models"] == [f"{provider}:{variant}"]
    # 3 prompt words in, 2 answer words out at the loopback server, priced by the ini lines
    assert suites["control"]["usage"]["cost_mean"] == pytest.approx((3 * 1 + 2 * 2) / 1e6)
    assert suites["big"]["usage"]["cost_mean"] == pytest.approx((3 * 10 + 2 * 20) / 1e6)
    assert suites["big"]["usage"]["input_tokens"] == suites["control"]["usage"]["input_tokens"] == 3 * N
    cost = next(r for r in suites["big"]["comparison"]["resources"] if r["name"] == "cost")
    assert cost["label"] == "more expensive" and cost["relative"] == pytest.approx(9.0)
    assert all(g["name"] != "applied" for g in suites["big"]["comparison"]["gates"])  # the setting reached the app


def test_replay_keeps_variants_apart_and_the_recordings_name_the_variant(pytester, project, server):
    _, variant = project("openai", {"control": {}, "big": {"model": "gpt-4o"}, "same": {"model": "gpt-4o"}})
    result, _ = run(pytester, "--llm-eval-cache=readwrite")
    result.assert_outcomes(passed=3 * N + 5)
    assert server.requests == 3 * N  # "same" sends what "big" sends, but records under its own key
    entries = [json.loads(p.read_text(encoding="utf-8")) for p in (pytester.path / ".llm-eval" / "cache").rglob("*.json")]
    assert len(entries) == 3 * N
    assert len({e["request"]["variant"] for e in entries}) == 3
    assert sorted(e["request"]["body"]["model"] for e in entries).count(variant) == 2 * N
    server.reset()
    result, report = run(pytester, "--llm-eval-cache=strict")
    result.assert_outcomes(passed=3 * N + 5)
    assert server.requests == 0
    assert by_variant(report)["big"]["models"] == ["openai:gpt-4o"]


def test_a_variant_base_url_and_key_move_the_sdk_call_to_another_server(pytester, project, server, monkeypatch):
    monkeypatch.setenv("VARIANT_KEY", "sk-variant-key-9876543210\n")  # stripped, as for the plugin's clients
    with LoopbackLLMServer(lambda request: "yes " + request["model"]) as other:
        project("anthropic", {"control": {}, "local": {"base_url": other.base_url, "api_key_env": "VARIANT_KEY"}})
        run(pytester)[0].assert_outcomes(passed=2 * N + 3)
        assert server.requests == N and other.requests == N
        assert {h.get("authorization") for h in other.received_headers} == {"Bearer sk-variant-key-9876543210"}
        assert {h.get("authorization") for h in server.received_headers} == {"Bearer sk-ant-app-0123456789"}


def test_a_variant_of_the_other_protocol_is_not_applied_and_the_comparison_says_so(pytester, project, server):
    project("openai", {"control": {}, "claude": {"provider": "anthropic", "model": "claude-3-5-haiku-20241022"}})
    result, report = run(pytester)
    result.assert_outcomes(passed=N + 2, failed=N + 1)  # the app kept gpt-4o-mini: the claude items and the comparison fail
    assert {body["model"] for body in server.received} == {"gpt-4o-mini"}
    result.stdout.fnmatch_lines(["*variant claude sets model claude-3-5-haiku-20241022, but its cases called openai:gpt-4o-mini*"])


# --------------------------------------------------------------------------- in process


@pytest.fixture
def captured():
    capture.enable()
    yield
    capture.disable()
    runtime.set_defaults(runtime.Defaults())


def test_judge_calls_and_embeddings_keep_their_model(captured, server):
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test-0123456789")
    ledger = accounting.Ledger("case 'c1'")
    with runtime.use_variant("v1", {"model": "gpt-4o"}), accounting.use_ledger(ledger):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        client.embeddings.create(model="text-embedding-3-small", input="hi")
        with accounting.call_kind("judge"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "judge"}])
    assert [b["model"] for b in server.received] == ["gpt-4o", "text-embedding-3-small", "gpt-4o-mini"]
    assert [(r.kind, r.model) for r in ledger.records] == [
        ("app", "gpt-4o"), ("app", "text-embedding-3-small"), ("judge", "gpt-4o-mini")]


def test_a_streamed_async_call_is_rewritten_and_counted(captured, server):
    import asyncio

    async def main():
        client = anthropic.AsyncAnthropic(base_url=server.url, api_key="sk-ant-test-0123456789")
        async with client.messages.stream(model="claude-sonnet-4-20250514", max_tokens=32,
                                          messages=[{"role": "user", "content": "one two three"}]) as stream:
            return await stream.get_final_text()

    ledger = accounting.Ledger("case 'c1'")
    with runtime.use_variant("v1", {"model": "claude-3-5-haiku-20241022"}), accounting.use_ledger(ledger):
        text = asyncio.run(main())
    assert text == "yes claude-3-5-haiku-20241022"
    (record,) = ledger.records
    assert (record.model, record.input_tokens, record.output_tokens) == ("claude-3-5-haiku-20241022", 3, 2)
