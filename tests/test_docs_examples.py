"""Every example output in README.md and docs/ is what a real run prints today.

The recipes live in ``tests/docs_examples.py``; after a change that alters an example,
regenerate with ``python tests/docs_examples.py --write`` and review the diff.
"""

from __future__ import annotations

import pytest

import docs_examples as ex

ALL_BLOCKS = [block for path in ex.DOCS for block in ex.find_blocks(path)[0]]
BLOCKS = [block for block in ALL_BLOCKS if block.kind == "example"]
FILE_BLOCKS = [block for block in ALL_BLOCKS if block.kind == "file"]


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    return ex.Runs(tmp_path_factory.mktemp("docs-examples"))


def test_every_output_block_in_the_docs_has_a_recipe():
    unmarked = [f"{path.relative_to(ex.REPO)}:{line}" for path in ex.DOCS for line in ex.find_blocks(path)[1]]
    assert unmarked == [], ("fences without a language hold output and need an '<!-- example: NAME -->' line before them "
                            "(or a language tag if they are input): " + ", ".join(unmarked))
    unknown = sorted({f"{b.where} ({b.name})" for b in BLOCKS if b.name not in ex.RECIPES})
    assert unknown == []


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.name not in ex.SLOW],
                         ids=[f"{b.name}@{b.where}" for b in BLOCKS if b.name not in ex.SLOW])
def test_the_example_is_what_a_real_run_prints(block, runs):
    shown = ex.normalise(block.text)
    printed = ex.normalise(ex.RECIPES[block.name](runs))
    assert printed == shown, (f"{block.where} shows output that a real run no longer prints; "
                              "regenerate with: python tests/docs_examples.py --write " + block.name)


@pytest.mark.parametrize("text, expected", [
    ("43 passed in 4.34s", "43 passed in N.NNs"),
    ("1 passed in 61.20s (0:01:01)", "1 passed in N.NNs"),
    ("==== 43 passed in 4.34s ====", "=== 43 passed in N.NNs ==="),
    ("=== 43 passed in 14.34s ===", "=== 43 passed in N.NNs ==="),
    ("latency p50 63 ms, p95 117 ms", "latency p50 N ms, p95 N ms"),
    ("latency p95 117 ms (p50 63, p99 121) <= budget 2000 ms", "latency p95 N ms (p50 N, p99 N) <= budget N ms"),
    ('<testcase name="x" time="0.406">', '<testcase name="x" time="N">'),
])
def test_normalise_hides_only_what_changes_between_runs(text, expected):
    assert ex.normalise(text) == expected


@pytest.mark.parametrize("block", FILE_BLOCKS, ids=[f"{b.name}@{b.where}" for b in FILE_BLOCKS])
def test_a_file_shown_in_the_docs_is_the_file_in_the_repository(block):
    assert block.text + "\n" == (ex.REPO / block.name).read_text(encoding="utf-8"), f"{block.where} differs from {block.name}"


def test_the_complete_config_example_may_ship():
    import subprocess
    import sys
    from pathlib import Path

    check = Path(sys.executable).with_name("llm-eval-check")
    done = subprocess.run([str(check), "llmops-config.yaml"], cwd=ex.REPO / "example_project", capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 errors, 0 warnings: may ship (exit 0)" in done.stdout
