"""ragas metrics as scorers (the ``ragas`` extra): ``ragas:<MetricName>`` in the marker.

Non-LLM metrics run for real and are checked against ragas called directly; LLM metrics
(Faithfulness) run against the loopback server configured as the plugin's judge, which
answers ragas' JSON prompts deterministically. ragas is slow to import, so it is
imported once here (before the in-process pytester runs, which would otherwise drop it
and import it again each run) and each pytester project is reused within a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from conftest import junit_cases

from pytest_llmeval.errors import ScorerError
from pytest_llmeval.models import Case
from pytest_llmeval.providers import runtime
from pytest_llmeval.providers.config import ProviderConfig
from pytest_llmeval.scorers import default_registry
from pytest_llmeval.testing import LoopbackLLMServer


@pytest.fixture(scope="module")
def ragas():
    """ragas, imported once for the module (analytics off, as the scorer would set it),
    with what scoring imports lazily (rouge_score pulls in nltk): in-process pytester runs
    drop modules first imported inside them, and re-importing these each run is slow."""
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    pytest.importorskip("ragas", reason="the ragas extra is not installed (pip install -e '.[ragas]'; CI runs these "
                                        "tests in a step of their own)")
    import ragas
    import ragas.metrics.collections  # noqa: F401
    import rouge_score.rouge_scorer  # noqa: F401

    import pytest_llmeval.scorers.ragas_metrics  # noqa: F401

    with contextlib.suppress(ImportError):  # hypothesis' pytest plugin imports it in every run's summary
        import hypothesis.internal.observability  # noqa: F401
    # Tests below call the plugin's client outside pytester, so it stays imported. Import
    # it and what it binds properly first: a submodule that an earlier in-process run
    # imported, then dropped, is still an attribute of its package, and the client's
    # `from . import accounting` would bind that stale copy (usage then goes to a ledger
    # no later run reads).
    for name in ("runtime", "accounting", "client"):
        importlib.import_module(f"pytest_llmeval.providers.{name}")

    return ragas


def direct(metric, **fields) -> float:
    """A ragas collections metric's value, computed by calling ragas directly."""
    return asyncio.run(metric.ascore(**fields)).value


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def ragas_judge(request: dict) -> str:
    """The loopback judge for ragas' Faithfulness: answers its two JSON prompts.

    Statement extraction splits the answer into sentences; the NLI step gives verdict 1
    to a statement found word for word (case-insensitively) in the context. So the
    score is the share of the output's sentences that the context contains.
    """
    prompt = request["messages"][-1]["content"]
    data = json.loads(prompt.rsplit("\ninput: ", 1)[1].rsplit("\nOutput: ", 1)[0])
    if '"title": "StatementGeneratorOutput"' in prompt:
        if "unclear" in data["answer"]:
            return json.dumps({"statements": []})  # nothing to check: ragas gives NaN
        return json.dumps({"statements": sentences(data["answer"])})
    if '"title": "NLIStatementOutput"' in prompt:
        context = data["context"].lower()
        verdicts = [{"statement": s, "reason": "in the context" if s.lower() in context else "not in the context",
                     "verdict": int(s.lower() in context)} for s in data["statements"]]
        return json.dumps({"statements": verdicts})
    return "I do not know this prompt."


ROWS = [
    {"id": "fr", "inputs": {"question": "What is the capital of France?"}, "expected": "Paris is the capital of France.",
     "context": ["Paris is the capital of France.", "France is in Europe."]},
    {"id": "de", "inputs": {"question": "What is the capital of Germany?"}, "expected": "The capital of Germany is Berlin.",
     "context": "Berlin is the capital of Germany."},
    {"id": "it", "inputs": {"question": "What is the capital of Italy?"}, "expected": "Rome is the capital city of Italy.",
     "context": ["Rome is the capital of Italy.", "Rome was founded in 753 BC."]},
]
ANSWERS = {
    "What is the capital of France?": "Paris is the capital of France.",
    "What is the capital of Germany?": "Berlin is the capital of Germany. It has 40 million people.",
    "What is the capital of Italy?": "Rome is the capital of Italy. Rome was founded in 753 BC. Rome has no river.",
}
FAITHFULNESS = {"fr": 1.0, "de": 0.5, "it": 2 / 3}

TEST = f"""
import pytest

ANSWERS = {ANSWERS!r}

def app(question):
    return ANSWERS[question]

@pytest.mark.llm_eval(dataset="data.jsonl", target=app,
                      scorers=["ragas:RougeScore", ("ragas:RougeScore", {{"rouge_type": "rouge1", "name": "rouge1"}}),
                               "ragas:Faithfulness"])
def test_rag(llm_case, llm_eval):
    pass
"""


