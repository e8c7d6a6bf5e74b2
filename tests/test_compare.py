"""`llm-eval compare`: two reports judged with the gate's statistics."""

from __future__ import annotations

import json

import pytest
from test_regression import NOISY_APP, rows

from pytest_llmeval.cli import main
from pytest_llmeval.reporting.compare import compare_reports
from pytest_llmeval.reporting.report import load_report, validate


@pytest.fixture
def two_runs(pytester, write_jsonl, monkeypatch):
    """Report A blesses the baseline (seed 1); report B plants a 6-point drop (seed 3)."""
    write_jsonl("data.jsonl", rows(300))
    pytester.makepyfile(test_eval=NOISY_APP)
    monkeypatch.setenv("APP_SEED", "1")
    assert pytester.runpytest("--llm-eval-update", f"--llm-eval-report={pytester.path / 'a.json'}").ret == 0
    monkeypatch.setenv("APP_SEED", "3")
    monkeypatch.setenv("APP_DROP", "0.06")
    pytester.runpytest("--llm-eval", f"--llm-eval-report={pytester.path / 'b.json'}")
    return pytester.path / "a.json", pytester.path / "b.json"


def test_a_planted_drop_gives_the_gates_p_value(two_runs, capsys):
    a, b = two_runs
    gate = load_report(b)["suites"][0]["metrics"][0]
    assert gate["n_paired"] == 300 and gate["change"] < -0.04

    doc, _ = compare_reports((str(a), load_report(a)), (str(b), load_report(b)))
    validate(doc)
    compared = doc["suites"][0]["metrics"][0]
    for key in ("p_value", "p_adjusted", "change", "change_ci_low", "change_ci_high", "mde", "n_paired", "test", "verdict"):
        assert compared[key] == gate[key], key
    assert doc["verdict"] == load_report(b)["verdict"]
    assert doc["run"]["compared_with"] == {"base": str(a), "head": str(b), "base_git": {}}

    code = main(["compare", str(a), str(b), "--markdown", str(a.parent / "c.md"), "--html", str(a.parent / "c.html"),
                 "-o", str(a.parent / "c.json")])
    out = capsys.readouterr().out
    assert code == (1 if gate["verdict"] == "fail" else 0)
    assert f"{b} judged against {a}: {doc['verdict'].upper()}" in out
    assert "test_eval.py::test_support  dataset data.jsonl: 300 case(s), 300 paired with the baseline" in out
    assert f"judged against `{a}`" in (a.parent / "c.md").read_text()
    assert f"Compared with {a}" in (a.parent / "c.html").read_text()
    assert load_report(a.parent / "c.json")["suites"][0]["metrics"][0]["p_value"] == gate["p_value"]


def test_a_report_compared_with_itself_passes(two_runs, capsys):
    a, _ = two_runs
    assert main(["compare", str(a), str(a)]) == 0
    assert "+0.000 (+0.000..+0.000)" in capsys.readouterr().out


def test_unusable_input_exits_2(two_runs, tmp_path, capsys):
    a, b = two_runs
    assert main(["compare", str(a), str(tmp_path / "missing.json")]) == 2
    assert "report not found" in capsys.readouterr().err
    doc = json.loads(b.read_text())
    doc.update(complete=False, verdict="incomplete")
    doc["run"]["incomplete_reason"] = "stopping after 1 failures"
    (tmp_path / "partial.json").write_text(json.dumps(doc))
    assert main(["compare", str(a), str(tmp_path / "partial.json")]) == 2
    assert "the run was incomplete (stopping after 1 failures)" in capsys.readouterr().err
