"""Evals with the plugins teams already run (installed by the dev extra): every case that
ran is accounted exactly once, with its final outcome, whatever they do.

- pytest-rerunfailures: a rerun calls the app again, only the last attempt counts, and
  the attempt count is visible per case.
- anyio's plugin: ``@pytest.mark.anyio`` on an eval test composes with its cases.
- pytest-randomly and pytest-cov: reordering and coverage change nothing.
- hypothesis' and langsmith's plugins (installed with [dev]; the other tests' inner runs
  leave them out, tests/conftest.py): loaded, they change nothing either.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from conftest import junit_cases

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
ROWS = [{"id": f"q{n}", "inputs": {"n": n}, "expected": "yes"} for n in range(10)]

# q3's backend is down on every call; q5 answers wrong on its first call only.
FLAKY = """
import pytest

def app(n):
    with open("calls.txt", "a") as calls:
        calls.write(f"{n}\\n")
    with open("calls.txt") as calls:
        count = calls.read().split().count(str(n))
    if n == 3:
        raise RuntimeError("backend down")
    return "no" if n == 5 and count == 1 else "yes"

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], budgets={"max_error_rate": 0.2})
def test_eval(llm_case, llm_eval):
    assert llm_eval.output == "yes"
"""


def report_cases(path) -> list[dict]:
    return [case for suite in json.loads(path.read_text())["suites"] for case in suite["cases"]]


@pytest.mark.parametrize("xdist", XDIST)
def test_reruns_call_the_app_again_and_only_the_last_attempt_counts(pytester, write_jsonl, xdist):
    write_jsonl("data.jsonl", ROWS)
    pytester.makepyfile(test_eval=FLAKY)
    result = pytester.runpytest("--llm-eval", "--reruns", "2", *xdist, "--junitxml=junit.xml", "--llm-eval-report=r.json")
    assert result.ret == 1  # q3 errored on every attempt
    outcomes = result.parseoutcomes()  # 9 cases + 2 gates; q3; q3 twice and q5 once
    assert (outcomes["passed"], outcomes["errors"], outcomes["rerun"]) == (11, 1, 3)
    calls = (pytester.path / "calls.txt").read_text().split()
    assert {n: calls.count(str(n)) for n in (3, 5, 0)} == {3: 3, 5: 2, 0: 1}  # each rerun called the app again

    cases = {case["case_id"]: case for case in report_cases(pytester.path / "r.json")}
    assert len(cases) == 10 and len(report_cases(pytester.path / "r.json")) == 10
    assert (cases["q5"]["outcome"], cases["q5"]["attempts"], cases["q5"]["scores"]) == ("passed", 2, {"contains": 1.0})
    assert (cases["q3"]["outcome"], cases["q3"]["attempts"], cases["q3"]["error_kind"]) == ("error", 3, "app")
    assert cases["q0"]["attempts"] == 1
    result.stdout.fnmatch_lines(["*error_rate: error rate 10.0% of 10 case(s) (app 1) <= budget 20.0%  pass*"])
    # A rerun that passes replaces a failing attempt: the summary says the means may be the better of two tries.
    said = "2 case(s) were rerun (pytest-rerunfailures); their scores are from the last attempt: q3, q5"
    result.stdout.fnmatch_lines([f"*note: {said}*"])
    assert said in json.loads((pytester.path / "r.json").read_text())["suites"][0]["notes"]

    junit = junit_cases(pytester.path / "junit.xml")
    assert junit["test_eval[q5]"]["properties"]["llm_eval.attempts"] == "2"
    assert "llm_eval.attempts" not in junit["test_eval[q0]"]["properties"]
    for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase"):
        names = [p.get("name") for p in case.iter("property")]
        assert len(names) == len(set(names)), (case.get("name"), names)


ANYIO = """
import pytest

async def app(n):
    return "yes"

@pytest.mark.anyio
@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], thresholds={"contains": 0.9})
async def test_eval(llm_case, llm_eval, anyio_backend):
    assert llm_eval.output == "yes" and anyio_backend == "asyncio"
"""


@pytest.mark.parametrize("xdist", XDIST)
def test_anyio_marker_composes_with_the_cases(pytester, write_jsonl, xdist):
    write_jsonl("data.jsonl", ROWS)
    pytester.makeconftest("import pytest\n\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n")
    pytester.makepyfile(test_eval=ANYIO)
    result = pytester.runpytest("--llm-eval", *xdist, "--llm-eval-report=r.json", "-v")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=11)
    assert len(report_cases(pytester.path / "r.json")) == 10
    result.stdout.fnmatch_lines(["*dataset data.jsonl: 10 case(s)  PASS*"])


def test_anyio_with_two_backends_is_a_clear_error(pytester, write_jsonl):
    write_jsonl("data.jsonl", ROWS)
    pytester.makeconftest("import pytest\n\n@pytest.fixture(params=['asyncio', 'trio'])\n"
                          "def anyio_backend(request):\n    return request.param\n")
    pytester.makepyfile(test_eval=ANYIO)
    result = pytester.runpytest("--llm-eval")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_eval.py::test_eval: an llm_eval suite runs each case once, but anyio_backend "
                                 "has 2 values ('asyncio', 'trio'): override the anyio_backend fixture*"])


@pytest.mark.parametrize("xdist", XDIST)
@pytest.mark.parametrize("others", [["-p", "randomly", "-p", "randomly", "--randomly-seed=7"], ["--cov", "--cov-report="],
                                    ["--reruns", "1"], ["-p", "anyio"], ["-p", "asyncio", "--asyncio-mode=auto"],
                                    ["-p", "hypothesispytest", "-p", "langsmith_plugin"]],
                         ids=["randomly", "cov", "rerunfailures", "anyio", "asyncio-auto", "hypothesis-langsmith"])
def test_each_case_is_counted_once_with_each_plugin(pytester, write_jsonl, xdist, others):
    """The general rule: as many case results in the report as distinct case items that
    ran, each with its final outcome (here q3 errors and q5 fails its assert)."""
    write_jsonl("data.jsonl", ROWS)
    pytester.makepyfile(test_eval=FLAKY.replace('n == 5 and count == 1', 'n == 5'))
    result = pytester.runpytest("--llm-eval", *others, *xdist, "--llm-eval-report=r.json", "-rA")
    ran = {line.split()[1] for line in result.outlines if line.startswith(("PASSED test_eval.py::test_eval[", "FAILED test_eval.py::test_eval[", "ERROR test_eval.py::test_eval["))}
    cases = report_cases(pytester.path / "r.json")
    assert len(ran) == 10 and len(cases) == 10
    outcomes = {case["case_id"]: case["outcome"] for case in cases}
    assert outcomes == {**{f"q{n}": "passed" for n in range(10)}, "q3": "error", "q5": "failed"}
