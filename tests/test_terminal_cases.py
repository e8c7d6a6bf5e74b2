"""The cases behind a verdict in pytest's terminal: worst cases under a failed gate, per-case
scores with -v, and cases below their per-case minimum as failed items."""

from __future__ import annotations

import pytest

APP = """
import os, pytest

def app(n):
    broken = int(os.environ.get("BROKEN", "0"))
    return f"answer {n}: " + ("see the help page" if n < broken else "open Settings") + "\\n(second line)"

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], thresholds={"contains": 0.9})
def test_answers(llm_case, llm_eval):
    pass
"""


@pytest.fixture
def answers(pytester, write_jsonl, monkeypatch):
    write_jsonl("data.jsonl", [{"id": f"c{i:02d}", "inputs": {"n": i}, "expected": "Settings"} for i in range(40)])
    pytester.makepyfile(test_eval=APP)

    def run(*args: str, broken: int = 0):
        monkeypatch.setenv("BROKEN", str(broken))
        return pytester.runpytest("--llm-eval", "-p", "no:cacheprovider", *args)

    return run


def test_a_failed_gate_lists_its_worst_cases_and_v_lists_all(answers):
    assert answers("--llm-eval-update").ret == 0
    result = answers(broken=8)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*contains*0.800*fail*",
        "  worst cases for contains (8 dropped against the baseline, 3 more with -v):",
        "    c00  contains 0.000 vs baseline 1.000  'answer 0: see the help page (second line)'",
        "    c01  contains 0.000 vs baseline 1.000  'answer 1: see the help page (second line)'",
        "    c02  *", "    c03  *", "    c04  *",
    ])
    assert "    c05  contains" not in result.stdout.str()

    verbose = answers("-v", broken=8)
    verbose.stdout.fnmatch_lines(["  worst cases for contains (8 dropped against the baseline):", "    c00  *"])
    assert "    c07  contains 0.000 vs baseline 1.000" in verbose.stdout.str()


def test_without_a_baseline_the_lowest_scoring_cases_are_listed(answers):
    result = answers(broken=12)
    result.stdout.fnmatch_lines(["*contains 0.700 < 0.9*", "  worst cases for contains (12 scored lowest, 7 more with -v):",
                                 "    c00  contains 0.000  'answer 0: see the help page (second line)'"])


def test_v_shows_each_cases_scores(answers):
    result = answers("-v", broken=1)
    for line in ("test_eval.py::test_answers?c00? PASSED (contains=0.000)*", "test_eval.py::test_answers?c01? PASSED (contains=1.000)*"):
        result.stdout.fnmatch_lines([line])  # each on its own: pytest-randomly may run them in any order


def test_v_shows_scores_under_xdist_too(answers):
    result = answers("-v", "-n", "2", broken=1)
    result.stdout.fnmatch_lines(["*PASSED (contains=0.000) test_eval.py::test_answers?c00?*"])


def test_a_case_below_its_case_minimum_fails_as_an_item(answers, pytester):
    pytester.makepyfile(test_eval=APP.replace('thresholds={"contains": 0.9}', 'case_thresholds={"contains": 1.0}'))
    result = answers("-rf", broken=2)
    result.assert_outcomes(failed=2, passed=38 + 1)
    result.stdout.fnmatch_lines(["FAILED test_eval.py::test_answers?c00? - Failed: contains 0 < case minimum 1"])


def test_live_progress_line_when_asked_and_never_in_a_log_by_default(answers):
    shown = answers("--llm-eval-progress=on", "-p", "no:randomly", broken=4)  # the progress counts cases in dataset order
    lines = [line.replace("\x1b[K", "").strip() for line in shown.stderr.lines]  # each rewrite starts with \r
    assert "llm-eval test_eval.py::test_answers 1/40 · contains 0.000 · errors 0" in lines
    assert "llm-eval test_eval.py::test_answers 40/40 · contains 0.900 · errors 0" in lines
    shown.stdout.fnmatch_lines(["test_eval.py .*"])  # the eval cases print no dots of their own: only the gate's
    assert "llm-eval test_eval.py" not in answers(broken=4).stderr.str()  # auto: stderr is not a terminal here


def test_progress_auto_needs_a_terminal_outside_ci_and_not_verbose(monkeypatch):
    from pytest_llmeval.glue.progress import progress_wanted

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("CI", raising=False)
    assert progress_wanted("auto", 0, Tty()) and not progress_wanted("auto", 1, Tty()) and not progress_wanted("auto", 0, None)
    monkeypatch.setenv("CI", "true")
    assert not progress_wanted("auto", 0, Tty()) and progress_wanted("on", 0, None) and not progress_wanted("off", 0, Tty())