@pytest.fixture
def project(pytester, write_jsonl, monkeypatch, ragas):
    server = LoopbackLLMServer(ragas_judge).start()
    monkeypatch.setenv("LLM_EVAL_JUDGE_BASE_URL", server.base_url)
    monkeypatch.setenv("RAGAS_DO_NOT_TRACK", "true")
    write_jsonl("data.jsonl", ROWS)
    pytester.makepyfile(test_eval=TEST)
    pytester.makeini("[pytest]\nllm_eval_judge_model = gpt-4o-mini\n")
    yield server
    server.stop()


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_ragas_non_llm_and_llm_metrics_in_one_suite(pytester, project, ragas, xdist):
    from ragas.metrics.collections import RougeScore

    result = pytester.runpytest("--llm-eval", "--junitxml=junit.xml", "--llm-eval-report=r.json", *xdist)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=3 + 3)  # 3 cases + a gate per metric
    cases = junit_cases(pytester.path / "junit.xml")
    for row in ROWS:
        props = cases[f"test_rag[{row['id']}]"]["properties"]
        answer = ANSWERS[row["inputs"]["question"]]
        assert float(props["llm_eval.ragas:RougeScore"]) == pytest.approx(
            direct(RougeScore(), reference=row["expected"], response=answer))
        assert float(props["llm_eval.rouge1"]) == pytest.approx(
            direct(RougeScore(rouge_type="rouge1"), reference=row["expected"], response=answer))
        assert float(props["llm_eval.ragas:Faithfulness"]) == pytest.approx(FAITHFULNESS[row["id"]])
        assert float(props["llm_eval.judge.cost"]) > 0 and "llm_eval.app.cost" not in props  # judge spend
    assert float(cases["test_rag[fr]"]["properties"]["llm_eval.rouge1"]) == 1.0
    assert project.requests == 3 * 2  # per case: statements, then verdicts
    body = project.received[0]
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0.0
    assert body["response_format"] == {"type": "json_object"}
    report = json.loads((pytester.path / "r.json").read_text())
    [suite] = report["suites"]
    metrics = {m["name"]: m for m in suite["metrics"]}
    assert set(metrics) == {"ragas:RougeScore", "rouge1", "ragas:Faithfulness"}
    assert metrics["ragas:Faithfulness"]["mean"] == pytest.approx(sum(FAITHFULNESS.values()) / 3)
    assert suite["usage"]["judge_cost_total"] > 0 and suite["usage"]["app_cost_total"] == 0


def test_ragas_judge_calls_are_cached_and_replayed(pytester, project):
    first = pytester.runpytest("--llm-eval", "--llm-eval-cache=readwrite", "--junitxml=first.xml")
    assert first.ret == 0 and project.requests == 6
    project.reset()
    second = pytester.runpytest("--llm-eval", "--llm-eval-cache=strict", "--junitxml=second.xml")
    assert second.ret == 0 and project.requests == 0
    scores = [{name: case["properties"]["llm_eval.ragas:Faithfulness"] for name, case in junit_cases(pytester.path / xml).items()
               if "llm_eval.ragas:Faithfulness" in case["properties"]} for xml in ("first.xml", "second.xml")]
    assert scores[0] == scores[1] and len(scores[0]) == 3


