"""The HTML report's view builder, its escaping, its writers (option, `llm-eval html`), and
the Jinja2 extra. The page in a real browser: tests/test_html_browser.py."""

from __future__ import annotations

import json
import re
import sys

import pytest

from pytest_llmeval.cli import main
from pytest_llmeval.errors import LLMEvalError
from pytest_llmeval.reporting.html import build_page, case_rows, histogram, render_html, require_jinja2
from pytest_llmeval.reporting.report import load_report

pytest.importorskip("jinja2")

APP = """
import os, pytest

ANSWERS = {"a": "14 days", "b": "</script><script>alert('x')</script> 14 days", "c": "no idea", "d": "14 days & more"}

def app(key, note):
    if key == "e":
        raise RuntimeError("model down")
    answer = ANSWERS[key]
    return "no idea" if key in os.environ.get("WRONG", "") else answer

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
def test_refunds(llm_case, llm_eval):
    if llm_case.id == "d":
        llm_eval.flag_for_review("check the wording")
"""


@pytest.fixture
def report(pytester, write_jsonl, monkeypatch):
    write_jsonl("data.jsonl", [{"id": k, "inputs": {"key": k, "note": "<i>x</i>"}, "expected": "14 days"} for k in "abcde"])
    pytester.makepyfile(test_eval=APP)
    pytester.runpytest("--llm-eval-update", "--llm-eval-report=blessed.json")
    monkeypatch.setenv("WRONG", "a")
    pytester.runpytest("--llm-eval", "--llm-eval-report=r.json", "--llm-eval-html=r.html")
    return load_report(pytester.path / "r.json")


def test_rows_put_regressions_first_then_errors_and_flags(report):
    rows = case_rows(report)
    assert [(r["id"], r["status"]) for r in rows] == [("a", "regressed"), ("e", "error"), ("d", "review"), ("b", "same"), ("c", "same")]
    a = rows[0]
    assert a["delta"] == -1.0 and a["scores"] == {"contains": 0.0} and a["baseline"] == {"contains": 1.0}
    assert a["outputs"] == ["no idea"] and a["baseline_output"] == "14 days"
    assert [f["reason"] for f in a["flags"]] == ["output_changed"]
    assert a["inputs"] == '{"key": "a", "note": "<i>x</i>"}' and a["expected"] == "14 days"
    assert rows[1]["error"] == "app raised RuntimeError: model down"
    assert rows[2]["flags"] == [{"reason": "manual", "detail": "check the wording"}]


def test_page_view_has_the_verdict_table_totals_and_charts(report):
    page = build_page(report)
    assert page.verdict == "fail" and page.case_count == 5 and page.review_count == 2  # a (output changed), d
    assert page.tabs == () and page.variant_groups == () and page.route_groups == ()  # no variants or routes: no tabs
    [suite] = page.suites
    [metric] = suite.metrics
    assert (metric.name, metric.mean, metric.baseline, metric.verdict) == ("contains", "0.500", "0.750", "pass")
    assert dict(page.totals)["cases"] == "5" and dict(page.totals)["errors"] == "1"
    titles = [c.title for c in suite.charts]
    assert titles[:2] == ["contains: score distribution", "contains: paired change per case"]
    assert suite.charts[1].note == "1 down, 0 up, 3 unchanged of 4 paired"


