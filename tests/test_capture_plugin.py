"""SDK-based apps in real eval runs: the same per-case tokens and cost as the plugin's own
client, cost budgets that fail, strict replay with no request, unknown usage that is said,
and the ``llm_eval_capture`` switch."""

from __future__ import annotations

import json
import os

# Imported before any in-process pytester run (see tests/test_capture.py).
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest
from conftest import junit_cases

from pytest_llmeval.testing import LoopbackLLMServer

APPS = {
    "client": """
from pytest_llmeval.providers import ChatClient
client = ChatClient(base_url=os.environ["LOOPBACK_BASE_URL"], model="gpt-4o-mini", api_key_env="NO_SUCH_KEY")
def app(question):
    return client.complete(question)
""",
    "openai": """
import openai
client = openai.OpenAI(base_url=os.environ["LOOPBACK_BASE_URL"], api_key="sk-test-0123456789abcdef")
def app(question):
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    return answer.choices[0].message.content
""",
    "openai_async": """
import openai
client = openai.AsyncOpenAI(base_url=os.environ["LOOPBACK_BASE_URL"], api_key="sk-test-0123456789abcdef")
async def app(question):
    answer = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    return answer.choices[0].message.content
""",
    "anthropic": """
import anthropic
client = anthropic.Anthropic(base_url=os.environ["LOOPBACK_BASE_URL"].removesuffix("/v1"), api_key="sk-ant-test-0123456789")
def app(question):
    answer = client.messages.create(model="claude-sonnet-4-20250514", max_tokens=64, messages=[{"role": "user", "content": question}])
    return answer.content[0].text
""",
}
TEST = """
import os, pytest
{app}
@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"]{extra})
def test_eval(llm_case, llm_eval):
    pass
"""


@pytest.fixture
def server(monkeypatch):
    with LoopbackLLMServer(lambda request: "yes it is") as running:
        monkeypatch.setenv("LOOPBACK_BASE_URL", running.base_url)
        yield running


@pytest.fixture
def project(pytester, write_jsonl):
    def make(app: str, n: int = 4, extra: str = "") -> None:
        write_jsonl("data.jsonl", [{"id": f"c{i:03d}", "inputs": {"question": f"question number {i}"}, "expected": "yes"} for i in range(n)])
        pytester.makepyfile(test_eval=TEST.format(app=APPS[app], extra=extra))

    return make


def report(pytester, name: str = "r.json") -> dict:
    return json.loads((pytester.path / name).read_text(encoding="utf-8"))


def case_usage(doc: dict) -> dict[str, tuple[int, int, float]]:
    return {c["case_id"]: (c["usage"]["app"]["input_tokens"], c["usage"]["app"]["output_tokens"], c["usage"]["app"]["cost"])
            for c in doc["suites"][0]["cases"]}


def test_each_sdk_gives_the_same_per_case_tokens_and_cost_as_the_plugin_client(pytester, project, server):
    project("client")
    pytester.runpytest("--llm-eval", "--llm-eval-report=r.json").assert_outcomes(passed=5)
    expected = case_usage(report(pytester))
    assert all(tokens[0] == 3 and tokens[1] == 3 and tokens[2] > 0 for tokens in expected.values())
    for app in ("openai", "openai_async"):
        project(app)
        server.reset()
        pytester.runpytest("--llm-eval", "--llm-eval-report=r.json").assert_outcomes(passed=5)
        assert server.requests == 4
        got = case_usage(report(pytester))
        assert got.keys() == expected.keys()
        for case_id, (tokens_in, tokens_out, cost) in got.items():
            assert (tokens_in, tokens_out) == expected[case_id][:2] and cost == pytest.approx(expected[case_id][2]), app
    doc = report(pytester)
    assert doc["run"]["prices"]["library"] == "genai-prices" and doc["run"]["prices"]["date"]


def test_a_cost_budget_fails_for_sdk_calls(pytester, project, server):
    project("anthropic", extra=', budgets={"max_cost_per_case": 1e-7}')
    result = pytester.runpytest("--llm-eval", "--junitxml=junit.xml")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["*cost_per_case: cost per case $0.0000* mean * > budget $0.000000  FAIL*"])
    gate = junit_cases(pytester.path / "junit.xml")["llm_eval_gate[cost_per_case]"]
    assert gate["failure"] is not None


