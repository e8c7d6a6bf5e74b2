"""--llm-eval-routes: every model that gets traffic in the seed-shaped llmops-config.yaml
runs as a variant named after its route, through the same client, with a provider-parity
gate; llm-eval-check reads the per-model results from the same report."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import pytest
from conftest import junit_cases
from test_check_config import SEED

from pytest_llmeval.check.cli import main as check_main
from pytest_llmeval.testing import LoopbackLLMServer

N = 300
CONFIG = (SEED.replace("evals/golden-v3.jsonl", "data.jsonl")
          .replace("{correctness: 0.85, faithfulness: 0.90, relevance: 0.80}", "{contains: 0.8}")
          .replace("min_examples: 500", "min_examples: 200"))
APP = """
import os, pytest
from pytest_llmeval.providers import ChatClient

client = ChatClient(base_url=os.environ["LOOPBACK_BASE_URL"], model="gpt-4o")

def app(question):
    return client.complete(question)

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], thresholds={"contains": 0.8})
def test_golden(llm_case, llm_eval):
    pass
"""


def answer_with(degraded: str | None):
    def answer(request: dict) -> str:
        text = request["messages"][-1]["content"]
        i = int(text.split()[-1])
        wrong = request["model"] == degraded and i % 10 == 3  # 10 points worse
        return ("no" if wrong else "yes") + f" from {request['model']}"
    return answer


def golden_project(pytester, write_jsonl, monkeypatch, config: str, app: str, n: int = N):
    """A project on the loopback server (answering equally for every model until told
    otherwise): N golden rows, the config, the test module. Yields the server."""
    with LoopbackLLMServer(answer_with(None)) as server:
        monkeypatch.setenv("LOOPBACK_BASE_URL", server.base_url)
        write_jsonl("data.jsonl", [{"id": f"g{i:03d}", "inputs": {"question": f"question {i}"}, "expected": "yes"}
                                   for i in range(n)])
        (pytester.path / "llmops-config.yaml").write_text(config, encoding="utf-8")
        pytester.makepyfile(test_golden=app)
        yield server


@pytest.fixture
def routed(pytester, write_jsonl, monkeypatch):
    yield from golden_project(pytester, write_jsonl, monkeypatch, CONFIG, APP)


def run(pytester) -> tuple[object, dict]:
    result = pytester.runpytest("--llm-eval", "--llm-eval-routes", "llmops-config.yaml", "--llm-eval-report=r.json",
                                "--junitxml=junit.xml")
    return result, json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))


def check(pytester) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        code = check_main([str(pytester.path / "llmops-config.yaml"), "--report", str(pytester.path / "r.json")])
    return code, out.getvalue()


def test_every_routed_model_runs_and_all_equal_ships(pytester, routed):
    result, report = run(pytester)
    result.assert_outcomes(passed=3 * N + 3 + 2)
    assert routed.requests == 3 * N
    models = {s["variant"]: s["models"] for s in report["suites"]}
    assert models == {"primary": ["anthropic:claude-sonnet-4"], "secondary": ["openai:gpt-4o"], "fallback": ["openai:gpt-4o-mini"]}
    secondary = next(s for s in report["suites"] if s["variant"] == "secondary")
    assert secondary["suite_id"] == "test_golden.py::test_golden@secondary"
    assert secondary["comparison"]["route"] == {"route": "routing.secondary", "model": "openai:gpt-4o", "share": 0.2, "fallback": False}
    assert [g["kind"] for g in secondary["comparison"]["gates"]] == ["parity"]
    # Equal models answer every case alike: no variance, so the bound is insufficient evidence, which never blocks.
    result.stdout.fnmatch_lines(["*parity: openai:gpt-4o (routing.secondary, 20% of traffic): contains vs the primary (primary): "
                                 "insufficient evidence*not blocked  pass"])
    code, out = check(pytester)
    assert code == 0, out
    assert out.endswith(": 0 errors, 2 warnings: may ship (exit 0)\n"), out


def test_a_degraded_routed_model_fails_parity_and_llm_eval_check_blocks_it(pytester, routed):
    routed.answer = answer_with("gpt-4o")
    result, report = run(pytester)
    result.assert_outcomes(passed=3 * N + 3 + 1, failed=1)
    message = ("openai:gpt-4o (routing.secondary, 20% of traffic): contains is not shown to be within 0.05 of the primary "
               "(primary): change -0.100")
    result.stdout.fnmatch_lines([f"*{message}*FAIL"])
    gate = junit_cases(pytester.path / "junit.xml")["llm_eval_gate[secondary-vs-primary]"]
    assert message in gate["failure"]
    fallback = junit_cases(pytester.path / "junit.xml")["llm_eval_gate[fallback-vs-primary]"]
    assert fallback["failure"] is None and fallback["properties"]["llm_eval.parity.contains"] == "pass"
    code, out = check(pytester)
    assert code == 1
    assert "error LEC704: openai:gpt-4o (routing.secondary, 20% of traffic) failed its gate in suite " \
           "test_golden.py::test_golden@secondary" in out
    assert message in out


def test_a_route_variant_s_failure_is_blamed_on_its_route_even_when_the_app_called_another_model(pytester, routed):
    """An app that ignores the model setting calls the primary's model in the fallback's
    variant too: the fallback variant fails, and the checker blames routing.fallback, not
    the primary whose model the report lists for it."""
    _, report = run(pytester)
    doc = json.loads(json.dumps(report))
    fallback = next(s for s in doc["suites"] if s["variant"] == "fallback")
    primary_model = next(s for s in doc["suites"] if s["variant"] == "primary")["models"]
    fallback["models"] = primary_model
    fallback["verdict"] = "fail"
    fallback["comparison"]["gates"][0].update(verdict="fail", message="the setting did not reach the app")
    (pytester.path / "r.json").write_text(json.dumps(doc), encoding="utf-8")
    code, out = check(pytester)
    assert code == 1, out
    assert ("error LEC704: openai:gpt-4o-mini (routing.fallback, takes the traffic when failover triggers) failed its "
            "gate in suite "
            "test_golden.py::test_golden@fallback: the setting did not reach the app") in out, out
    assert "anthropic:claude-sonnet-4 (routing.primary, 80% of traffic) failed" not in out


def test_routes_the_clients_cannot_call_are_a_usage_error(pytester, routed):
    (pytester.path / "llmops-config.yaml").write_text(CONFIG.replace("provider: anthropic", "provider: bedrock"))
    result = pytester.runpytest("--llm-eval", "--llm-eval-routes", "llmops-config.yaml")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*routing.primary: provider 'bedrock' cannot be called through pytest-llmeval's clients*"])
