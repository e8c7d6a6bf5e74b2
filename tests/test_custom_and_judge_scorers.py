"""User scorers (decorator and hook) and LLM-judge scorers, through real pytest runs
against the loopback server, serially and under xdist."""

from __future__ import annotations

import json
import os

import pytest
from conftest import junit_cases

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
try:  # imported before any in-process run: pytester would drop a copy imported inside one,
    import ragas  # and ragas (pyarrow) cannot be imported twice in a process
    import ragas.metrics.collections  # noqa: F401
except ImportError:
    ragas = None
from pytest_llmeval.scorers.judge import parse_judgment
from pytest_llmeval.testing import LoopbackLLMServer

CONFTEST = """
from pytest_llmeval import Score, scorer

@scorer("shouts", binary=True)
def shouts(output, case):
    return output.isupper()

@scorer("slow_polite")
async def slow_polite(output, case, *, word="please"):
    return Score(1.0 if word in output.lower() else 0.25, reason=f"looked for {word!r}")

def pytest_llmeval_register_scorers(registry):
    @registry.register("short", binary=True)
    def short(output, case, *, limit=30):
        return len(output) <= limit
"""

TEST = """
import pytest

ANSWERS = {"capital of France": "PARIS, PLEASE", "capital of Spain": "Madrid is the capital", "capital of Italy": "ROME"}

def app(question):
    return ANSWERS[question]

@pytest.mark.llm_eval(dataset="data.jsonl", target=app,
                      scorers=["shouts", ("slow_polite", {"word": "please"}), "short", "judge:correctness"])
def test_capitals(llm_case, llm_eval):
    pass
"""


def judge_answer(request: dict) -> str:
    """The loopback judge: 5 when the answer contains the reference, else 2."""
    user = request["messages"][-1]["content"]
    reference = user.split("REFERENCE:\n")[1].split("\n\n")[0]
    answer = user.split("ANSWER:\n")[1]
    if "garbage" in answer:
        return "I think it is fine."
    good = reference.lower() in answer.lower()
    return json.dumps({"score": 5 if good else 2, "reason": "matches the reference" if good else "misses the reference"})


@pytest.fixture
def project(pytester, write_jsonl, monkeypatch):
    server = LoopbackLLMServer(judge_answer).start()
    monkeypatch.setenv("LLM_EVAL_JUDGE_BASE_URL", server.base_url)
    write_jsonl("data.jsonl", [
        {"id": "fr", "inputs": {"question": "capital of France"}, "expected": "Paris"},
        {"id": "es", "inputs": {"question": "capital of Spain"}, "expected": "Madrid"},
        {"id": "it", "inputs": {"question": "capital of Italy"}, "expected": "Roma"},
    ])
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_eval=TEST)
    pytester.makeini("[pytest]\nllm_eval_judge_model = gpt-4o-mini\n")
    yield server
    server.stop()


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_decorator_hook_and_judge_scorers_in_one_suite(pytester, project, xdist):
    result = pytester.runpytest("--llm-eval", "--junitxml=junit.xml", "--llm-eval-report=r.json", *xdist)
    assert result.ret == 0
    result.assert_outcomes(passed=3 + 4)
    cases = junit_cases(pytester.path / "junit.xml")
    fr, es = cases["test_capitals[fr]"]["properties"], cases["test_capitals[es]"]["properties"]
    assert (fr["llm_eval.shouts"], fr["llm_eval.slow_polite"], fr["llm_eval.short"]) == ("1.0", "1.0", "1.0")
    assert (es["llm_eval.shouts"], es["llm_eval.slow_polite"]) == ("0.0", "0.25")
    assert es["llm_eval.slow_polite.reason"] == "looked for 'please'"
    assert fr["llm_eval.judge:correctness"] == "1.0" and fr["llm_eval.judge:correctness.reason"] == "matches the reference"
    assert cases["test_capitals[it]"]["properties"]["llm_eval.judge:correctness"] == "0.25"
    assert float(fr["llm_eval.judge.cost"]) > 0 and "llm_eval.app.cost" not in fr  # judge spend, not app spend
    assert project.requests == 3
    report = json.loads((pytester.path / "r.json").read_text())
    [suite] = report["suites"]
    assert suite["usage"]["judge_cost_total"] > 0 and suite["usage"]["app_cost_total"] == 0
    it = next(c for c in suite["cases"] if c["case_id"] == "it")
    assert it["reasons"]["judge:correctness"] == "misses the reference"
    judge = next(m for m in suite["metrics"] if m["name"] == "judge:correctness")
    assert judge["mean"] == pytest.approx((1.0 + 1.0 + 0.25) / 3) and judge["test"] is None