def test_strict_replay_of_an_sdk_suite_makes_no_request_on_any_port(pytester, project, server, monkeypatch):
    project("openai", n=6)
    pytester.runpytest("--llm-eval", "--llm-eval-cache=readwrite").assert_outcomes(passed=7)
    assert server.requests == 6
    with LoopbackLLMServer(lambda request: "no") as other:  # another port: recordings still match
        monkeypatch.setenv("LOOPBACK_BASE_URL", other.base_url)
        result = pytester.runpytest("--llm-eval", "--llm-eval-cache=strict", "--llm-eval-report=r.json", "-n", "2")
        result.assert_outcomes(passed=7)
        assert other.requests == 0
    usage = report(pytester)["suites"][0]["usage"]
    assert usage["cached_calls"] == usage["calls"] == 6 and usage["cost_total"] == 0.0


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_cost_and_latency_budgets_are_not_judged_on_a_replay(pytester, project, server, xdist):
    """A replay pays nothing and waits for no provider: its $0 is no evidence for a cost
    budget, nor its latency for a latency budget. The token budgets still hold (recordings
    keep the tokens). The live run judged the same budgets (and failed the cost one)."""
    budgets = '{"max_cost_per_case": 1e-7, "max_latency_p95_ms": 60000, "max_output_tokens_increase": 0.5}'
    project("openai", n=3, extra=f", budgets={budgets}")
    live = pytester.runpytest("--llm-eval", "--llm-eval-update", "--llm-eval-cache=readwrite", *xdist)
    live.assert_outcomes(passed=4 + 1, failed=1)  # cost over budget; latency within
    result = pytester.runpytest("--llm-eval", "--llm-eval-cache=strict", "--junitxml=junit.xml", "--llm-eval-report=r.json",
                                "--llm-eval-markdown=s.md", *xdist)
    result.assert_outcomes(passed=4 + 2, skipped=2)  # cases, contains, output + input token growth; cost, latency
    result.stdout.fnmatch_lines([
        "*cost_per_case: cost per case (budget $0.000000) not judged: 3 of 3 calls were replayed from the cache, which "
        "costs nothing and does not wait for the provider; judged on live runs  NOT JUDGED",
        "*latency_p95: latency p95 (budget 60000 ms) not judged: 3 app call(s) were replayed from the cache, which does "
        "not wait for the provider; judged on live runs  NOT JUDGED"])
    gates = {g["name"]: g["verdict"] for g in report(pytester)["suites"][0]["usage_gates"]}
    assert gates == {"cost_per_case": "not judged", "latency_p95": "not judged", "output_tokens_increase": "pass",
                     "input_tokens_increase": "pass"}
    junit = junit_cases(pytester.path / "junit.xml")["llm_eval_gate[cost_per_case]"]
    assert junit["failure"] is None and junit["error"] is None
    assert "replayed from the cache" in (pytester.path / "s.md").read_text(encoding="utf-8")


def test_strict_replay_without_a_recording_errors_each_case_and_calls_nothing(pytester, project, server):
    project("openai", n=3)
    result = pytester.runpytest("--llm-eval", "--llm-eval-cache=strict", "-rE")
    result.assert_outcomes(errors=3, failed=1)
    assert server.requests == 0
    result.stdout.fnmatch_lines([
        "*case 'c000': app raised CacheMissError: case 'c000': not in the cache (strict replay): "
        "openai POST /v1/chat/completions model gpt-4o-mini, key *; record it with --llm-eval-cache=readwrite*",
    ])


def test_unknown_usage_is_not_judged_and_not_blessed_as_zero(pytester, project, server):
    server.reshape = lambda request, payload: {k: v for k, v in payload.items() if k != "usage"}
    project("openai", n=3, extra=', budgets={"max_cost_per_case": 1e-7}')
    result = pytester.runpytest("--llm-eval", "--llm-eval-update", "--junitxml=junit.xml", "--llm-eval-report=r.json")
    result.stdout.fnmatch_lines([
        "*usage: cost unknown, usage unknown for 3 of 3 calls; tokens 0 in / 0 out*",
        "*cost_per_case: cost per case (budget $0.000000) not judged: usage unknown for 3 of 3 calls*NOT JUDGED*",
    ])
    result.assert_outcomes(passed=4, skipped=1)  # token budgets: no comparison in an update run
    gates = report(pytester)["suites"][0]["usage_gates"]
    assert [(g["name"], g["verdict"]) for g in gates] == [("cost_per_case", "not judged")]
    junit = junit_cases(pytester.path / "junit.xml")["llm_eval_gate[cost_per_case]"]
    assert junit["failure"] is None and junit["error"] is None
    baseline = json.loads((pytester.path / ".llm-eval/test_eval.py/test_eval.json").read_text(encoding="utf-8"))
    assert all(not case.get("usage") for case in baseline["cases"].values())  # no invented zeros

    # A later run with usage known: token growth has nothing to compare against, never "+inf%".
    server.reshape = None
    result = pytester.runpytest("--llm-eval")
    result.assert_outcomes(passed=4, failed=1)  # the cost budget, judged now
    result.stdout.fnmatch_lines(["*cost_per_case: cost per case $0.0000* > budget*FAIL*"])
    result.stdout.no_fnmatch_line("*tokens_increase*")
    result.stdout.no_fnmatch_line("*inf%*")


