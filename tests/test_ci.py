"""CI runs the README's quick-start commands as written: .ci/run reads them from README.md
and runs them first, before any extra step."""

from __future__ import annotations

import re
import subprocess
import sys
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
