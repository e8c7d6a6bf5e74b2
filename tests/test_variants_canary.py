"""The canary input: one run with variants control and candidate gives the report that
``llm-eval-check --canary`` decides from (promote, or roll back a degraded candidate)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest
from test_check_config import FULL
from test_variants_routes import CONFIG, answer_with, golden_project

from pytest_llmeval.check.cli import main as check_main

CANARY_CONFIG = CONFIG + FULL[len(FULL.split("traffic:")[0]):]
APP = """
import os, pytest
from pytest_llmeval.providers import ChatClient

client = ChatClient(base_url=os.environ["LOOPBACK_BASE_URL"])

def app(question):
    return client.complete(question)

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], thresholds={"contains": 0.8},
                      variants={"control": {"model": "gpt-4o"}, "candidate": {"model": "gpt-4o-mini"}})
def test_golden(llm_case, llm_eval):
    pass
"""


@pytest.fixture
def canary_project(pytester, write_jsonl, monkeypatch):
    yield from golden_project(pytester, write_jsonl, monkeypatch, CANARY_CONFIG, APP)


def decide(pytester) -> tuple[int, str]:
    pytester.runpytest("--llm-eval", "--llm-eval-report=r.json")
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        code = check_main([str(pytester.path / "llmops-config.yaml"), "--canary", "--report", str(pytester.path / "r.json"),
                           "--control", "test_golden.py::test_golden@control",
                           "--candidate", "test_golden.py::test_golden@candidate"])
    return code, out.getvalue()


def test_an_equal_candidate_is_promoted_to_the_first_stage(pytester, canary_project):
    code, out = decide(pytester)
    assert code == 0, out
    assert "candidate test_golden.py::test_golden@candidate vs control test_golden.py::test_golden@control: 300 paired case(s)" in out
    assert "decision: PROMOTE to 5% (exit 0)" in out


def test_a_degraded_candidate_is_rolled_back(pytester, canary_project):
    canary_project.answer = answer_with("gpt-4o-mini")
    code, out = decide(pytester)
    assert code == 1, out
    assert "decision: ROLL BACK (exit 1)" in out
    assert "contains: dropped 0.100 (1.000 -> 0.900" in out