def test_capture_can_be_switched_off(pytester, project, server):
    project("openai", n=2)
    pytester.makeini("[pytest]\nllm_eval_capture = false\n")
    pytester.runpytest("--llm-eval", "--llm-eval-report=r.json").assert_outcomes(passed=3)
    assert server.requests == 2
    assert report(pytester)["suites"][0]["usage"]["calls"] == 0


@pytest.fixture
def no_price_library(monkeypatch):
    """A core install: genai-prices cannot be imported, so only overridden models are priced."""
    import sys

    from pytest_llmeval.providers import pricing

    monkeypatch.setitem(sys.modules, "genai_prices", None)
    pricing._library_price.cache_clear()  # prices an earlier run looked up
    yield
    pricing._library_price.cache_clear()


def test_all_calls_unpriced_is_cost_unknown_never_zero_and_the_budget_is_not_judged(pytester, project, server, no_price_library):
    project("openai", n=3, extra=', budgets={"max_cost_per_case": 1e-7}')
    result = pytester.runpytest("--llm-eval", "--junitxml=junit.xml", "--llm-eval-report=r.json", "--llm-eval-markdown=s.md",
                                "--llm-eval-html=r.html")
    result.assert_outcomes(passed=4, skipped=1)
    result.stdout.fnmatch_lines([
        "*usage: cost unknown (3 calls unpriced: gpt-4o-mini); tokens 9 in / 9 out*",
        "*cost_per_case: cost per case (budget $0.000000) not judged: cost unknown: 3 of 3 calls unpriced (gpt-4o-mini: "
        "no price in the table; add one with llm_eval_prices)  NOT JUDGED",
    ])
    result.stdout.no_fnmatch_line("*cost $0.000000*")
    doc = report(pytester)
    usage = doc["suites"][0]["usage"]
    assert usage["unpriced_calls"] == 3 and usage["unpriced_models"] == ["gpt-4o-mini"]
    assert [c["usage"]["app"]["unpriced_calls"] for c in doc["suites"][0]["cases"]] == [1, 1, 1]
    assert [(g["name"], g["verdict"]) for g in doc["suites"][0]["usage_gates"]] == [("cost_per_case", "not judged")]
    markdown = (pytester.path / "s.md").read_text(encoding="utf-8")
    assert "Cost unknown (3 calls unpriced)" in markdown and "Cost $" not in markdown
    junit = junit_cases(pytester.path / "junit.xml")
    assert junit["llm_eval_gate[cost_per_case]"]["failure"] is None and junit["llm_eval_gate[cost_per_case]"]["error"] is None
    assert junit["test_eval[c000]"]["properties"]["llm_eval.app.cost"] == "unknown"
    assert "unknown (3 calls unpriced or without usage)" in (pytester.path / "r.html").read_text(encoding="utf-8")


def test_some_calls_unpriced_is_a_lower_bound_that_fails_only_when_already_over(pytester, write_jsonl, server, no_price_library):
    write_jsonl("data.jsonl", [{"id": f"c{i}", "inputs": {"question": "one two three"}, "expected": "yes"} for i in range(2)])
    pytester.makepyfile(test_eval="""
        import os, pytest, openai
        client = openai.OpenAI(base_url=os.environ["LOOPBACK_BASE_URL"], api_key="sk-test-0123456789abcdef")
        def app(question):
            for model in ("priced-model", "gpt-4o-mini"):
                answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}])
            return answer.choices[0].message.content
        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"],
                              budgets={"max_cost_per_case": float(os.environ["BUDGET"])})
        def test_eval(llm_case, llm_eval):
            pass
        """)
    pytester.makeini("[pytest]\nllm_eval_prices =\n    priced-model = 100 / 100\n")
    # priced-model: 3 in + 3 out tokens at $100 per million = $0.0006 per case, the other call unpriced
    os.environ["BUDGET"] = "0.01"
    try:
        result = pytester.runpytest("--llm-eval", "--llm-eval-markdown=s.md")
        result.assert_outcomes(passed=3, skipped=1)
        result.stdout.fnmatch_lines([
            "*usage: cost at least $0.001200 ($0.000600/case, p95 $0.000600), 2 calls unpriced: gpt-4o-mini; *",
            "*cost_per_case: cost per case (budget $0.0100) not judged: cost unknown: 2 of 4 calls unpriced*NOT JUDGED",
        ])
        assert "Cost at least $0.001200 ($0.000600/case), 2 calls unpriced" in (pytester.path / "s.md").read_text(encoding="utf-8")
        os.environ["BUDGET"] = "0.0001"
        result = pytester.runpytest("--llm-eval")
        result.assert_outcomes(passed=3, failed=1)
        result.stdout.fnmatch_lines([
            "*cost_per_case: cost per case at least $0.000600 mean (cost unknown for 2 of 4 calls) > budget $0.000100  FAIL",
        ])
    finally:
        del os.environ["BUDGET"]
