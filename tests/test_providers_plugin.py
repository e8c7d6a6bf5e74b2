"""Model calls inside real eval runs, against the loopback server: concurrency, faults,
record/replay, usage accounting, the token budget against the baseline, and secrets."""

from __future__ import annotations

import json

import pytest
from conftest import junit_cases

from pytest_llmeval.testing import Faults, LoopbackLLMServer

APP = """
import os, pytest
from pytest_llmeval.providers import ChatClient

client = ChatClient(base_url=os.environ["LOOPBACK_BASE_URL"], model="gpt-4o-mini", max_retries=6, backoff_base=0.01, timeout=5)

def app(question):
    return client.complete(os.environ.get("PROMPT_PREFIX", "") + question)

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"]{extra})
def test_eval(llm_case, llm_eval):
    pass
"""


def answer(request: dict) -> str:
    question = request["messages"][-1]["content"]
    words = "yes " + question.removeprefix("verbose ")
    return f"{words} {words}" if question.startswith("verbose ") else words  # verbose: twice the tokens


@pytest.fixture
def server(monkeypatch):
    with LoopbackLLMServer(answer) as running:
        monkeypatch.setenv("LOOPBACK_BASE_URL", running.base_url)
        yield running


@pytest.fixture
def project(pytester, write_jsonl):
    def make(n: int, extra: str = "") -> None:
        write_jsonl("data.jsonl", [{"id": f"c{i:03d}", "inputs": {"question": f"question {i}"}, "expected": "yes"} for i in range(n)])
        pytester.makepyfile(test_eval=APP.format(extra=extra))

    return make


