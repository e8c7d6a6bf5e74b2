"""Writes are whole, concurrent writers lose nothing, outputs never overwrite inputs.

Locks around read-merge-write of the baseline folder and the prompt log; appends of whole
lines (a partial last line is set aside, never joined); output paths that are inputs are
refused at start-up; temporary files are ignored by git and cleaned by the next writer;
written files keep the permissions the folder's files have.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PLUGINS_OFF

from pytest_llmeval.cli import main as llm_eval_main
from pytest_llmeval.errors import BaselineError
from pytest_llmeval.fileio import GITIGNORE, file_lock
from pytest_llmeval.gate.baseline import LOCK_NAME, Baseline, BaselineCase, BaselineStore
from pytest_llmeval.prompts import PromptLog
from pytest_llmeval.reporting.progress import PAUSE_ENV

APP = """
import os, pytest

def app(n):
    return "no" if str(n) in os.environ.get("WRONG", "").split(",") else "yes"

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
def test_support(llm_case, llm_eval):
    pass
"""
BASELINE = ".llm-eval/test_eval.py/test_support.json"


@pytest.fixture
def project(pytester, write_jsonl):
    write_jsonl("data.jsonl", [{"id": f"c{i}", "inputs": {"n": i}, "expected": "yes"} for i in range(6)])
    pytester.makepyfile(test_eval=APP)
    return pytester


def _scores(path: Path) -> dict[str, float]:
    return {case_id: case["scores"]["contains"][0] for case_id, case in json.loads(path.read_text())["cases"].items()}


# --------------------------------------------------------------------------- outputs never overwrite inputs


def test_output_paths_that_are_inputs_are_refused_at_start_up(project):
    assert project.runpytest("--llm-eval-update").ret == 0
    (project.path / "prompts").mkdir()
    (project.path / "notes.json").write_text('{"mine": true}\n')
    inputs = {name: (project.path / name).read_bytes() for name in ("data.jsonl", BASELINE, "notes.json")}
    refused = {
        ("--llm-eval-report=data.jsonl",): "a .jsonl file is a dataset or prompt, not a report",
        (f"--llm-eval-report={BASELINE}",): "the file exists and is not a pytest-llmeval report",
        ("--llm-eval-report=notes.json",): "the file exists and is not a pytest-llmeval report",
        ("--llm-eval-markdown=prompts/answer.yaml",): "a .yaml file is a dataset or prompt, not a markdown",
        ("--llm-eval-report=.llm-eval/cache/r.json",): "inside the cache folder",
        ("--llm-eval-report=.llm-eval/prompt-log.jsonl",): "that is the run's prompt log; refusing to overwrite it",
        ("--llm-eval-report=r.json", "--llm-eval-markdown=r.json"): "the same file as the report output",
        ("--llm-eval-report=r.json", "--llm-eval-markdown=data.jsonl"): "not a markdown",
    }
    for args, message in refused.items():
        result = project.runpytest("--llm-eval", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args
        assert message in result.stderr.str(), args
    assert {name: (project.path / name).read_bytes() for name in inputs} == inputs
    # A previous report of the plugin's own is replaced, as before.
    assert project.runpytest("--llm-eval", "--llm-eval-report=r.json", "--llm-eval-markdown=s.md").ret == 0
    assert project.runpytest("--llm-eval", "--llm-eval-report=r.json", "--llm-eval-markdown=s.md").ret == 0
    assert json.loads((project.path / "r.json").read_text())["complete"] is True


# --------------------------------------------------------------------------- concurrent writers


def test_two_concurrent_partial_updates_both_keep_their_cases(project):
    """Run A reads the baseline, then waits at its write while run B updates other cases;
    A's write merges into the file as B left it."""
    assert project.runpytest("--llm-eval-update").ret == 0
    assert set(_scores(project.path / BASELINE).values()) == {1.0}
    flag = project.path / "a-paused.flag"
    env = {**os.environ, "WRONG": "0,1,2,3,4,5", PAUSE_ENV: f"baseline write:{flag}"}
    a = subprocess.Popen([sys.executable, "-m", "pytest", *PLUGINS_OFF, "--llm-eval-update", "-k", "c0 or c1 or c2", "-p", "no:cacheprovider"],
                         cwd=project.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert a.poll() is None and time.monotonic() < deadline, a.communicate()[0].decode()
            time.sleep(0.05)
        b = subprocess.run([sys.executable, "-m", "pytest", *PLUGINS_OFF, "--llm-eval-update", "-k", "c3 or c4", "-p", "no:cacheprovider"],
                           cwd=project.path, env={**env, PAUSE_ENV: ""}, capture_output=True, timeout=120)
        assert b.returncode == 0, b.stdout.decode()
        assert _scores(project.path / BASELINE) == {"c0": 1.0, "c1": 1.0, "c2": 1.0, "c3": 0.0, "c4": 0.0, "c5": 1.0}
        flag.unlink()
        out = a.communicate(timeout=120)[0].decode()
    finally:
        if a.poll() is None:
            a.kill()
    assert a.returncode == 0, out
    assert _scores(project.path / BASELINE) == {"c0": 0.0, "c1": 0.0, "c2": 0.0, "c3": 0.0, "c4": 0.0, "c5": 1.0}


_WRITER = """
import sys
from pathlib import Path
from pytest_llmeval.gate.baseline import Baseline, BaselineCase, BaselineStore
store = BaselineStore(Path(sys.argv[1]))
for i in range(25):
    case_id = f"{sys.argv[2]}{i}"
    store.update("t.py::t", lambda old: Baseline("t.py::t", "d", "f", {**(old.cases if old else {}), case_id: BaselineCase.of("h", {"m": [1.0]})}))
"""


def test_processes_updating_one_baseline_at_once_lose_no_case(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), prefix]) for prefix in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    cases = BaselineStore(tmp_path).load("t.py::t").cases
    assert sorted(cases) == sorted(f"{p}{i}" for p in "abc" for i in range(25))
    assert not list(tmp_path.rglob(".*.tmp"))


