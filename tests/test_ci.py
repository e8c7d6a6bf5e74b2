"""CI runs the README's quick-start commands as written: .ci/run reads them from README.md
and runs them first, before any extra step; one of those runs the tests marked slow, which
the README's run leaves out."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ci_runs_exactly_the_readme_quick_start_commands_first():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    expected = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert len(expected) == 2 and '-e ".[dev]"' in expected[1] and "pytest" in expected[1]
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    extractor = re.search(r"<<'PY'\n(.*?)\nPY\n", script, re.S).group(1)
    done = subprocess.run([sys.executable, "-c", extractor], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [command.strip() for command in expected]
    # each runs verbatim (bash -c), in order, before the extra steps
    first, second = 'bash -c "${readme_commands[0]}"', 'bash -c "${readme_commands[1]}"'
    assert script.index(first) < script.index(second) < script.index('run "ragas extra"')


def test_tests_marked_slow_are_left_out_of_the_readme_run_and_run_by_a_ci_step():
    ini = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert any(marker.startswith("slow:") for marker in ini["markers"])
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    step = 'run "slow tests" .venv/bin/python -m pytest -p no:cacheprovider -q -m slow\n'
    assert script.index('bash -c "${readme_commands[1]}"') < script.index(step)
    # The default run (the README's) deselects them; the step's -m slow selects exactly them.
    # Both collections in one fresh process (the suite's conftest takes seconds to import).
    collect = ("import pytest\n"
               "for extra in ([], ['-m', 'slow']):\n"
               "    print('COLLECTION', extra, flush=True)\n"
               "    pytest.main(['--co', '-q', '-p', 'no:randomly', '-p', 'no:cacheprovider', *extra, 'tests/test_ci_recipes.py'])\n")
    done = subprocess.run([sys.executable, "-c", collect], cwd=REPO, capture_output=True, text=True)
    default, selected = ({line for line in part.splitlines() if "::" in line} for part in done.stdout.split("COLLECTION")[1:])
    slow = "tests/test_ci_recipes.py::test_every_script_line_runs_against_the_example_project"
    assert slow in selected and slow not in default, done.stdout + done.stderr
    assert default and default.isdisjoint(selected)
