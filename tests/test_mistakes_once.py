"""Mistakes are found at collection, once, and a case's error is one message: a target
that cannot take the dataset's keys, a threshold naming a metric no scorer records,
chained app errors, error counts by kind, and non-ASCII row ids."""

from __future__ import annotations

import pytest

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]


@pytest.fixture
def rows(write_jsonl):
    return write_jsonl("data.jsonl", [{"id": f"q{n}", "inputs": {"question": f"q{n}"}, "expected": "yes"} for n in range(6)])


@pytest.mark.parametrize("xdist", XDIST)
def test_a_target_that_cannot_take_the_inputs_is_one_collection_error(pytester, rows, xdist):
    pytester.makepyfile(test_eval="""
        import pytest

        def answer(q):
            return "yes"

        @pytest.mark.llm_eval(dataset="data.jsonl", target=answer, scorers=["contains"])
        def test_eval(llm_case, llm_eval):
            pass
    """)
    result = pytester.runpytest("--llm-eval", *xdist)
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if xdist else pytest.ExitCode.INTERRUPTED)  # xdist's way
    message = "target answer(q) cannot take the inputs of row 'q0' (data.jsonl:1): keys ['question']; missing a required argument: 'q'"
    assert message in result.stdout.str()
    if not xdist:  # once for the suite, not once per case (each xdist worker collects, and reports it)
        assert result.stdout.str().count("cannot take the inputs") == 1
    assert "recorder.py" not in result.stdout.str() and "runner.py" not in result.stdout.str()


@pytest.mark.parametrize("argument", ["thresholds", "case_thresholds", "max_drop"])
def test_a_threshold_typo_is_found_at_collection_with_a_suggestion(pytester, rows, argument):
    pytester.makepyfile(test_eval=f"""
        import pytest

        @pytest.mark.llm_eval(dataset="data.jsonl", target=lambda question: "yes", scorers=["contains"], {argument}={{"contain": 0.8}})
        def test_eval(llm_case, llm_eval):
            pass
    """)
    result = pytester.runpytest("--llm-eval")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*{argument}= names 'contain', which no scorer of this suite records; did you mean 'contains'?*"])
    result.stdout.no_fnmatch_line("*llm-eval summary*")


APP_ERROR = """
import pytest

def answer(question):
    if question == "q1":
        raise RuntimeError("upstream said no")
    return "yes"

@pytest.mark.llm_eval(dataset="data.jsonl", target=answer, scorers=["contains"])
def test_eval(llm_case, llm_eval):
    pass
"""


@pytest.mark.parametrize("xdist", XDIST)
def test_an_app_error_is_one_message_and_the_chain_only_with_tb_long(pytester, rows, xdist):
    pytester.makepyfile(test_eval=APP_ERROR)
    short = pytester.runpytest("--llm-eval", "-rN", *xdist)
    assert short.ret == 1
    assert short.stdout.str().count("upstream said no") == 1
    short.stdout.fnmatch_lines(["case 'q1': app raised RuntimeError: upstream said no",
                                "  raised at *test_eval.py:5 in answer (--tb=long shows the traceback)"])
    long = pytester.runpytest("--llm-eval", "-rN", "--tb=long", *xdist)
    assert long.stdout.str().count("upstream said no") > 1
    long.stdout.fnmatch_lines(["*The above exception was the direct cause of the following exception*"])


SCORER_ERRORS = """
import pytest
from pytest_llmeval import scorer

@scorer("picky")
def picky(output, case):
    if case.inputs["question"] in ("q1", "q3", "q5"):
        raise ValueError("cannot score this")
    return 1.0

@pytest.mark.llm_eval(dataset="data.jsonl", target=lambda question: "yes", scorers=["contains", "picky"])
def test_eval(llm_case, llm_eval):
    pass
"""


@pytest.mark.parametrize("xdist", XDIST)
def test_the_summary_counts_every_kind_of_case_error(pytester, rows, xdist):
    pytester.makepyfile(test_eval=SCORER_ERRORS)
    result = pytester.runpytest("--llm-eval", *xdist)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "test_eval.py::test_eval  dataset data.jsonl: 6 case(s), 3 errored (scorer 3)  *",
        "  case errors: 3 of 6 case(s) (scorer 3)",
    ])


UNICODE = """
import pytest

@pytest.mark.llm_eval(dataset="data.jsonl", target=lambda question: "yes", scorers=["contains"])
def test_uni(llm_case, llm_eval):
    pass
"""


def test_non_ascii_ids_are_escaped_and_selected_as_documented(pytester, write_jsonl):
    write_jsonl("data.jsonl", [{"id": "café", "inputs": {"question": "q"}, "expected": "yes"},
                               {"id": "tea", "inputs": {"question": "q"}, "expected": "yes"}])
    pytester.makepyfile(test_uni=UNICODE)
    # By default pytest escapes non-ASCII in ids; the escaped node id selects the row.
    escaped = pytester.runpytest("--llm-eval", "-v", "test_uni.py::test_uni[caf\\xe9]")
    assert escaped.ret == 0
    escaped.stdout.fnmatch_lines(["test_uni.py::test_uni[[]caf\\xe9[]] PASSED*"])
    escaped.assert_outcomes(passed=2)  # the case and its gate
    # With pytest's ini option the ids stay as written, and -k selects by the row id.
    pytester.makeini("[pytest]\ndisable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n")
    plain = pytester.runpytest("--llm-eval", "-v", "-k", "café")
    assert plain.ret == 0
    plain.stdout.fnmatch_lines(["test_uni.py::test_uni[[]café[]] PASSED*"])
    plain.assert_outcomes(passed=2)
