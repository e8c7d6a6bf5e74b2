"""Partial runs (-k, a case's node id, --lf) never invent a verdict: the gate judges the
cases that ran, says "partial: k of n cases" in the terminal, report, Markdown and junit,
pairs only those cases with the baseline, and does not fail on thresholds unless asked.
A gate's node id, or --lf after a gate failed, selects the gate's whole suite."""

from __future__ import annotations

import json

import pytest
from conftest import junit_cases

CAPITALS = {"fr": ("France", "Paris"), "de": ("Germany", "Berlin"), "it": ("Italy", "Rome"), "es": ("Spain", "Madrid"),
            "pt": ("Portugal", "Lisbon"), "jp": ("Japan", "Tokyo"), "pe": ("Peru", "Lima"), "eg": ("Egypt", "Cairo"),
            "ke": ("Kenya", "Nairobi"), "au": ("Australia", "Canberra")}

# Right for 8 of 10 countries (mean 0.8): wrong on Kenya and Australia.
TEST = """
import pytest

KNOWN = {{"France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon",
         "Japan": "Tokyo", "Peru": "Lima", "Egypt": "Cairo"}}

def app(country):
    return KNOWN.get(country, "I am not sure")

@pytest.mark.llm_eval(dataset="capitals.jsonl", target=app, scorers=["contains"], thresholds={{"contains": {threshold}}})
def test_capitals(llm_case, llm_eval):
    assert llm_eval.output {extra}
"""

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]


@pytest.fixture
def capitals(pytester, write_jsonl):
    write_jsonl("capitals.jsonl", [{"id": key, "inputs": {"country": country}, "expected": capital}
                                   for key, (country, capital) in CAPITALS.items()])

    def make(threshold: float = 0.7, extra: str = "") -> None:
        pytester.makepyfile(test_capitals=TEST.format(threshold=threshold, extra=extra))

    return make


@pytest.mark.parametrize("xdist", XDIST)
@pytest.mark.parametrize("select", [["test_capitals.py::test_capitals[ke]"], ["-k", "ke"]], ids=["node-id", "-k"])
def test_one_selected_case_is_partial_and_its_threshold_is_reported_not_enforced(pytester, capitals, select, xdist):
    capitals()
    result = pytester.runpytest("--llm-eval", *select, *xdist, "--junitxml=junit.xml", "--llm-eval-report=r.json",
                                "--llm-eval-markdown=r.md")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)  # the case and its gate
    result.stdout.fnmatch_lines([
        "test_capitals.py::test_capitals  dataset capitals.jsonl: partial: 1 of 10 cases  PASS",
        "*contains*0.000*>= 0.7*pass*",
        "*note: partial: 1 of 10 cases ran; the gate judges only these*",
        "*contains 0.000 < 0.7 (95% CI*n=1) [[]not enforced: partial: 1 of 10 cases[]]*",
    ])
    gate = junit_cases(pytester.path / "junit.xml")["llm_eval_gate[contains]"]
    assert gate["failure"] is None and gate["properties"]["llm_eval.partial"] == "1 of 10 cases"
    suite = json.loads((pytester.path / "r.json").read_text())["suites"][0]
    assert (suite["cases_run"], suite["n_rows"], suite["verdict"]) == (1, 10, "pass")
    assert suite["notes"][0].startswith("partial: 1 of 10 cases ran")
    assert "partial: 1 of 10 cases" in (pytester.path / "r.md").read_text()


@pytest.mark.parametrize("xdist", XDIST)
def test_enforce_partial_fails_on_the_threshold(pytester, capitals, xdist):
    capitals()
    result = pytester.runpytest("--llm-eval", "--llm-eval-enforce-partial", "-k", "ke", *xdist)
    assert result.ret == 1
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*contains 0.000 < 0.7 (95% CI*n=1)*", "*partial: 1 of 10 cases*FAIL*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_a_partial_run_pairs_only_its_cases_and_update_keeps_the_others(pytester, capitals, xdist):
    capitals()
    assert pytester.runpytest("--llm-eval-update").ret == 0
    baseline = next((pytester.path / ".llm-eval").rglob("*.json"))
    blessed = baseline.read_bytes()
    result = pytester.runpytest("--llm-eval", "-k", "fr or ke", *xdist, "--junitxml=junit.xml")
    assert result.ret == 0
    gate = junit_cases(pytester.path / "junit.xml")["llm_eval_gate[contains]"]
    assert gate["properties"]["llm_eval.n_paired"] == "2"
    assert gate["properties"]["llm_eval.n"] == "2"
    # An update from a partial run rewrites only its cases (documented): same scores, same bytes.
    assert pytester.runpytest("--llm-eval-update", "-k", "fr or ke", *xdist).ret == 0
    assert baseline.read_bytes() == blessed


@pytest.mark.parametrize("xdist", XDIST)
def test_a_gate_node_id_selects_its_whole_suite(pytester, capitals, xdist):
    capitals(threshold=0.9)
    result = pytester.runpytest("--llm-eval", "test_capitals.py::test_capitals::llm_eval_gate[contains]", *xdist)
    assert result.ret == 1  # judged on all 10 cases: 0.8 < 0.9
    result.assert_outcomes(passed=10, failed=1)
    result.stdout.fnmatch_lines(["*contains 0.800 < 0.9*", "*dataset capitals.jsonl: 10 case(s)  FAIL*"])
    result.stdout.no_fnmatch_line("*partial*")
    result.stdout.no_fnmatch_line("*not found*")


@pytest.mark.parametrize("xdist", XDIST)
@pytest.mark.parametrize("extra", ["", "!= 'I am not sure'"], ids=["gate-only", "gate-and-cases"])
def test_last_failed_after_a_gate_failure_reruns_the_whole_suite(pytester, capitals, xdist, extra):
    pytester.makepyfile(test_other="def test_unrelated():\n    pass\n")
    capitals(threshold=0.9, extra=extra)
    first = pytester.runpytest("--llm-eval", *xdist)
    assert first.ret == 1
    again = pytester.runpytest("--llm-eval", "--lf", *xdist)
    assert again.ret == 1
    failed_cases = 2 if extra else 0
    again.assert_outcomes(passed=10 - failed_cases, failed=1 + failed_cases)  # all 10 cases and the gate, not test_other
    again.stdout.fnmatch_lines(["*contains 0.800 < 0.9*", "*dataset capitals.jsonl: 10 case(s)  FAIL*"])
    again.stdout.no_fnmatch_line("*partial*")


@pytest.mark.parametrize("xdist", XDIST)
def test_cases_a_fixture_stopped_before_they_ran_are_errored_cases_not_an_empty_pass(pytester, capitals, xdist):
    """A broken fixture errors every case in set-up, before the eval sees it: the report
    must not be a complete "pass" with no suite while pytest fails."""
    capitals()
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(autouse=True)
        def database():
            raise RuntimeError("database down")
    """)
    result = pytester.runpytest("--llm-eval", "--llm-eval-report=r.json", "--junitxml=junit.xml", *xdist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*case errors: 10 of 10 case(s) (setup 10)*",
                                 "*note: 10 case(s) errored and are left out of the means*"])
    report = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    (suite,) = report["suites"]
    assert report["verdict"] == "fail" and len(suite["errors"]) == 10
    assert {case["error_kind"] for case in suite["cases"]} == {"setup"}
    assert all("database down" in case["error"] for case in suite["cases"])