_HOLDER = """
import sys, time
from pathlib import Path
from pytest_llmeval.errors import BaselineError
from pytest_llmeval.fileio import file_lock
with file_lock(Path(sys.argv[1]), "the baselines", BaselineError):
    Path(sys.argv[2]).write_text("held")
    time.sleep(float(sys.argv[3]))
"""


def test_a_second_writer_waits_for_the_lock_then_fails_clearly(tmp_path):
    store = BaselineStore(tmp_path)
    baseline = Baseline("t.py::t", "d", "f", {"a": BaselineCase.of("h", {"m": [1.0]})})
    held = tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path / LOCK_NAME), str(held), "60"])
    try:
        while not held.exists():
            assert holder.poll() is None
            time.sleep(0.05)
        with pytest.raises(BaselineError, match="another run has held the lock on the baselines for 0.5 s"):
            with file_lock(tmp_path / LOCK_NAME, "the baselines", BaselineError, timeout=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()
    held.unlink()
    # Another run that holds it briefly is waited for.
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path / LOCK_NAME), str(held), "1.5"])
    while not held.exists():
        time.sleep(0.05)
    started = time.monotonic()
    assert store.write(baseline)
    assert time.monotonic() - started > 0.5 and holder.wait(timeout=30) == 0
    assert store.load("t.py::t") == baseline


# --------------------------------------------------------------------------- the prompt log


def test_an_append_after_a_partial_last_line_sets_the_fragment_aside(tmp_path, capsys):
    path = tmp_path / "prompt-log.jsonl"
    whole = {"name": "a", "version": "1", "at": "2026-01-01T00:00:00+00:00"}
    path.write_text(json.dumps(whole) + "\n" + '{"name": "a", "vers')  # a write killed midway
    reader = PromptLog(path)
    assert reader.entries() == [whole] and "partial last line" in reader.warnings[0]
    assert llm_eval_main(["prompts", "--dir", str(tmp_path / "none"), "--log", str(path)]) == 0
    assert f"warning: {path}:2: partial last line" in capsys.readouterr().err

    log = PromptLog(path)
    new = {"name": "a", "version": "2", "at": "2026-01-02T00:00:00+00:00"}
    log.append([new])
    assert path.read_text().splitlines() == [json.dumps(whole), json.dumps(new, sort_keys=True)]
    assert (tmp_path / "prompt-log.jsonl.partial").read_text() == '{"name": "a", "vers\n'
    assert log.set_aside == tmp_path / "prompt-log.jsonl.partial" and "was moved to" in log.warnings[0]
    assert PromptLog(path).entries() == [whole, new]


_LOGGER = """
import sys
from pathlib import Path
from pytest_llmeval.prompts import PromptLog
log = PromptLog(Path(sys.argv[1]))
for i in range(40):
    log.append([{"name": sys.argv[2], "version": str(i), "at": "t", "metrics": {"m": 0.5}, "suite": "x" * 5000}])
"""


def test_concurrent_appends_interleave_whole_lines(tmp_path):
    path = tmp_path / "log.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _LOGGER, str(path), name]) for name in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    entries = PromptLog(path).entries()
    assert sorted((e["name"], int(e["version"])) for e in entries) == [(n, i) for n in "abc" for i in range(40)]


# --------------------------------------------------------------------------- temporary files and permissions


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_temporary_files_are_never_committable_and_are_cleaned_by_the_next_writer(project):
    subprocess.run(["git", "init", "-q"], cwd=project.path, check=True)
    assert project.runpytest("--llm-eval-update").ret == 0
    folder = project.path / ".llm-eval"
    assert (folder / ".gitignore").read_text() == GITIGNORE
    stale = folder / "test_eval.py" / ".test_support.json.k2j4x.tmp"  # as a write killed by SIGKILL leaves it
    stale.write_text("{half")
    fresh = folder / "test_eval.py" / ".test_support.json.fresh1.tmp"  # another run's write in progress
    fresh.write_text("{")
    (folder / ".baselines.lock").write_text("")
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=project.path, capture_output=True,
                            text=True, check=True).stdout
    assert ".tmp" not in status and ".lock" not in status and BASELINE in status
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert project.runpytest("--llm-eval-update").ret == 0
    assert not stale.exists() and fresh.exists()
    # A .gitignore of the user's own is never changed.
    (folder / ".gitignore").write_text("# mine\n*.tmp\n")
    assert project.runpytest("--llm-eval-update").ret == 0
    assert (folder / ".gitignore").read_text() == "# mine\n*.tmp\n"


@pytest.mark.parametrize("mode", [0o644, 0o664, 0o600])
def test_rewritten_and_new_files_keep_the_folders_permissions(project, monkeypatch, mode):
    assert project.runpytest("--llm-eval-update").ret == 0
    path = project.path / BASELINE
    path.chmod(mode)
    monkeypatch.setenv("WRONG", "1")
    assert project.runpytest("--llm-eval-update").ret == 0
    assert _scores(path)["c1"] == 0.0 and stat.S_IMODE(path.stat().st_mode) == mode
    # A new suite's file in that folder takes its neighbours' permissions.
    project.makepyfile(test_eval=APP + APP.replace("test_support", "test_other").replace("import os, pytest", ""))
    assert project.runpytest("--llm-eval-update").ret == 0
    assert stat.S_IMODE((project.path / ".llm-eval/test_eval.py/test_other.json").stat().st_mode) == mode