def test_unknown_metric_and_missing_field_are_clear_errors(pytester, project):
    pytester.makepyfile(test_eval=TEST.replace('"ragas:Faithfulness"', '"ragas:Faithfullness"'))
    result = pytester.runpytest("--llm-eval")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*unknown ragas metric 'Faithfullness' in scorer 'ragas:Faithfullness'; "
                                 "did you mean 'ragas:Faithfulness'*"])

    rows = [dict(ROWS[0]), {key: value for key, value in ROWS[1].items() if key != "context"}]
    (pytester.path / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    pytester.makepyfile(test_eval=TEST)
    result = pytester.runpytest("--llm-eval", "-rE")
    result.assert_outcomes(passed=1 + 3, errors=1)
    result.stdout.fnmatch_lines(["*scorer 'ragas:Faithfulness' needs retrieved_contexts (the row's 'context' field); "
                                 "case 'de' has none*"])


# -- the scorer without pytester ----------------------------------------------------------------


CASE = Case("c1", {"topic": "geography", "question": "What is the capital of France?"},
            expected="Paris is the capital of France.", context="Paris is the capital of France.")


def evaluate(entry, output="Paris is the capital of France.", case=CASE):
    [bound] = default_registry().bind([entry])
    return bound.evaluate(output, case)


@pytest.fixture
def judge(monkeypatch, ragas):
    """The loopback ragas judge as the run's judge model."""
    server = LoopbackLLMServer(ragas_judge).start()
    monkeypatch.setattr(runtime, "_DEFAULTS", runtime.Defaults(judge=ProviderConfig(model="judge-model", base_url=server.base_url)))
    yield server
    server.stop()


def test_non_llm_metrics_match_ragas_called_directly(ragas):
    from ragas import SingleTurnSample
    from ragas.metrics.collections import BleuScore, NonLLMStringSimilarity, RougeScore
    from ragas.metrics.collections._string import DistanceMeasure

    output = "The capital of France is Paris."
    fields = {"reference": CASE.expected, "response": output}
    assert evaluate("ragas:BleuScore", output).value == pytest.approx(direct(BleuScore(), **fields))
    assert evaluate(("ragas:RougeScore", {"mode": "precision"}), output).value == pytest.approx(
        direct(RougeScore(mode="precision"), **fields))
    assert evaluate(("ragas:NonLLMStringSimilarity", {"distance_measure": "jaro_winkler"}), output).value == pytest.approx(
        direct(NonLLMStringSimilarity(distance_measure=DistanceMeasure.JARO_WINKLER), **fields))
    # A metric only in the legacy ragas.metrics goes through SingleTurnSample.
    legacy = evaluate("ragas:ChrfScore", output).value
    from ragas.metrics._chrf_score import ChrfScore

    assert legacy == pytest.approx(asyncio.run(ChrfScore().single_turn_ascore(SingleTurnSample(**fields))))
    assert 0 < legacy < 1 and evaluate("ragas:ExactMatch").value == 1.0
    assert ragas._analytics.do_not_track()  # set before ragas was imported: no analytics


def test_user_input_is_the_question_else_the_first_string_input(judge):
    evaluate("ragas:Faithfulness")
    assert '"question": "What is the capital of France?"' in judge.received[0]["messages"][-1]["content"]
    judge.reset()
    evaluate("ragas:Faithfulness", case=Case("c2", {"n": 3, "topic": "geography"}, context="Paris is the capital of France."))
    assert '"question": "geography"' in judge.received[0]["messages"][-1]["content"]


@pytest.mark.parametrize("entry, message", [
    (("ragas:RougeScore", {"rogue_type": "rouge1"}), "unknown options ['rogue_type']; the ragas metric takes: rouge_type, mode"),
    (("ragas:NonLLMStringSimilarity", {"distance_measure": "cosine"}), "option distance_measure='cosine' is not one of"),
    ("ragas:faithfulness", "did you mean 'ragas:Faithfulness'"),
    ("ragas:AnswerRelevancy", "needs an embeddings model"),
    ("ragas:AspectCritic", "missing 1 required positional argument: 'definition'"),
])
def test_bad_entries_fail_at_binding(ragas, entry, message):
    with pytest.raises(ScorerError, match=re.escape(message)):
        default_registry().bind([entry])


def test_nan_and_judge_garbage_are_errors_not_zeros(judge):
    with pytest.raises(ScorerError, match=r"ragas returned NaN for case 'c1'"):
        evaluate("ragas:Faithfulness", output="It is unclear.")
    judge.answer = lambda request: "Sure, it is faithful."
    with pytest.raises(ScorerError, match=r"the judge's answer is not the JSON ragas asked for \(StatementGeneratorOutput\).*"
                                          r"raw answer: 'Sure, it is faithful.'"):
        evaluate("ragas:Faithfulness")


def test_no_judge_model_is_a_clear_error(monkeypatch, ragas):
    monkeypatch.setattr(runtime, "_DEFAULTS", runtime.Defaults(judge=ProviderConfig(base_url="http://127.0.0.1:9/v1")))
    with pytest.raises(ScorerError, match="set ini llm_eval_judge_model"):
        evaluate("ragas:Faithfulness")


def test_ragas_errors_and_out_of_range_values_are_scorer_errors(monkeypatch, ragas):
    from ragas.metrics.collections import RougeScore
    from ragas.metrics.result import MetricResult

    async def too_high(self, reference, response):
        return MetricResult(value=1.5)

    async def broken(self, reference, response):
        raise ValueError("reference is empty, says ragas")

    monkeypatch.setattr(RougeScore, "ascore", too_high)
    with pytest.raises(ScorerError, match=r"ragas returned 1\.5, outside \[0, 1\]"):
        evaluate("ragas:RougeScore")
    monkeypatch.setattr(RougeScore, "ascore", broken)
    with pytest.raises(ScorerError, match="ragas raised ValueError: reference is empty, says ragas"):
        evaluate("ragas:RougeScore")


# -- without ragas ----------------------------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_plugin_and_default_registry_do_not_import_ragas():
    result = run_python("""
        import sys
        import pytest_llmeval.plugin
        from pytest_llmeval.scorers import default_registry
        registry = default_registry()
        registry.bind(["rouge_l", "contains", "judge:correctness"])
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "ragas" or m.startswith("langchain"))
        print(loaded)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_ragas_says_how_to_install_it():
    result = run_python("""
        import sys
        sys.modules["ragas"] = None  # as if not installed: importing it raises ImportError
        from pytest_llmeval.errors import ScorerError
        from pytest_llmeval.scorers import default_registry
        try:
            default_registry().get("ragas:RougeScore")
        except ScorerError as exc:
            print(exc)
    """)
    assert result.returncode == 0, result.stderr
    assert "scorer 'ragas:RougeScore' needs ragas" in result.stdout
    assert "pip install 'pytest-llmeval[ragas]'" in result.stdout
