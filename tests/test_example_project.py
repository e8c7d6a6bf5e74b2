"""The example project does what README.md says: offline by default (its strict replay
makes no request), the planted "be concise" prompt is blocked with exit code 1, a live
run against the loopback model shows the SDK calls' cost and tokens, and its dataset is
what its generator writes.

Each test runs pytest in a subprocess in a copy of example_project/, as a user would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PLUGINS_OFF

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example_project"
BIN = Path(sys.executable).parent


@pytest.fixture
def example(tmp_path):
    folder = tmp_path / "example_project"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return folder


def run(folder: Path, *args: str, **env: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_EVAL_", "OPENAI_", "ANTHROPIC_", "SUPPORT_BOT_",
                                                                        "PYTEST_"))}
    done = subprocess.run([str(BIN / "pytest"), "-p", "no:cacheprovider", *PLUGINS_OFF, *args], cwd=folder,
                          env={**clean, "RAGAS_DO_NOT_TRACK": "true", **env}, capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def test_the_dataset_is_what_its_generator_writes_and_covers_the_topics(example):
    before = {name: (example / "evals" / name).read_bytes() for name in ("support.jsonl", "judge_sample.jsonl")}
    subprocess.run([sys.executable, str(example / "tools" / "make_dataset.py")], check=True, capture_output=True)
    assert {name: (example / "evals" / name).read_bytes() for name in before} == before
    rows = [json.loads(line) for line in before["support.jsonl"].decode().splitlines()]
    assert len(rows) >= 300 and len({r["id"] for r in rows}) == len(rows)
    tags = {tag for r in rows for tag in r["tags"]}
    assert {"refund", "shipping", "warranty", "account", "out-of-scope", "adversarial"} <= tags
    refusals = [r for r in rows if "out-of-scope" in r["tags"]]
    assert refusals and all(r["expected"] == "I can only help" for r in refusals)
    sample = [json.loads(line) for line in before["judge_sample.jsonl"].decode().splitlines()]
    assert sample == rows[::5]


def test_the_default_run_is_offline_replays_everything_and_passes(example):
    code, out = run(example, "--llm-eval", "--llm-eval-report", "report.json")
    assert code == 0, out
    assert "loopback model: 0 request(s)" in out
    report = json.loads((example / "report.json").read_text(encoding="utf-8"))
    assert report["complete"] and report["verdict"] == "pass" and report["run"]["options"]["cache_mode"] == "strict"
    suites = {s["suite_id"]: s for s in report["suites"]}
    assert {"test_support_eval.py::test_support_answers", "test_support_judge.py::test_support_judged",
            "test_support_variants.py::test_support_prompt_ab@control",
            "test_support_variants.py::test_support_prompt_ab@concise"} <= set(suites)
    assert suites["test_support_eval.py::test_support_answers"]["cases_run"] == 311
    for suite in report["suites"]:
        for case in suite["cases"]:
            for kind, usage in case["usage"].items():  # app and judge calls, all from the recording
                assert usage["calls"] >= 1 and usage["cached_calls"] == usage["calls"], (suite["suite_id"], case["case_id"])
                assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    judged = suites["test_support_judge.py::test_support_judged"]["cases"]
    assert all("judge" in c["usage"] for c in judged)
    comparison = suites["test_support_variants.py::test_support_prompt_ab@concise"]["comparison"]
    assert [m["verdict"] for m in comparison["metrics"]] == ["worse"]


def test_the_concise_prompt_is_blocked_with_the_p_value_and_the_worst_cases(example):
    code, out = run(example, "--llm-eval", "test_support_eval.py", SUPPORT_BOT_PROMPT="support_answer_concise")
    assert code == 1, out
    assert re.search(r"^contains regressed: significant drop of 0\.0\d\d > allowed 0\.02$", out, re.M), out
    assert re.search(r"mcnemar-exact one-sided p=\d\.\de-0\d, n paired=311", out), out
    assert re.search(r"^  worst cases for contains \(\d+ dropped against the baseline", out, re.M), out
    assert "FAILED test_support_eval.py::test_support_answers::llm_eval_gate[contains]" in out
    assert "note: prompt support_answer_concise (none) -> " in out
    assert "loopback model: 0 request(s)" in out


def test_a_live_run_against_the_loopback_model_shows_the_sdk_calls_cost_and_tokens(example):
    code, out = run(example, "--llm-eval", "--llm-eval-cache=off", "test_support_eval.py", "--llm-eval-report", "r.json")
    assert code == 0, out
    assert "loopback model: 311 request(s)" in out
    usage = re.search(r"^  usage: cost \$(\S+) .*; tokens ([\d,]+) in / ([\d,]+) out .*; calls 311;", out, re.M)
    assert usage and float(usage.group(1)) > 0 and int(usage.group(2).replace(",", "")) > 0, out
    suite = json.loads((example / "r.json").read_text(encoding="utf-8"))["suites"][0]
    assert all(c["models"] == ["openai:gpt-4o-mini"] and c["usage"]["app"]["cached_calls"] == 0 for c in suite["cases"])