def test_judge_samples_average_and_cached_replay(pytester, project):
    pytester.makepyfile(test_eval=TEST.replace('"judge:correctness"', '("judge:correctness", {"samples": 3})'))
    first = pytester.runpytest("--llm-eval", "--llm-eval-cache=readwrite")
    assert first.ret == 0 and project.requests == 9  # 3 cases x 3 samples, each its own cache entry
    project.reset()
    second = pytester.runpytest("--llm-eval", "--llm-eval-cache=strict")
    assert second.ret == 0 and project.requests == 0


def test_unparsable_judgment_is_an_error_with_the_raw_text(pytester, project):
    pytester.makepyfile(test_eval=TEST.replace('"PARIS, PLEASE"', '"garbage"'))
    result = pytester.runpytest("--llm-eval", "-rE")
    result.assert_outcomes(errors=1, passed=2 + 4)
    result.stdout.fnmatch_lines(["*scorer 'judge:correctness': unparsable judgment (no JSON object with a 'score'*raw answer: 'I think it is fine.'*"])


def test_custom_rubric_is_sent_to_the_judge(pytester, project):
    pytester.makepyfile(test_eval=TEST.replace('"judge:correctness"', '("judge:correctness", {"rubric": "Only capitals in upper case count."})'))
    assert pytester.runpytest("--llm-eval").ret == 0
    assert all("Only capitals in upper case count." in body["messages"][0]["content"] for body in project.received)


def test_typo_in_a_user_scorer_name_suggests_it(pytester, project):
    pytester.makepyfile(test_eval=TEST.replace('"shouts"', '"shout"'))
    result = pytester.runpytest("--llm-eval")
    result.stdout.fnmatch_lines(["*unknown scorer 'shout'; did you mean 'shouts'?*"])


@pytest.mark.parametrize("text, score, reason", [
    ('{"score": 5, "reason": "ok"}', 1.0, "ok"),
    ('```json\n{"score": 3, "reason": "meh"}\n```', 0.5, "meh"),
    ('Sure! Here it is: {"score": "2", "reason": "weak"} Thanks.', 0.25, "weak"),
    ('{"note": 1} then {"score": 1}', 0.0, ""),
])
def test_parse_judgment_is_robust(text, score, reason):
    assert parse_judgment(text) == (score, reason)


@pytest.mark.parametrize("text", ["no json", '{"score": 7}', '{"score": "high"}', '{"reason": "x"}', "{broken"])
def test_parse_judgment_refuses_what_is_not_a_judgment(text):
    with pytest.raises(ValueError):
        parse_judgment(text)


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_conftest_hook_ragas_and_judge_scorers_in_one_suite(pytester, project, xdist):
    """The four ways to get a scorer, side by side in one suite."""
    if ragas is None:
        pytest.skip("the [ragas] extra is not installed")
    pytester.makepyfile(test_eval=TEST.replace('"short", "judge:correctness"', '"short", "ragas:RougeScore", "judge:correctness"'))
    result = pytester.runpytest("--llm-eval", "--junitxml=junit.xml", "-p", "no:langsmith_plugin", *xdist)
    assert result.ret == 0
    result.assert_outcomes(passed=3 + 5)
    props = junit_cases(pytester.path / "junit.xml")["test_capitals[es]"]["properties"]
    assert props["llm_eval.shouts"] == "0.0" and props["llm_eval.short"] == "1.0"
    assert 0.0 < float(props["llm_eval.ragas:RougeScore"]) < 1.0  # "Madrid is the capital" vs "Madrid"
    assert props["llm_eval.judge:correctness"] == "1.0"
