"""OpenTelemetry GenAI spans as a second usage source (providers/otel.py): real
opentelemetry-sdk spans emitted inside pytester eval runs are counted against their case,
never twice when the HTTP capture already saw the call, and only with ``llm_eval_otel``."""

from __future__ import annotations

import json

# Imported before any in-process pytester run: those runs restore sys.modules, and a
# second copy of opentelemetry.trace would hold a second global tracer provider.
import openai  # noqa: F401
import opentelemetry.sdk.trace  # noqa: F401
import opentelemetry.trace  # noqa: F401
import pytest

from pytest_llmeval.providers import otel
from pytest_llmeval.testing import LoopbackLLMServer

SPANS = """
import os, asyncio, pytest
from opentelemetry import trace

tracer = trace.get_tracer("my-framework")  # no provider set by the app: the plugin sets one

def model_span(name, operation, inputs, outputs, model="span-model", **extra):
    span = tracer.start_as_current_span(f"{{operation}} {{model}}", attributes={{
        "gen_ai.operation.name": operation, "gen_ai.provider.name": "my-provider", "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": inputs, "gen_ai.usage.output_tokens": outputs, **extra}})
    return span

{app}

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
def test_eval(llm_case, llm_eval):
    pass
"""
APPS = {
    # one model call a framework reports only as a span (no HTTP the capture sees)
    "span": """
async def app(question):
    with model_span("chat", "chat", 10, 5):
        await asyncio.sleep(0.01)
    return "yes"
""",
    # an agent span around two model calls: the agent's own usage attributes are not counted
    "agent": """
def app(question):
    with tracer.start_as_current_span("invoke_agent", attributes={"gen_ai.operation.name": "invoke_agent",
                                                                   "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 1000}):
        with model_span("chat", "chat", 10, 5):
            pass
        with model_span("chat", "chat", 20, 2, **{"gen_ai.usage.cache_read.input_tokens": 8}):
            pass
    return "yes"
""",
    # a framework's model span around an instrumentor's model span: the inner one counts
    "nested": """
def app(question):
    with model_span("outer", "chat", 100, 50):
        with model_span("inner", "chat", 10, 5):
            pass
    return "yes"
""",
    # an SDK call the capture counts, inside an instrumentor's span that reports other numbers
    "sdk": """
import openai
client = openai.OpenAI(base_url=os.environ["LOOPBACK_BASE_URL"], api_key="sk-test-0123456789abcdef")
def app(question):
    with tracer.start_as_current_span("invoke_agent", attributes={"gen_ai.operation.name": "invoke_agent"}):
        with model_span("chat", "chat", 999, 999, model="gpt-4o-mini"):
            answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    return answer.choices[0].message.content
""",
    # the plugin's own client inside a framework's span: counted once, by the client
    "client": """
from pytest_llmeval.providers import ChatClient
client = ChatClient(base_url=os.environ["LOOPBACK_BASE_URL"], model="gpt-4o-mini", api_key_env="NO_SUCH_KEY")
def app(question):
    with model_span("chat", "chat", 999, 999, model="gpt-4o-mini"):
        return client.complete(question)
""",
}
INI = "[pytest]\nllm_eval_otel = {otel}\nllm_eval_prices =\n    span-model = 1 / 2\n    gpt-4o-mini = 1 / 2\n"


@pytest.fixture
def server(monkeypatch):
    with LoopbackLLMServer(lambda request: "yes it is") as running:
        monkeypatch.setenv("LOOPBACK_BASE_URL", running.base_url)
        yield running


@pytest.fixture
def project(pytester, write_jsonl):
    def make(app: str, n: int = 3, otel_on: bool = True) -> None:
        write_jsonl("data.jsonl", [{"id": f"c{i}", "inputs": {"question": f"question number {i}"}, "expected": "yes"} for i in range(n)])
        pytester.makepyfile(test_eval=SPANS.format(app=APPS[app]))
        pytester.makeini(INI.format(otel="true" if otel_on else "false"))

    return make


