"""The core plugin through real pytest runs: opt-in, items per row, case outcomes, the
threshold gate in junit, the terminal table, exit codes, and xdist parity."""

from __future__ import annotations

import pytest
from conftest import junit_cases

ROWS_200 = [{"id": f"q{i:04d}", "inputs": {"n": i}, "expected": "yes"} for i in range(200)]

# A deterministic app: says "yes" for 170 of 200 cases (mean 0.85).
APP_85 = """
import pytest

def app(n):
    return "no" if n % 20 in (3, 7, 11) else "yes, indeed"

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], thresholds={{"contains": {threshold}}})
def test_support(llm_case, llm_eval):
    assert llm_eval.output
"""


@pytest.fixture
def project_200(pytester, write_jsonl):
    write_jsonl("data.jsonl", ROWS_200)

    def make(threshold: float) -> None:
        pytester.makepyfile(test_eval=APP_85.format(threshold=threshold))

    return make


def test_eval_items_are_skipped_without_the_flag(pytester, write_jsonl):
    write_jsonl("data.jsonl", ROWS_200[:3])
    pytester.makepyfile(test_eval=APP_85.format(threshold=0.5))
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*pass --llm-eval to run*"])
    result.stdout.no_fnmatch_line("*llm-eval summary*")


def test_plugin_is_inert_in_an_unrelated_run(pytester):
    """No heavy imports and no output of ours in a run without evals or --llm-eval."""
    pytester.makeconftest(
        """
        import sys
        def pytest_unconfigure(config):
            heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"scipy", "numpy", "httpx", "httpx2", "yaml", "ragas", "langchain_core", "openai", "anthropic", "litellm", "genai_prices"})
            print("HEAVY-MODULES:", heavy)
        """
    )
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    # Other plugins off: pytest-randomly imports numpy (to reseed it) and prints its seed.
    others = ("-p", "no:xdist", "-p", "no:randomly", "-p", "no:pytest_cov", "-p", "no:asyncio", "-p", "no:anyio", "-p", "no:rerunfailures")
    with_plugin = pytester.runpytest_subprocess("-q", "-s", *others)
    with_plugin.assert_outcomes(passed=1)
    without = pytester.runpytest_subprocess("-q", "-s", *others, "-p", "no:llmeval")
    # Other plugins of this venv may import some (langsmith's imports httpx2): ours adds none.
    heavy = [line for line in with_plugin.outlines if line.startswith("HEAVY-MODULES:")]
    assert heavy == [line for line in without.outlines if line.startswith("HEAVY-MODULES:")]
    for name in ("scipy", "numpy", "'httpx'", "yaml", "openai", "anthropic", "litellm", "genai_prices"):
        assert name not in heavy[0]
    strip = lambda lines: [line for line in lines if " in " not in line]  # drop the timing line
    assert strip(with_plugin.outlines) == strip(without.outlines)


def test_200_rows_become_200_items_with_a_gate_per_metric(pytester, project_200):
    project_200(threshold=0.80)
    result = pytester.runpytest("--llm-eval", "--junitxml=junit.xml")
    result.assert_outcomes(passed=201)  # 200 cases + 1 gate
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*llm-eval summary*",
        "test_eval.py::test_support  dataset data.jsonl: 200 case(s)  PASS",
        "*metric*mean*95% CI*threshold*verdict*",
        "*contains*0.850*0.79-0.89*>= 0.8*pass*",
    ])
    cases = junit_cases(pytester.path / "junit.xml")
    assert cases["test_support[q0003]"]["properties"]["llm_eval.contains"] == "0.0"
    assert cases["test_support[q0004]"]["properties"]["llm_eval.contains"] == "1.0"
    assert float(cases["test_support[q0004]"]["properties"]["llm_eval.latency_ms"]) >= 0
    gate = cases["llm_eval_gate[contains]"]
    assert gate["classname"] == "test_eval.test_support"
    assert gate["failure"] is None
    assert gate["properties"]["llm_eval.mean"] == "0.85"
    assert gate["properties"]["llm_eval.n"] == "200"
    assert gate["properties"]["llm_eval.threshold"] == "0.8"