def test_the_page_is_self_contained_and_escapes_every_text(pytester, report):
    html = (pytester.path / "r.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing to fetch when viewed
    assert "<script>alert" not in html and "<i>x</i>" not in html
    data = re.search(r'<script type="application/json" id="llm-eval-data">(.*?)</script>', html, re.DOTALL).group(1)
    rows = json.loads(data)["cases"]
    assert next(r for r in rows if r["id"] == "b")["outputs"] == ["</script><script>alert('x')</script> 14 days"]
    assert html.count("<svg") == len(build_page(report).suites[0].charts)


def test_histogram_counts_each_value_once_and_clamps_to_the_end_bins():
    chart = histogram("t", [[0.0, 0.05, 0.5, 1.0, 1.0, 7.0]], 0.0, 1.0, 10, legend=("current",))
    counts = {bar.title.split(": ")[0]: int(bar.title.split(": ")[1].split(" ")[0]) for bar in chart.bars}
    assert counts == {"0 to 0.1": 2, "0.5 to 0.6": 1, "0.9 to 1": 3}


def test_llm_eval_html_renders_a_report_file(pytester, report, capsys):
    assert main(["html", str(pytester.path / "r.json"), "-o", str(pytester.path / "again.html")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (pytester.path / "again.html").read_text(encoding="utf-8") == render_html(build_page(report))
    (pytester.path / "bad.json").write_text("{}")
    assert main(["html", str(pytester.path / "bad.json"), "-o", str(pytester.path / "x.html")]) == 2
    assert "not a valid pytest-llmeval report" in capsys.readouterr().err


def test_the_page_under_xdist_has_every_case_and_flag(pytester, write_jsonl):
    write_jsonl("data.jsonl", [{"id": k, "inputs": {"key": k, "note": ""}, "expected": "14 days"} for k in "abcd"])
    pytester.makepyfile(test_eval=APP)
    pytester.runpytest("--llm-eval", "-n", "2", "--llm-eval-html=r.html")
    html = (pytester.path / "r.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="llm-eval-data">(.*?)</script>', html, re.DOTALL).group(1))
    assert sorted(r["id"] for r in data["cases"]) == ["a", "b", "c", "d"]
    assert next(r for r in data["cases"] if r["id"] == "d")["flags"] == [{"reason": "manual", "detail": "check the wording"}]


def test_an_interrupted_run_leaves_an_html_page_that_says_so(pytester, write_jsonl):
    write_jsonl("data.jsonl", [{"id": k, "inputs": {"key": k, "note": ""}, "expected": "14 days"} for k in "abcde"])
    pytester.makepyfile(test_eval=APP, test_broken="def test_first(): assert False")
    pytester.runpytest("--llm-eval", "-x", "--llm-eval-html=r.html", "-p", "no:randomly", "test_broken.py", "test_eval.py")
    html = (pytester.path / "r.html").read_text(encoding="utf-8")
    assert "Incomplete run: stopping after 1 failures" in html


def test_without_jinja2_the_option_is_refused_before_the_run(pytester, write_jsonl, monkeypatch):
    monkeypatch.setitem(sys.modules, "jinja2", None)
    with pytest.raises(LLMEvalError, match=r"pip install 'pytest-llmeval\[html\]'"):
        require_jinja2()
    write_jsonl("data.jsonl", [{"id": "a", "inputs": {"key": "a"}, "expected": "14 days"}])
    pytester.makepyfile(test_eval=APP)
    result = pytester.runpytest("--llm-eval", "--llm-eval-html=r.html")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*the HTML report needs Jinja2: pip install 'pytest-llmeval?html?'"])
    assert not (pytester.path / "r.html").exists()


def test_pytest_html_report_gets_the_eval_summary_and_a_link(pytester, write_jsonl):
    pytest.importorskip("pytest_html")
    write_jsonl("data.jsonl", [{"id": k, "inputs": {"key": k, "note": ""}, "expected": "14 days"} for k in "abcd"])
    pytester.makepyfile(test_eval=APP)
    result = pytester.runpytest("--llm-eval", "--html=ci/pytest.html", "--llm-eval-html=ci/eval/r.html")
    assert result.ret == 0
    page = (pytester.path / "ci" / "pytest.html").read_text(encoding="utf-8")
    summary = page[page.index('<div class="llm-eval-summary">'):]
    assert '<a href="eval/r.html">eval/r.html</a>' in summary
    assert "<td>contains</td><td>0.750</td>" in summary and "<strong>test_eval.py::test_refunds</strong>: pass" in summary
    assert "1 flagged for review" in summary