def test_app_calls_run_concurrently_and_items_report_in_order(pytester, project, server):
    project(40)
    server.latency = 0.2
    # -p no:randomly: the order asserted below is the collection order (randomly shuffles it).
    result = pytester.runpytest("--llm-eval", "--llm-eval-concurrency", "8", "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=41)
    assert server.requests == 40
    assert server.max_in_flight >= 6  # 8 allowed; the sequential plugin would show 1
    ran = [line.split()[0] for line in result.outlines if line.startswith("test_eval.py::test_eval[")]
    assert ran == [f"test_eval.py::test_eval[c{i:03d}]" for i in range(40)]
    result.stdout.fnmatch_lines(["*usage: cost $0.0000* (*/case, p95 *); tokens * in / * out (* out/case); calls 40; latency p50 2* ms*"])


def test_provider_faults_end_as_scored_cases_or_errors_with_their_cause(pytester, project, server):
    project(300)
    server.faults = Faults(rate_429=0.10, retry_after=0, rate_500=0.05, seed=7)
    result = pytester.runpytest("--llm-eval", "--junitxml=junit.xml")
    cases = {name: case for name, case in junit_cases(pytester.path / "junit.xml").items() if name.startswith("test_eval[")}
    assert len(cases) == 300
    for case in cases.values():
        props = case["properties"]
        assert "llm_eval.contains" in props or "HTTP" in props.get("llm_eval.error", "")
    result.stdout.fnmatch_lines(["*retries * (rate_limit *, server_error *)*"])


def test_exhausted_retries_make_an_error_with_the_provider_status(pytester, project, server):
    project(3)
    server.faults = Faults(fail_first=100, fail_status=503)
    result = pytester.runpytest("--llm-eval", "-rE")
    result.assert_outcomes(errors=3, failed=1)  # the contains gate: no case produced a score
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.fnmatch_lines(["*app raised ServerError: openai gpt-4o-mini at http://127.0.0.1:*/v1: HTTP 503:*(after 7 attempts)*"])
    result.stdout.fnmatch_lines(["*errors 100.0% (server_error 3)*"])


def test_replay_from_the_cache_makes_no_requests_and_gives_the_same_scores(pytester, project, server):
    project(20)
    first = pytester.runpytest("--llm-eval", "--llm-eval-cache", "readwrite", "--junitxml=first.xml")
    assert first.ret == 0 and server.requests == 20
    server.reset()
    second = pytester.runpytest("--llm-eval", "--llm-eval-cache", "strict", "--junitxml=second.xml")
    assert second.ret == 0
    assert server.requests == 0
    second.stdout.fnmatch_lines(["*calls 20 (20 from cache)*"])
    a, b = junit_cases(pytester.path / "first.xml"), junit_cases(pytester.path / "second.xml")
    for name in a:
        if name.startswith("test_eval["):
            assert a[name]["properties"]["llm_eval.contains"] == b[name]["properties"]["llm_eval.contains"]
            assert b[name]["properties"]["llm_eval.app.cached_calls"] == "1"


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_a_recording_that_cannot_be_written_fails_the_run_and_says_which(pytester, project, server, xdist):
    project(3)
    (pytester.path / "recordings").write_text("a file where the cache folder should be")
    result = pytester.runpytest("--llm-eval", "--llm-eval-cache", "write", "-o", "llm_eval_cache_dir=recordings", *xdist)
    result.assert_outcomes(passed=4)  # the calls and the gate were fine...
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # ...but the recordings are not saved
    result.stdout.fnmatch_lines(["llm-eval: error: a recording was not saved: *recordings*: cannot write cache entry: *"])


def test_strict_replay_with_an_empty_cache_fails_cases_clearly(pytester, project, server):
    project(3)
    result = pytester.runpytest("--llm-eval", "--llm-eval-cache", "strict", "-rE")
    result.assert_outcomes(errors=3, failed=1)
    result.stdout.fnmatch_lines(["*not in the cache (strict replay): openai gpt-4o-mini*--llm-eval-cache=readwrite*"])
    assert server.requests == 0


def test_a_prompt_that_doubles_output_tokens_fails_the_token_budget(pytester, project, server, monkeypatch):
    project(30)
    assert pytester.runpytest("--llm-eval-update").ret == 0
    assert pytester.runpytest("--llm-eval").ret == 0
    monkeypatch.setenv("PROMPT_PREFIX", "verbose ")
    result = pytester.runpytest("--llm-eval", "--junitxml=junit.xml")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*mean output tokens per case 3.0 -> 6.0 (+100%) exceeds allowed increase 50%*"])
    gate = junit_cases(pytester.path / "junit.xml")["llm_eval_gate[output_tokens_increase]"]
    assert "exceeds allowed increase" in gate["failure"]
    assert float(gate["properties"]["llm_eval.increase"]) == pytest.approx(1.0)


def test_budgets_from_the_marker(pytester, project, server):
    project(10, extra=', budgets={"max_cost_per_case": 0.0000001, "max_error_rate": 0.0, "max_latency_p95_ms": 10000}')
    result = pytester.runpytest("--llm-eval")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*cost_per_case: cost per case $0.0000* mean * > budget $0.000000*FAIL*"])
    result.stdout.fnmatch_lines(["*error_rate: error rate 0.0% of 10 case(s) (none) <= budget 0.0%  pass*"])
    result.stdout.fnmatch_lines(["*latency_p95: latency p95 * ms * <= budget 10000 ms  pass*"])


def test_under_xdist_each_case_is_called_once(pytester, project, server):
    project(30)
    pytester.makepyfile(test_other="import pytest\n@pytest.mark.parametrize('x', range(10))\ndef test_x(x):\n    pass\n")
    result = pytester.runpytest("--llm-eval", "-n", "2")
    result.assert_outcomes(passed=30 + 10 + 1)
    assert server.requests == 30


def test_a_planted_api_key_appears_in_no_artifact(pytester, project, server, monkeypatch):
    key = "sk-planted-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    project(20)
    server.faults = Faults(rate_500=0.3, seed=3)
    outputs = [pytester.runpytest(*args) for args in (
        ("--llm-eval-update", "--llm-eval-cache", "readwrite", "--junitxml=junit.xml", "-rA"),
        ("--llm-eval", "--llm-eval-cache", "strict", "--junitxml=junit2.xml", "-rA", "-n", "2"),
    )]
    assert any(h.get("authorization") == f"Bearer {key}" for h in server.received_headers)  # the key was used
    for result in outputs:
        assert key not in "\n".join(result.outlines + result.errlines)
    files = [p for p in pytester.path.rglob("*") if p.is_file()]
    assert any(".llm-eval/cache" in str(p) for p in files) and any(p.name == "junit.xml" for p in files)
    for path in files:
        assert key not in path.read_text(errors="replace"), path


def test_marker_provider_settings_apply_to_bare_clients_in_the_suite(pytester, write_jsonl, server, monkeypatch):
    """A bare ChatClient() follows the suite: the marker's provider={...} over the ini."""
    write_jsonl("data.jsonl", [{"id": "c0", "inputs": {"question": "q"}, "expected": "yes"}])
    monkeypatch.delenv("LOOPBACK_BASE_URL")
    monkeypatch.setenv("LLM_EVAL_BASE_URL", server.base_url)
    pytester.makeini("[pytest]\nllm_eval_model = gpt-4o-mini\n")
    pytester.makepyfile(test_eval="""
        import pytest
        from pytest_llmeval.providers import ChatClient

        client = ChatClient()  # created at import: still follows each suite

        def app(question):
            return client.complete(question)

        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
        def test_default(llm_case, llm_eval):
            pass

        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], provider={"model": "claude-haiku-3.5"})
        def test_other_model(llm_case, llm_eval):
            pass

        @pytest.mark.llm_eval(dataset="data.jsonl", scorers=["contains"], provider={"model": "gpt-4o"})
        def test_body(llm_case, llm_eval):
            llm_eval.score(client.complete("q"))
    """)
    result = pytester.runpytest("--llm-eval", "--llm-eval-report=r.json", "-p", "no:randomly")
    assert result.ret == 0
    assert [body["model"] for body in server.received] == ["gpt-4o-mini", "claude-haiku-3.5", "gpt-4o"]
    report = json.loads((pytester.path / "r.json").read_text())
    assert {s["suite_id"].split("::")[1]: s["models"] for s in report["suites"]} == {
        "test_default": ["openai:gpt-4o-mini"], "test_other_model": ["openai:claude-haiku-3.5"], "test_body": ["openai:gpt-4o"]}


def test_unknown_marker_provider_setting_is_a_collection_error(pytester, write_jsonl, server):
    write_jsonl("data.jsonl", [{"id": "c0", "inputs": {"question": "q"}, "expected": "yes"}])
    pytester.makepyfile(test_eval=APP.format(extra=', provider={"modle": "x"}'))
    result = pytester.runpytest("--llm-eval")
    result.stdout.fnmatch_lines(["*provider=: unknown provider settings [[]'modle'[]]*"])