def run(pytester, *args: str, n: int = 3) -> dict:
    path = pytester.path / "r.json"
    result = pytester.runpytest("--llm-eval", f"--llm-eval-report={path}", *args)
    result.assert_outcomes(passed=n + 1)
    return json.loads(path.read_text(encoding="utf-8"))


def app_usage(report: dict) -> list[tuple[int, int, int, float]]:
    return [(c["usage"]["app"]["calls"], c["usage"]["app"]["input_tokens"], c["usage"]["app"]["output_tokens"],
             c["usage"]["app"]["cost"]) for c in report["suites"][0]["cases"]]


def test_a_span_only_model_call_is_counted_against_its_case_with_its_price(pytester, project):
    project("span")
    report = run(pytester)
    assert app_usage(report) == [(1, 10, 5, pytest.approx((10 * 1 + 5 * 2) / 1e6))] * 3
    usage = report["suites"][0]["usage"]
    assert usage["calls"] == 3 and usage["input_tokens"] == 30 and usage["cost_total"] == pytest.approx(60e-6)
    assert report["suites"][0]["models"] == ["my-provider:span-model"]


def test_agent_spans_are_not_model_calls_and_cache_reads_are_kept(pytester, project):
    project("agent")
    report = run(pytester)
    # 10/5 and 20/2 (8 of the 20 read from the cache, priced at the input rate by the override)
    assert app_usage(report) == [(2, 30, 7, pytest.approx((30 * 1 + 7 * 2) / 1e6))] * 3
    assert report["suites"][0]["usage"]["cached_input_tokens"] == 24


def test_a_model_span_around_a_counted_span_is_not_counted_again(pytester, project):
    project("nested")
    assert app_usage(run(pytester)) == [(1, 10, 5, pytest.approx(20e-6))] * 3


@pytest.mark.parametrize("app", ["sdk", "client"])
def test_a_call_the_capture_counted_is_not_counted_again_from_its_span(pytester, project, server, app):
    project(app)
    report = run(pytester)
    assert server.requests == 3
    # the loopback server's usage (3 words in, 3 out), not the span's 999/999
    assert app_usage(report) == [(1, 3, 3, pytest.approx((3 * 1 + 3 * 2) / 1e6))] * 3


def test_spans_count_under_xdist_too(pytester, project):
    project("span", n=6)
    report = run(pytester, "-n", "2", n=6)
    assert report["suites"][0]["usage"]["calls"] == 6 and report["suites"][0]["usage"]["output_tokens"] == 30


def test_spans_are_not_read_without_the_ini_key(pytester, project):
    project("span", otel_on=False)
    report = run(pytester)
    assert report["suites"][0]["usage"]["calls"] == 0


@pytest.mark.parametrize(("attributes", "expected"), [
    ({"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 4},
     ("m", 4, 0, False)),  # no output tokens: usage unknown, cost unknown
    ({"gen_ai.system": "anthropic", "gen_ai.request.model": "m", "gen_ai.response.model": "m-2025",
      "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2, "gen_ai.usage.cache_read.input_tokens": 50},
     ("m-2025", 60, 2, True)),  # cache reads reported apart from input_tokens are added to them
    ({"gen_ai.operation.name": "execute_tool", "gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 1}, None),
    ({"http.method": "POST"}, None),
])
def test_record_of_reads_the_semantic_conventions(attributes, expected):
    record = otel.record_of(attributes, kind="app", latency_ms=5.0, failed=None)
    if expected is None:
        assert record is None
        return
    assert (record.model, record.input_tokens, record.output_tokens, record.usage_known) == expected
    assert record.source == "otel" and record.latency_ms == 5.0
    if not record.usage_known:
        assert record.cost is None  # unknown, never $0
    if "gen_ai.system" in attributes:
        assert record.provider == "anthropic" and record.cached_input_tokens == 50


def test_a_failed_span_is_an_errored_call():
    record = otel.record_of({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}, kind="judge", latency_ms=1.0,
                            failed="timeout")
    assert (record.kind, record.error, record.cost, record.usage_known) == ("judge", "timeout", 0.0, True)
