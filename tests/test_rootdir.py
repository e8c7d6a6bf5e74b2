"""Results do not depend on where output files go or which folder pytest guesses as rootdir:
suite ids and baselines stay anchored to the project, evals outside the rootdir are refused
rather than merged, and a baseline that existed before and is gone now is said loudly."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from conftest import junit_cases

TEST = """
import pytest

def app(question):
    return "Paris" if question != "q3" else "Lyon"

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
def test_same(llm_case, llm_eval):
    pass
"""

ROWS = [{"id": f"q{i}", "inputs": {"question": f"q{i}"}, "expected": "Paris"} for i in range(6)]


@pytest.fixture
def project(pytester, monkeypatch):
    """A project in ./proj (its own pyproject.toml) beside an ./out folder; cwd is the project."""
    proj = pytester.mkdir("proj")
    (proj / "pyproject.toml").write_text("[tool.pytest.ini_options]\n", encoding="utf-8")
    (proj / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    (proj / "test_eval.py").write_text(TEST, encoding="utf-8")
    pytester.mkdir("out")
    monkeypatch.chdir(proj)
    return proj


def test_an_output_path_outside_the_project_never_moves_the_rootdir(pytester, project):
    assert pytester.runpytest("--llm-eval-update").ret == 0
    first = pytester.runpytest("--llm-eval", "--llm-eval-report", "../out/r.json")
    assert first.ret == 0, first.stdout.str()
    # The report now exists: pytest would take it for a test path and move its rootdir to ../out.
    second = pytester.runpytest("--llm-eval", "--llm-eval-report", "../out/r.json")
    assert second.ret == pytest.ExitCode.USAGE_ERROR
    second.stderr.fnmatch_lines(["*pytest took '../out/r.json', the value of --llm-eval-report, for a test path and chose "
                                 "the rootdir*not the project at*pyproject.toml*Write --llm-eval-report=../out/r.json*"])
    one_word = pytester.runpytest("--llm-eval", "--llm-eval-report=../out/r.json")
    assert one_word.ret == 0
    report = json.loads((pytester.path / "out" / "r.json").read_text(encoding="utf-8"))
    assert [s["suite_id"] for s in report["suites"]] == ["test_eval.py::test_same"]
    assert report["suites"][0]["baseline"]["found"] is True
    assert pytester.runpytest("--llm-eval", "--llm-eval-report", "../out/r.json", f"--rootdir={project}").ret == 0


@pytest.mark.parametrize("option", ["--llm-eval-report", "--llm-eval-markdown"])
def test_xdist_workers_keep_the_project_s_rootdir_after_the_run_creates_its_outputs(pytester, project, option):
    """The in-progress report is written at start-up, before the workers parse the command
    line: they must not take it for a test path as a second run's controller would."""
    assert pytester.runpytest("--llm-eval-update").ret == 0
    report_path = pytester.path / "out" / "r.json" if option == "--llm-eval-report" else project / "r.json"
    others = [] if option == "--llm-eval-report" else ["--llm-eval-report=r.json"]
    value = "../out/r.json" if option == "--llm-eval-report" else "../out/r.md"
    result = pytester.runpytest("--llm-eval", "-n", "2", option, value, *others)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*test_eval.py::test_same  dataset data.jsonl: 6 case(s)*"])
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["complete"] is True and report["verdict"] == "pass"
    assert [s["suite_id"] for s in report["suites"]] == ["test_eval.py::test_same"]
    assert report["suites"][0]["baseline"]["found"] is True


UNDO_JOINING = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_xdist_setupnodes(config, specs):
    config._params_as_given = config.invocation_params

class Undo:
    @pytest.hookimpl(trylast=True)
    def pytest_xdist_setupnodes(self, config, specs):
        config.invocation_params = config._params_as_given  # the workers get the two-argument form after all

def pytest_configure(config):
    config.pluginmanager.register(Undo(), "undo-joining")
