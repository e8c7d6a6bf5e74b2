"""A report never claims more than happened: Ctrl-C (SIGINT to the process group) and
SIGKILL at each phase of an update run, serially and under -n 2.

The run pauses at a phase through the test-only hook PYTEST_LLMEVAL_TEST_PAUSE (see
pytest_llmeval.reporting.progress), so the signal lands at a known point. The project
starts with a previous run's complete, passing report in place: whatever the signal, the
report afterwards is incomplete, names the phase, and lists exactly the files written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PLUGINS_OFF

from pytest_llmeval.reporting.progress import PAUSE_ENV
from pytest_llmeval.reporting.report import validate

APP = """
import pytest
from pytest_llmeval.prompts import render

def app(question):
    return render("answer", question=question)

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
def test_support(llm_case, llm_eval):
    pass
"""
BASELINE = ".llm-eval/test_eval.py/test_support.json"
LOG = ".llm-eval/prompt-log.jsonl"
# What each phase has written before it begins (an update run).
WRITTEN_BEFORE = {"start": [], "cases": [], "gate": [], "baseline write": [], "prompt log": [BASELINE], "report": [BASELINE, LOG]}
ARGS = ["--llm-eval-update", "--llm-eval-report=r.json", "--llm-eval-markdown=summary.md", "-p", "no:cacheprovider", "-q"]


def _pytest(cwd: Path, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pytest", *PLUGINS_OFF, *args], cwd=cwd, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A project whose last run left a complete, passing report, Markdown, baseline and log."""
    root = tmp_path_factory.mktemp("interrupt-template")
    (root / "data.jsonl").write_text("".join(json.dumps({"id": f"c{i}", "inputs": {"question": f"q{i}"}, "expected": "yes"}) + "\n"
                                             for i in range(6)))
    (root / "test_eval.py").write_text(APP)
    (root / "prompts").mkdir()
    (root / "prompts/answer.yaml").write_text("template: 'yes to {question}'\n")
    (root / "pytest.ini").write_text("[pytest]\n")
    proc = _pytest(root, *ARGS, "-p", "no:xdist")
    out = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, out
    report = json.loads((root / "r.json").read_text())
    assert report["complete"] is True and report["verdict"] == "pass"
    assert report["run"]["files_written"] == [BASELINE, LOG, "summary.md"]
    # Leave the previous report in place but start from no baseline and an empty log, so
    # the files the interrupted run lists can be checked against the disk.
    (root / BASELINE).unlink()
    (root / LOG).unlink()
    return root


def _interrupt(project: Path, phase: str, sig: int, dist: tuple[str, ...]) -> tuple[int, str]:
    flag = project / "paused.flag"
    proc = _pytest(project, *ARGS, *dist, env={PAUSE_ENV: f"{phase}:{flag}"})
    try:
        deadline = time.monotonic() + 240
        while not flag.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.communicate()[0].decode()
                pytest.fail(f"the run never reached the {phase} phase (exit {proc.returncode}):\n{out}")
            time.sleep(0.05)
        time.sleep(0.2)
        os.killpg(proc.pid, sig)  # Ctrl-C in a terminal reaches the whole foreground group
        out = proc.communicate(timeout=120)[0].decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out


def _copy(template: Path, tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(template, project)
    return project


DISTS = [pytest.param(("-p", "no:xdist"), id="serial"), pytest.param(("-n", "2"), id="xdist")]


@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("phase", ["cases", "gate", "baseline write", "prompt log", "report"])
def test_ctrl_c_at_each_phase_leaves_an_incomplete_report_listing_what_was_written(template, tmp_path, phase, dist):
    project = _copy(template, tmp_path)
    code, out = _interrupt(project, phase, signal.SIGINT, dist)
    assert code == 2, out  # pytest's "interrupted"
    doc = json.loads((project / "r.json").read_text())
    validate(doc)
    assert doc["complete"] is False and doc["verdict"] == "incomplete", out
    assert f"stopped in the {phase} phase" in doc["run"]["incomplete_reason"]
    assert all(suite["verdict"] is None for suite in doc["suites"])
    written = WRITTEN_BEFORE[phase]
    assert doc["run"]["files_written"] == [*written, "summary.md"]
    assert (project / BASELINE).exists() == (BASELINE in written)
    assert (project / LOG).exists() == (LOG in written)
    markdown = (project / "summary.md").read_text()
    assert markdown.startswith("## llm-eval: INCOMPLETE") and "PASS" not in markdown
    assert not list(project.rglob(".*.tmp"))


@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("phase", ["start", "cases", "gate", "baseline write", "prompt log", "report"])
def test_sigkill_at_each_phase_leaves_the_in_progress_report_never_the_previous_one(template, tmp_path, phase, dist):
    project = _copy(template, tmp_path)
    _interrupt(project, phase, signal.SIGKILL, dist)
    doc = json.loads((project / "r.json").read_text())
    validate(doc)
    assert doc["complete"] is False and doc["verdict"] == "incomplete" and doc["suites"] == []
    assert f"in the {phase} phase (still running, or killed)" in doc["run"]["incomplete_reason"]
    assert doc["run"]["files_written"] == WRITTEN_BEFORE[phase]
    assert (project / "summary.md").read_text().startswith("## llm-eval: INCOMPLETE")
