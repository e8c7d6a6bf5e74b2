"""The JSON report, the Markdown summary, junit validity, and merging shard reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import PLUGINS_OFF

from pytest_llmeval.cli import main as llm_eval_main
from pytest_llmeval.reporting.report import ReportError, validate

SNAPSHOTS = Path(__file__).parent / "snapshots"

# Deterministic app: case n is right unless n % 10 == 9; DROP_FROM makes cases >= it wrong
# when n % 4 == 0 (a planted regression).
APP = """
import os, pytest

def app(n):
    drop_from = int(os.environ.get("DROP_FROM", "100000"))
    wrong = n % 10 == 9 or (n >= drop_from and n % 4 == 0)
    return "no" if wrong else "yes"

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains", ("regex", {{"pattern": "y", "name": "says_y"}})],
                      thresholds={{"contains": {threshold}}})
def test_support(llm_case, llm_eval):
    pass
"""


@pytest.fixture
def project(pytester, write_jsonl, monkeypatch):
    def make(n: int = 200, threshold: float = 0.5) -> None:
        write_jsonl("data.jsonl", [{"id": f"q{i:04d}", "inputs": {"n": i}, "expected": "yes"} for i in range(n)])
        pytester.makepyfile(test_eval=APP.format(threshold=threshold))

    return make


def read(path: Path) -> dict:
    doc = json.loads(path.read_text())
    validate(doc, str(path))
    return doc


def test_report_of_a_failing_gate(pytester, project, monkeypatch):
    project(200)
    assert pytester.runpytest("--llm-eval-update").ret == 0
    monkeypatch.setenv("DROP_FROM", "0")
    result = pytester.runpytest("--llm-eval", "--llm-eval-report=out/report.json")
    assert result.ret == 1
    doc = read(pytester.path / "out/report.json")
    assert doc["complete"] is True and doc["verdict"] == "fail"
    assert doc["run"]["versions"]["pytest_llmeval"] and doc["run"]["options"]["alpha"] == 0.05
    [suite] = doc["suites"]
    assert suite["suite_id"] == "test_eval.py::test_support" and suite["dataset"] == "data.jsonl"
    assert suite["fingerprint"].startswith("sha256:") and suite["cases_run"] == 200 and suite["verdict"] == "fail"
    contains = next(m for m in suite["metrics"] if m["name"] == "contains")
    assert contains["baseline_mean"] == 0.9 and contains["mean"] == pytest.approx(0.65)  # 50 planted losses
    assert contains["test"] == "mcnemar-exact" and contains["p_value"] < 0.001 and contains["regressed"]
    assert contains["n_paired"] == 200 and contains["mde"] > 0 and contains["verdict"] == "fail"
    assert any("regressed" in reason for reason in contains["reasons"])
    case = next(c for c in suite["cases"] if c["case_id"] == "q0004")
    assert case["scores"]["contains"] == 0.0 and case["baseline_scores"]["contains"] == 1.0 and case["output"] == "no"


def test_outputs_are_truncated_as_configured(pytester, project):
    project(5)
    pytester.makeini("[pytest]\nllm_eval_report_output_chars = 1\n")
    pytester.runpytest("--llm-eval", "--llm-eval-report=r.json")
    outputs = {c["output"] for c in read(pytester.path / "r.json")["suites"][0]["cases"]}
    assert outputs <= {"y... [2 more characters]", "n... [1 more characters]"}


def test_interrupted_run_writes_a_report_marked_incomplete(pytester, project):
    project(20)
    pytester.makepyfile(test_zz_fail="def test_fail():\n    assert False\n")
    pytester.runpytest("--llm-eval", "-x", "-p", "no:randomly", "--llm-eval-report=r.json", "test_zz_fail.py", "test_eval.py")
    doc = read(pytester.path / "r.json")
    assert doc["complete"] is False and doc["verdict"] == "incomplete"
    assert "stopping after 1 failures" in doc["run"]["incomplete_reason"]
    assert all(suite["verdict"] is None for suite in doc["suites"])


def test_a_killed_run_leaves_no_report_claiming_completeness(pytester, project, write_jsonl):
    project(5)
    assert pytester.runpytest("--llm-eval", "--llm-eval-report=r.json").ret == 0
    assert read(pytester.path / "r.json")["complete"] is True  # a stale, complete report from before
    pytester.makepyfile(test_eval="""
        import time, pytest
        def app(n):
            time.sleep(60)
        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
        def test_support(llm_case, llm_eval):
            pass
    """)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *PLUGINS_OFF, "--llm-eval", "--llm-eval-report=r.json", "-p", "no:xdist"],
                            cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and read(pytester.path / "r.json")["complete"]:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    doc = read(pytester.path / "r.json")
    assert doc["complete"] is False and doc["verdict"] == "incomplete"


def test_markdown_summary_of_a_failing_run(pytester, project, monkeypatch):
    project(200, threshold=0.8)
    assert pytester.runpytest("--llm-eval-update").ret == 0
    monkeypatch.setenv("DROP_FROM", "100")
    pytester.runpytest("--llm-eval", "--llm-eval-markdown=summary.md")
    text = (pytester.path / "summary.md").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("Commit `")) + "\n"
    snapshot = SNAPSHOTS / "failing_summary.md"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.write_text(text)
    assert text == snapshot.read_text()


def test_junit_xml_parses_in_both_families(pytester, project):
    project(20)
    for family in ("xunit2", "xunit1"):
        result = pytester.runpytest("--llm-eval", f"--junitxml=j-{family}.xml", "-o", f"junit_family={family}")
        assert result.ret == 0
        root = ET.parse(pytester.path / f"j-{family}.xml").getroot()
        cases = root.findall(".//testcase")
        assert len(cases) == 20 + 2  # cases + one gate per metric
        suite = root.find("testsuite")
        assert suite.get("tests") == "22" and suite.get("failures") == "0"
        gate = next(c for c in cases if c.get("name") == "llm_eval_gate[contains]")
        assert {p.get("name") for p in gate.iter("property")} >= {"llm_eval.mean", "llm_eval.n", "llm_eval.threshold"}


def test_the_schema_rejects_fields_it_does_not_know(pytester, project):
    project(3)
    pytester.runpytest("--llm-eval", "--llm-eval-report=r.json")
    doc = read(pytester.path / "r.json")
    doc["suites"][0]["metrics"][0]["surprise"] = 1
    with pytest.raises(ReportError, match="surprise"):
        validate(doc)
    del doc["suites"][0]["metrics"][0]["surprise"]
    doc["suites"][0]["cases"][0]["scores"]["contains"] = "high"
    with pytest.raises(ReportError, match="cases/0/scores/contains"):
        validate(doc)


def _comparable(doc: dict) -> list:
    """What a merge must reproduce: per suite everything but run-dependent timing."""
    suites = []
    for suite in doc["suites"]:
        suite = dict(suite)
        suite["cases"] = sorted(({k: v for k, v in c.items() if k != "latency_ms"} for c in suite["cases"]),
                                key=lambda c: (c["case_id"], c["repeat"]))
        suite["usage"] = {k: v for k, v in (suite["usage"] or {}).items() if not k.startswith("latency")}
        suite["usage_gates"] = [g for g in suite["usage_gates"] if not g["name"].startswith("latency")]
        suites.append(suite)
    return suites


def test_merging_three_shards_equals_the_unsplit_run(pytester, project, monkeypatch):
    project(300)
    assert pytester.runpytest("--llm-eval-update").ret == 0
    monkeypatch.setenv("DROP_FROM", "150")
    whole = pytester.runpytest("--llm-eval", "--llm-eval-report=whole.json")
    assert whole.ret == 1
    for i in (1, 2, 3):
        shard = pytester.runpytest("--llm-eval", f"--llm-eval-shard={i}/3", f"--llm-eval-report=shard{i}.json")
        assert shard.ret == 0  # the gate is deferred to the merge
        shard.stdout.fnmatch_lines([f"*llm-eval: shard {i}/3*", "*deferred*llm-eval merge*"])
        assert read(pytester.path / f"shard{i}.json")["verdict"] == "deferred"
    sizes = [len(read(pytester.path / f"shard{i}.json")["suites"][0]["cases"]) for i in (1, 2, 3)]
    assert sum(sizes) == 300 and min(sizes) > 60

    monkeypatch.chdir(pytester.path)
    code = llm_eval_main(["merge", "shard1.json", "shard2.json", "shard3.json", "-o", "merged.json", "--markdown", "merged.md"])
    assert code == 1  # the planted drop fails the merged gate, as it fails the unsplit run
    merged, unsplit = read(pytester.path / "merged.json"), read(pytester.path / "whole.json")
    assert merged["verdict"] == unsplit["verdict"] == "fail"
    assert merged["run"]["merged_from"] == ["shard1.json", "shard2.json", "shard3.json"]
    assert _comparable(merged) == _comparable(unsplit)
    assert "❌ fail" in (pytester.path / "merged.md").read_text()


def test_merge_refuses_overlapping_incompatible_or_incomplete_reports(pytester, project, capsys, monkeypatch):
    project(30)
    pytester.runpytest("--llm-eval", "--llm-eval-shard=1/2", "--llm-eval-report=a.json")
    pytester.runpytest("--llm-eval", "--llm-eval-shard=2/2", "--llm-eval-alpha=0.1", "--llm-eval-report=b.json")
    pytester.makepyfile(test_zz="def test_z():\n    assert False\n")
    pytester.runpytest("--llm-eval", "-x", "--llm-eval-report=c.json", "test_zz.py", "test_eval.py")
    pytester.runpytest("--llm-eval", "--llm-eval-report=whole.json", "test_eval.py")
    (pytester.path / "test_zz.py").unlink()
    write = pytester.path / "data.jsonl"
    write.write_text(write.read_text().replace('"expected": "yes"', '"expected": "yes!"', 1))
    pytester.runpytest("--llm-eval", "--llm-eval-shard=2/2", "--llm-eval-report=d.json")
    (pytester.path / "bad.json").write_text("{}")
    monkeypatch.chdir(pytester.path)
    cases = {
        ("a.json",): "missing shard(s) 2/2",
        ("a.json", "a.json"): "shard 1/2 is also a.json",
        ("a.json", "b.json"): "option alpha=0.1 differs from a.json",
        ("a.json", "c.json"): "the run was incomplete",
        ("a.json", "d.json"): "has fingerprint=",
        ("a.json", "bad.json"): "not a valid pytest-llmeval report",
        ("whole.json", "whole.json"): "is also in whole.json; shards must not overlap",
        ("a.json", "missing.json"): "report not found",
    }
    for files, message in cases.items():
        assert llm_eval_main(["merge", *files, "-o", "out.json"]) == 2
        assert message in capsys.readouterr().err
    assert not (pytester.path / "out.json").exists()


def test_merge_outside_the_checkout_finds_the_recorded_baselines_or_refuses(pytester, project, monkeypatch, capsys, tmp_path_factory):
    project(60)
    assert pytester.runpytest("--llm-eval-update").ret == 0
    monkeypatch.setenv("DROP_FROM", "30")
    for i in (1, 2):
        assert pytester.runpytest("--llm-eval", f"--llm-eval-shard={i}/2", f"--llm-eval-report=shard{i}.json").ret == 0
    shards = [str(pytester.path / f"shard{i}.json") for i in (1, 2)]
    assert read(pytester.path / "shard1.json")["run"]["baseline_dir"] == str(pytester.path / ".llm-eval")
    inside = llm_eval_main(["merge", *shards, "-o", str(pytester.path / "inside.json")])
    assert inside == 1  # the planted drop, judged against the baseline

    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert llm_eval_main(["merge", *shards, "-o", "outside.json"]) == 1  # the reports' recorded baseline folder
    assert read(pytester.path / "inside.json")["suites"][0]["metrics"] == read(Path("outside.json"))["suites"][0]["metrics"]
    # Reports from another machine (CI artifacts): their recorded folder is not here.
    for shard in shards:
        doc = read(Path(shard))
        doc["run"]["baseline_dir"] = "/nonexistent/ci-runner/project/.llm-eval"
        Path(shard).write_text(json.dumps(doc), encoding="utf-8")
    capsys.readouterr()
    assert llm_eval_main(["merge", *shards, "-o", "refused.json"]) == 2  # never judged without baselines silently
    assert "cannot find the baseline folder: the reports recorded /nonexistent/ci-runner/project/.llm-eval" in capsys.readouterr().err
    assert not Path("refused.json").exists()
    monkeypatch.chdir(pytester.path)  # the same reports merged in a checkout: its own .llm-eval
    assert llm_eval_main(["merge", *shards, "-o", "checkout.json"]) == 1
    assert read(pytester.path / "checkout.json")["suites"][0]["baseline"]["found"] is True
    assert llm_eval_main(["merge", *shards, "-o", "given.json", "--baseline-dir", str(pytester.path / ".llm-eval")]) == 1
