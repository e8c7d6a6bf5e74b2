"""Shared test helpers: the pytester plugin and writers for eval projects."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys

import httpcore  # noqa: F401  (httpx imports it lazily and maps its exceptions by class: keep one copy, see below)
import httpx  # noqa: F401
import pytest
import scipy.stats  # noqa: F401

import pytest_llmeval

# Many CI images (and these machines) set PYTHONDONTWRITEBYTECODE=1. Then no process keeps the
# modules pytest rewrites for assertions (every module of every installed pytest plugin's
# package: anyio, hypothesis, xdist, ... about 370 in a run), and each pytest process the
# tests start (subprocess runs, xdist workers, the CLI) rebuilds them: measured 1.5-1.9 s of
# start-up per process without the cache, 0.2 s with it. The suite's own processes may keep
# them (in __pycache__ folders, ignored by git); what the user's own runs do is unchanged.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

# In-process pytester runs restore sys.modules afterwards, dropping modules first imported
# inside them. numpy cannot be imported twice in one process, and a plugin module
# imported afresh in a later run would hold new context variables while older modules
# still reference the first copy. Importing everything once here keeps one copy of each.
for _module in pkgutil.walk_packages(pytest_llmeval.__path__, "pytest_llmeval."):
    if not _module.name.endswith("ragas_metrics"):  # ragas is heavy and optional
        importlib.import_module(_module.name)
# Likewise for optional libraries the plugin imports lazily inside runs: hypothesis' pytest
# plugin imports its observability module in every run's summary, and the run history loads
# SQLAlchemy's dialects and Alembic on first use (SQLAlchemy's compiled extensions cannot be
# imported twice): opening an in-memory store once here imports all of it.
try:
    importlib.import_module("hypothesis.internal.observability")
except ImportError:
    pass
for _name in ("sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql"):
    try:
        importlib.import_module(_name)
    except ImportError:  # no history extra: its tests skip or fail on their own
        pass
try:
    from pytest_llmeval.monitoring.history import HistoryStore

    HistoryStore("sqlite://").close()
except pytest_llmeval.errors.LLMEvalError:
    pass

# litellm fetches its model cost map from the internet at import unless told not to: the
# tests reach nothing but loopback.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

pytest_plugins = ["pytester", "postgres_server"]

REPORT_NAME = ".llm-eval-report.json"
# (word a test's arguments name to keep the plugin, the plugin's name): off in inner runs otherwise
UNNAMED_PLUGINS_OFF = (("randomly", "randomly"), ("hypothesis", "hypothesispytest"), ("langsmith", "langsmith_plugin"))
# The same for a test's own `python -m pytest` subprocesses.
PLUGINS_OFF = tuple(arg for _, plugin in UNNAMED_PLUGINS_OFF for arg in ("-p", f"no:{plugin}"))


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytester whose in-process runs also write the JSON report and check it against the
    schema: the report of every scenario in this suite must validate. Inner runs, in-process
    and subprocess alike, keep the files' order (pytest-randomly, in [dev], is off there)
    unless a test names randomly in its arguments, as tests/test_other_plugins.py does to
    run evals under it; likewise they leave out the pytest plugins of hypothesis and
    langsmith (in the venv through [dev] and langchain; tests/test_other_plugins.py runs
    evals with each): importing them costs a fresh process about 3 s of CPU, and every
    subprocess run and xdist worker is one. They set pytest-asyncio's fixture loop scope
    (its default, said explicitly, so that every inner run does not warn that it is unset)
    unless a test passes its own asyncio settings."""
    from pytest_llmeval.reporting.report import validate

    def quiet(args):
        for name, plugin in UNNAMED_PLUGINS_OFF:
            if not any(name in str(arg) for arg in args):
                args = ("-p", f"no:{plugin}", *args)
        if not any("asyncio" in str(arg) for arg in args):
            args = ("-o", "asyncio_default_fixture_loop_scope=function", *args)
        return args

    run_in_order = pytester.runpytest
    run_subprocess = pytester.runpytest_subprocess

    def run(*args, **kwargs):
        return run_in_order(*quiet(args), **kwargs)

    def run_and_validate(*args, **kwargs):
        if "no:llmeval" in args or any(str(arg).startswith("--llm-eval-report") for arg in args):
            return run(*args, **kwargs)
        path = pytester.path / REPORT_NAME
        path.unlink(missing_ok=True)
        result = run(*args, f"--llm-eval-report={path}", **kwargs)
        if path.exists():
            validate(json.loads(path.read_text(encoding="utf-8")), str(path))
            path.unlink()
        return result

    pytester.runpytest = run_and_validate  # type: ignore[method-assign]
    pytester.runpytest_subprocess = lambda *args, **kwargs: run_subprocess(*quiet(args), **kwargs)  # type: ignore[method-assign]
    return pytester


@pytest.fixture(scope="session")
def seeded_docs(tmp_path_factory):
    """The history acceptance scenario's 30 daily reports and each day's mean
    (history_docs.seeded_month), built once per session for the history tests that read them."""
    from history_docs import seeded_month

    return seeded_month(tmp_path_factory.mktemp("baselines"))


@pytest.fixture
def write_jsonl(pytester: pytest.Pytester):
    """Write rows as a JSONL dataset in the pytester project; returns its path."""

    def write(name: str, rows: list[dict]) -> str:
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return name

    return write


def junit_cases(path) -> dict[str, dict]:
    """Parse a junit XML file: test case name -> {"classname", "properties", "failure", "error"}."""
    import xml.etree.ElementTree as ET

    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        failure = case.find("failure")
        error = case.find("error")
        cases[case.get("name")] = {
            "classname": case.get("classname"),
            "properties": {p.get("name"): p.get("value") for p in case.iter("property")},
            "failure": None if failure is None else failure.get("message", "") + "\n" + (failure.text or ""),
            "error": None if error is None else error.get("message", "") + "\n" + (error.text or ""),
        }
    return cases