def test_threshold_failure_fails_the_run_with_the_numbers(pytester, project_200):
    project_200(threshold=0.9)
    result = pytester.runpytest("--llm-eval", "--junitxml=junit.xml")
    result.assert_outcomes(passed=200, failed=1)
    assert result.ret == 1
    expected = "contains 0.850 < 0.9 (95% CI 0.79-0.89, n=200)"
    result.stdout.fnmatch_lines([f"*{expected}*"])
    result.stdout.fnmatch_lines(["FAILED test_eval.py::test_support::llm_eval_gate[[]contains[]]*"])
    result.stdout.fnmatch_lines(["*contains*0.850*>= 0.9*fail*"])
    gate = junit_cases(pytester.path / "junit.xml")["llm_eval_gate[contains]"]
    assert expected in gate["failure"]


def test_xdist_gives_the_same_verdicts_and_numbers(pytester, project_200):
    project_200(threshold=0.9)
    serial = pytester.runpytest("--llm-eval", "--junitxml=serial.xml")
    dist = pytester.runpytest("--llm-eval", "-n", "2", "--junitxml=dist.xml")
    assert serial.ret == dist.ret == 1
    dist.assert_outcomes(passed=200, failed=1)
    serial_cases, dist_cases = junit_cases(pytester.path / "serial.xml"), junit_cases(pytester.path / "dist.xml")
    assert set(serial_cases) == set(dist_cases)
    timing = lambda props: {k: v for k, v in props.items() if k != "llm_eval.latency_ms"}  # wall time differs
    for name, case in serial_cases.items():
        assert timing(dist_cases[name]["properties"]) == timing(case["properties"]), name
    assert dist_cases["llm_eval_gate[contains]"]["failure"] == serial_cases["llm_eval_gate[contains]"]["failure"]


def test_case_outcomes(pytester, write_jsonl):
    """A case fails only on an exception, an assert, must_pass or a per-case minimum;
    a low score alone does not fail it."""
    write_jsonl("data.jsonl", [
        {"id": "ok", "inputs": {"q": "good"}, "expected": "good"},
        {"id": "low", "inputs": {"q": "bad"}, "expected": "good"},
        {"id": "must", "inputs": {"q": "bad"}, "expected": "good", "must_pass": True},
        {"id": "boom", "inputs": {"q": "boom"}, "expected": "good"},
        {"id": "noexp", "inputs": {"q": "good"}},
        {"id": "assert", "inputs": {"q": "assert"}, "expected": "assert"},
    ])
    pytester.makepyfile(test_eval="""
        import pytest

        def app(q):
            if q == "boom":
                raise RuntimeError("provider down")
            return q

        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
        def test_cases(llm_case, llm_eval):
            assert llm_eval.output != "assert", "extra check failed"

        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["exact_match"], case_thresholds={"exact_match": 1.0})
        def test_minimum(llm_case, llm_eval):
            pass
    """)
    result = pytester.runpytest("--llm-eval", "-rA", "--junitxml=junit.xml")
    outcomes = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED", "ERROR"):
            if line.startswith(word + " test_eval.py::"):
                outcomes[line.split()[1]] = word
    assert outcomes["test_eval.py::test_cases[ok]"] == "PASSED"
    assert outcomes["test_eval.py::test_cases[low]"] == "PASSED"
    assert outcomes["test_eval.py::test_cases[must]"] == "FAILED"
    assert outcomes["test_eval.py::test_cases[boom]"] == "ERROR"
    assert outcomes["test_eval.py::test_cases[noexp]"] == "ERROR"  # scorer needs expected: an error, not a zero
    assert outcomes["test_eval.py::test_cases[assert]"] == "FAILED"
    assert outcomes["test_eval.py::test_minimum[ok]"] == "PASSED"
    assert outcomes["test_eval.py::test_minimum[low]"] == "FAILED"
    result.stdout.fnmatch_lines(["*must_pass case scored contains 0 < 1*"])
    result.stdout.fnmatch_lines(["*exact_match 0 < case minimum 1*"])
    result.stdout.fnmatch_lines(["*app raised RuntimeError: provider down*"])
    result.stdout.fnmatch_lines(["*scorer 'contains' needs the row's 'expected' field*"])
    # Errored cases are left out of the means and said so; failed cases still count.
    result.stdout.fnmatch_lines(["test_eval.py::test_cases  dataset data.jsonl: 6 case(s)*", "*contains*0.500*", "*2 case(s) errored*boom, noexp*"])
    cases = junit_cases(pytester.path / "junit.xml")
    assert cases["test_cases[boom]"]["properties"]["llm_eval.error"].startswith("app raised RuntimeError")