"""


def test_a_worker_with_another_rootdir_than_the_controller_errors_every_case(pytester, project):
    """The backstop when the workers still choose another rootdir: each case errors, naming
    the cause, and the run fails; the worker is not restarted again and again (a UsageError
    in a worker is a crash to xdist)."""
    assert pytester.runpytest("--llm-eval-update").ret == 0
    (project / "conftest.py").write_text(UNDO_JOINING, encoding="utf-8")
    result = pytester.runpytest("--llm-eval", "-n", "2", "--llm-eval-report", "../out/r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(["*this xdist worker chose the rootdir *, the controller *proj: suite ids and baselines "
                                 "would not match; pass --rootdir=*proj*"])
    assert "replacing crashed worker" not in result.stdout.str()
    assert json.loads((pytester.path / "out" / "r.json").read_text(encoding="utf-8"))["verdict"] == "fail"


def test_an_output_path_in_pytest_addopts_is_judged_like_one_on_the_command_line(pytester, project, monkeypatch):
    """PYTEST_ADDOPTS is read before pytest chooses its rootdir (the ini's addopts after)."""
    assert pytester.runpytest("--llm-eval-update").ret == 0
    monkeypatch.setenv("PYTEST_ADDOPTS", "--llm-eval-markdown ../out/r.md")
    assert pytester.runpytest("--llm-eval", "-n", "2", "--llm-eval-report=r.json").ret == 0  # workers start after r.md exists
    report = json.loads((project / "r.json").read_text(encoding="utf-8"))
    assert report["suites"][0]["suite_id"] == "test_eval.py::test_same" and report["suites"][0]["baseline"]["found"]
    assert "test_eval.py::test_same" in (pytester.path / "out" / "r.md").read_text(encoding="utf-8")
    second = pytester.runpytest("--llm-eval")
    assert second.ret == pytest.ExitCode.USAGE_ERROR, second.stdout.str()
    second.stderr.fnmatch_lines(["*pytest took '../out/r.md', the value of --llm-eval-markdown, for a test path*"])


def test_evals_outside_the_rootdir_are_refused_not_merged_into_one_suite(pytester, project):
    for folder in ("a", "b"):
        other = pytester.mkdir(folder)
        shutil.copy(project / "data.jsonl", other / "data.jsonl")
        (other / f"test_{folder}.py").write_text(TEST, encoding="utf-8")
    result = pytester.runpytest("--llm-eval", "--rootdir=.", "../a/test_a.py", "../b/test_b.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection errors
    assert result.stdout.str().count("lies outside pytest's rootdir") >= 2
    result.stdout.fnmatch_lines(["*test_a.py: this eval's file lies outside pytest's rootdir*'::test_same' names no file*"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_baseline_the_previous_report_compared_with_is_missing_loudly(pytester, project, xdist):
    outputs = ["--llm-eval-report=r.json", "--llm-eval-markdown=r.md", "--junitxml=j.xml"]
    assert pytester.runpytest("--llm-eval-update").ret == 0
    assert pytester.runpytest("--llm-eval", *outputs, *xdist).ret == 0
    (project / ".llm-eval" / "test_eval.py" / "test_same.json").unlink()
    result = pytester.runpytest("--llm-eval", *outputs, *xdist)
    said = "BASELINE MISSING: .llm-eval/test_eval.py/test_same.json is gone but existed before (the previous report"
    result.stdout.fnmatch_lines(["*llm-eval: warning: test_eval.py::test_same: baseline*missing*", f"*note: {said}*"])
    report = json.loads((project / "r.json").read_text(encoding="utf-8"))
    assert any(note.startswith(said) for note in report["suites"][0]["notes"])
    assert said in (project / "r.md").read_text(encoding="utf-8")
    gate = junit_cases(project / "j.xml")["llm_eval_gate[contains]"]
    assert gate["properties"]["llm_eval.baseline"] == "MISSING, existed before (the previous report compared this suite with it)"
    # The report of the run that missed it compared with nothing: the next run says plainly "no baseline".
    again = pytester.runpytest("--llm-eval", *outputs)
    assert "BASELINE MISSING" not in again.stdout.str()
    again.stdout.fnmatch_lines(["*note: no baseline at .llm-eval/test_eval.py/test_same.json: regression check skipped*"])
    assert junit_cases(project / "j.xml")["llm_eval_gate[contains]"]["properties"]["llm_eval.baseline"] == \
        "none: regression check skipped"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_baseline_git_knows_is_missing_loudly_and_a_first_run_is_not(pytester, project):
    first = pytester.runpytest("--llm-eval")
    assert "BASELINE MISSING" not in first.stdout.str()  # never blessed: a first run, said plainly
    first.stdout.fnmatch_lines(["*note: no baseline at .llm-eval/test_eval.py/test_same.json*"])
    assert pytester.runpytest("--llm-eval-update").ret == 0
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bless"]):
        subprocess.run([*git, *args], cwd=project, check=True, capture_output=True)
    (project / ".llm-eval" / "test_eval.py" / "test_same.json").unlink()
    result = pytester.runpytest("--llm-eval")
    result.stdout.fnmatch_lines(["*note: BASELINE MISSING: .llm-eval/test_eval.py/test_same.json is gone but existed "
                                 "before (git has it (last commit *)): regression check skipped; restore it (git checkout -- "
                                 ".llm-eval/test_eval.py/test_same.json)*"])


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_llm_eval_merge_says_loudly_that_a_baseline_git_knows_is_missing(pytester, project, capsys):
    """Sharded CI gates in `llm-eval merge`: a merge request deleting the baseline must not
    get a quiet "regression check skipped" there either."""
    from pytest_llmeval.cli import main

    assert pytester.runpytest("--llm-eval-update").ret == 0
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bless"]):
        subprocess.run([*git, *args], cwd=project, check=True, capture_output=True)
    for shard in ("1/2", "2/2"):
        assert pytester.runpytest("--llm-eval", f"--llm-eval-shard={shard}", f"--llm-eval-report=s{shard[0]}.json").ret == 0
    assert main(["merge", "s1.json", "s2.json", "-o", "m.json", "--markdown", "m.md"]) == 0
    assert "BASELINE MISSING" not in capsys.readouterr().err  # the baseline is there: compared as usual
    (project / ".llm-eval" / "test_eval.py" / "test_same.json").unlink()
    main(["merge", "s1.json", "s2.json", "-o", "m.json", "--markdown", "m.md"])
    said = ("BASELINE MISSING: .llm-eval/test_eval.py/test_same.json is gone but existed before (git has it (last "
            "commit ")
    assert f"llm-eval merge: warning: test_eval.py::test_same: {said}" in capsys.readouterr().err
    (suite,) = json.loads((project / "m.json").read_text(encoding="utf-8"))["suites"]
    assert any(note.startswith(said) for note in suite["notes"])
    assert said in (project / "m.md").read_text(encoding="utf-8")


def test_joined_option_values_keeps_what_argparse_would_read():
    from pathlib import Path

    from pytest_llmeval.glue.rootdir import joined_option_values

    options = {"--llm-eval-report", "--llm-eval-markdown"}
    assert joined_option_values(["--llm-eval", "--llm-eval-report", "a.json", "t.py"], options) == \
        ["--llm-eval", "--llm-eval-report=a.json", "t.py"]
    assert joined_option_values(["--llm-eval-report", "-x"], options) == ["--llm-eval-report", "-x"]  # not its value
    assert joined_option_values(["--", "--llm-eval-report", "a"], options) == ["--", "--llm-eval-report", "a"]
    assert joined_option_values([Path("t.py"), "--llm-eval-markdown", Path("m.md")], options) == \
        ["t.py", "--llm-eval-markdown=m.md"]  # pytest.main() takes path objects too
