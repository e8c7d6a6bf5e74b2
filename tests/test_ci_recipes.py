"""The CI recipes of example_project/ci/ parse and their script lines run.

Both files are read with PyYAML's ``safe_load``. Every script line of every job (GitLab
``before_script``/``script``/``after_script``, one run per ``parallel`` index; GitHub
``run`` steps, one per matrix entry) is run against a copy of the example project, in
stage order, with the CI variables the job would see. A line that is not run is listed in
``NOT_RUN`` with the reason, and an entry there that matches no line fails: nothing is
skipped silently. The two recipes run the same commands (the same argv once the variables
are expanded), so each distinct command runs once and both recipes are checked against it.

That run takes minutes, so it is marked ``slow``: the default test run leaves it out and
``.ci/run`` runs it in a step of its own (``pytest -m slow``).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PLUGINS_OFF

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example_project"
GITLAB = EXAMPLE / "ci" / ".gitlab-ci.yml"
GITHUB = EXAMPLE / "ci" / "github" / "llm-eval.yml"
BIN = Path(sys.executable).parent

INSTALL = 'pip install --quiet "pytest-llmeval[prices,html,history]" openai anthropic pytest-xdist'
NOT_RUN = {
    INSTALL: "installs the plugin and the example's SDKs, which this test's environment already has",
    "curl": "posts reports/llm-eval.md as a merge-request note through the GitLab API (the test checks the file it posts)",
}


def _not_run(line: str) -> str | None:
    return next((key for key in NOT_RUN if line == key or ("curl " in line and key == "curl")), None)


def gitlab_runs(doc: dict) -> list[tuple[str, dict[str, str], list[str]]]:
    """(job, variables, script lines) per job run, in stage order."""
    stages = doc["stages"]
    before = doc.get("default", {}).get("before_script", [])
    jobs = [(name, job) for name, job in doc.items() if isinstance(job, dict) and "script" in job]
    runs = []
    for name, job in sorted(jobs, key=lambda item: stages.index(item[1]["stage"])):
        lines = [*job.get("before_script", before), *job["script"], *job.get("after_script", [])]
        total = job.get("parallel", 1)
        for index in range(1, total + 1):
            variables = {"CI_NODE_INDEX": str(index), "CI_NODE_TOTAL": str(total)} if total > 1 else {}
            runs.append((f"gitlab:{name}" + (f"[{index}]" if total > 1 else ""), variables, lines))
    return runs


def github_runs(doc: dict) -> list[tuple[str, dict[str, str], list[str]]]:
    """(job, env, run lines with ${{ matrix.* }} filled in) per job and matrix entry, in needs order."""
    jobs = doc["jobs"]
    order: list[str] = []
    while len(order) < len(jobs):
        for name, job in jobs.items():
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            if name not in order and all(n in order for n in needs):
                order.append(name)
    runs = []
    for name in order:
        job = jobs[name]
        matrix = job.get("strategy", {}).get("matrix", {})
        keys = list(matrix)
        for values in itertools.product(*(matrix[k] for k in keys)) if keys else [()]:
            entry = dict(zip(keys, values))
            lines = []
            for step in job["steps"]:
                if "run" in step:
                    line = re.sub(r"\$\{\{ matrix\.(\w+) \}\}", lambda m: str(entry[m.group(1)]), step["run"].strip())
                    assert "${{" not in line, f"{name}: an expression the test cannot fill in: {line}"
                    lines.append(line)
            env = {k: v for k, v in job.get("env", {}).items() if "${{ secrets." not in str(v)}
            runs.append((f"github:{name}" + (f"[{entry}]" if entry else ""), env, lines))
    return runs


@pytest.fixture(scope="module")
def docs():
    return yaml.safe_load(GITLAB.read_text(encoding="utf-8")), yaml.safe_load(GITHUB.read_text(encoding="utf-8"))


def test_the_recipes_have_what_docs_ci_md_promises(docs):
    gitlab, github = docs
    assert gitlab["llm-eval"]["parallel"] == 3
    assert gitlab["llm-eval"]["artifacts"]["reports"]["junit"] == "reports/junit-*.xml"
    assert "reports/llm-eval.html" in gitlab["llm-eval-gate"]["artifacts"]["paths"]
    assert all(rule["when"] == "always" for rule in gitlab["llm-eval-gate"]["rules"])  # merge after a failed shard too
    assert any("merge_requests/$CI_MERGE_REQUEST_IID/notes" in line for line in gitlab["llm-eval-gate"]["after_script"])
    assert any("llm-eval-check" in line for line in gitlab["deploy-gate"]["script"])
    assert gitlab["llm-eval-nightly"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    jobs = github["jobs"]
    assert jobs["llm-eval"]["strategy"]["matrix"]["shard"] == [1, 2, 3]
    steps = jobs["llm-eval-gate"]["steps"]
    assert any(s.get("uses", "").startswith("dorny/test-reporter") for s in steps)
    assert any('>> "$GITHUB_STEP_SUMMARY"' in s.get("run", "") for s in steps)
    assert github[True]["schedule"], "PyYAML reads the key 'on' as True"


def _argv(line: str, env: dict[str, str]) -> list[str] | None:
    """The argv of a plain command (variables expanded), or None for a shell line (redirects, if)."""
    if re.search(r"[|;&<>]|^if ", line):
        return None
    expanded = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), line)
    return shlex.split(expanded, comments=True)


def _globbed(argv: list[str], cwd: Path) -> list[str]:
    """The argv as a shell would pass it: words with ``*`` expanded to the matching files."""
    out = []
    for word in argv:
        matches = sorted(str(p.relative_to(cwd)) for p in cwd.glob(word)) if "*" in word else []
        out.extend(matches or [word])
    return out


@pytest.mark.slow  # about 2 minutes of CPU: .ci/run runs it in its slow-tests step
def test_every_script_line_runs_against_the_example_project(docs, tmp_path):
    project = tmp_path / "repo"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    history = f"sqlite:///{tmp_path / 'history.sqlite'}"
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("LLM_EVAL_", "OPENAI_", "ANTHROPIC_", "PYTEST_", "CI", "GITHUB_", "GITLAB_"))}
    base_env.update({"PATH": f"{BIN}{os.pathsep}{base_env.get('PATH', '')}", "RAGAS_DO_NOT_TRACK": "true",
                     "LLM_EVAL_HISTORY_URL": history, "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"),
                     # pytest plugins of this venv's [dev] that the recipes' install line does not install
                     "PYTEST_ADDOPTS": " ".join(PLUGINS_OFF)})
    gitlab, github = docs
    done: dict[tuple[str, ...], int] = {}
    skipped: dict[str, list[str]] = {}
    ran: list[tuple[str, tuple[str, ...]]] = []
    for job, variables, lines in gitlab_runs(gitlab) + github_runs(github):
        env = {**base_env, **variables}
        for line in lines:
            reason = _not_run(line)
            if reason is not None:
                skipped.setdefault(reason, []).append(job)
                continue
            argv = _argv(line, env)
            key = tuple(argv) if argv is not None else (line,)
            if key not in done:
                command = _globbed(argv, project) if argv is not None else ["bash", "-c", line]
                result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=900)
                done[key] = result.returncode
                assert result.returncode == 0, f"{job}: {line}\nexit {result.returncode}\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
            ran.append((job, key))

    assert set(skipped) == set(NOT_RUN), "NOT_RUN names a line no recipe has any more"
    commands = {" ".join(key) for key in done}
    assert any("--llm-eval-shard 3/3" in c for c in commands) and any(c.startswith("llm-eval-check") for c in commands)
    # Both pipelines run the same commands: the shards, merge, routes, check and history lines.
    per_platform = {platform: {key for job, key in ran if job.startswith(platform) and key[0] in ("pytest", "llm-eval", "llm-eval-check")}
                    for platform in ("gitlab:", "github:")}
    assert per_platform["gitlab:"] == per_platform["github:"] and len(per_platform["gitlab:"]) == 8
    reports = project / "reports"
    assert sorted(p.name for p in reports.glob("junit-*.xml")) == ["junit-1.xml", "junit-2.xml", "junit-3.xml"]
    merged = json.loads((reports / "llm-eval.json").read_text(encoding="utf-8"))
    assert merged["complete"] and merged["verdict"] == "pass" and len(merged["run"]["merged_from"]) == 3
    assert (reports / "llm-eval.md").read_text(encoding="utf-8").startswith("## llm-eval: PASS")
    assert (reports / "llm-eval.html").stat().st_size > 0 and (reports / "routes.html").stat().st_size > 0
    routes = json.loads((reports / "routes.json").read_text(encoding="utf-8"))
    assert {s["suite_id"].rsplit("@", 1)[-1] for s in routes["suites"]} >= {"primary", "secondary", "fallback"}
    assert (tmp_path / "step-summary.md").read_text(encoding="utf-8").startswith("## llm-eval: PASS")
    assert (tmp_path / "history.sqlite").exists()