def test_body_scores_and_records_values_without_a_target(pytester, write_jsonl):
    write_jsonl("data.jsonl", [{"id": f"c{i}", "inputs": {"x": i}, "expected": str(i)} for i in range(4)])
    pytester.makepyfile(test_eval="""
        import pytest

        @pytest.mark.llm_eval(dataset="data.jsonl", scorers=["exact_match", "json_valid"], thresholds={"latency": 0.5})
        def test_body(llm_case, llm_eval):
            output = str(llm_case.inputs["x"])
            scores = llm_eval.score(output)
            assert scores == {"exact_match": 1.0, "json_valid": 1.0}
            assert llm_eval.output == output
            llm_eval.record("latency", 0.25 * llm_case.inputs["x"])

        @pytest.mark.llm_eval(dataset="data.jsonl", scorers=["exact_match"])
        def test_forgot_to_score(llm_case, llm_eval):
            pass
    """)
    result = pytester.runpytest("--llm-eval", "-rA")
    result.stdout.fnmatch_lines(["*latency*0.375*>= 0.5*fail*"])
    result.stdout.fnmatch_lines(["*latency 0.375 < 0.5 (95% CI*n=4)*"])
    result.stdout.fnmatch_lines(["*no scores recorded: call llm_eval.score(output)*"])
    # passed: body cases + exact_match/json_valid gates; failed: forgot x4, the latency gate,
    # and test_forgot_to_score's exact_match gate (no case produced a score)
    result.assert_outcomes(passed=4 + 2, failed=4 + 1 + 1)


def test_async_target_and_ini_thresholds(pytester, write_jsonl):
    write_jsonl("data.jsonl", [{"id": f"c{i}", "inputs": {"x": i}, "expected": "even"} for i in range(6)])
    pytester.makeini("[pytest]\nllm_eval_thresholds =\n    contains=0.6\n")
    pytester.makepyfile(test_eval="""
        import asyncio, pytest

        async def app(x):
            await asyncio.sleep(0)
            return "even" if x % 2 == 0 else "odd"

        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
        def test_async(llm_case, llm_eval):
            assert llm_eval.output in ("even", "odd")
    """)
    result = pytester.runpytest("--llm-eval")
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["*contains 0.500 < 0.6 (95% CI*n=6)*"])


def test_ignore_thresholds_reports_but_does_not_fail(pytester, project_200):
    project_200(threshold=0.9)
    result = pytester.runpytest("--llm-eval", "--llm-eval-ignore-thresholds")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*contains 0.850 < 0.9*not enforced*"])


def test_bad_ini_value_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\nllm_eval_thresholds =\n    contains=high\n")
    result = pytester.runpytest("--llm-eval")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*llm_eval_thresholds*'high' is not a number*"])


def test_llm_case_outside_a_marked_test_is_a_clear_failure(pytester):
    pytester.makepyfile(test_x="def test_x(llm_case):\n    pass\n")
    result = pytester.runpytest("--llm-eval")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*llm_case is only available in tests marked*"])


@pytest.mark.parametrize("line, message", [
    ("llm_eval_alpha = 1.5", "ini llm_eval_alpha: expected a number in (0, 1), got '1.5'"),
    ("llm_eval_concurrency = 0", "ini llm_eval_concurrency: expected a positive integer, got '0'"),
    ("llm_eval_cache = sometimes", "ini llm_eval_cache: expected one of off, read, write, readwrite, strict, got 'sometimes'"),
    ("llm_eval_repeats = two", "ini llm_eval_repeats: expected a positive integer or auto, got 'two'"),
    ("llm_eval_report_output_chars = -1", "ini llm_eval_report_output_chars: expected a non-negative integer, got '-1'"),
    ("llm_eval_budgets =\n    max_cost_per_cas=1", "unknown budget 'max_cost_per_cas'; did you mean 'max_cost_per_case'?"),
])
def test_bad_ini_values_fail_at_start_up_naming_the_key(pytester, line, message):
    pytester.makeini(f"[pytest]\n{line}\n")
    result = pytester.runpytest("--llm-eval")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in "\n".join(result.errlines)
