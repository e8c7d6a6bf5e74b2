"""Real report documents for the history tests: case results judged by the real gate
against a real baseline file, built as ``pytest --llm-eval-report`` builds them."""

from __future__ import annotations

from datetime import datetime, time, timezone
from pathlib import Path

from pytest_llmeval.core.run import EvalRun
from pytest_llmeval.gate.baseline import BaselineStore
from pytest_llmeval.gate.verdicts import GatePolicy
from pytest_llmeval.models import CaseResult, SuiteSpec
from pytest_llmeval.reporting.report import build_report, run_block, validate

SUITE = "tests/test_support.py::test_support"


def judged_report(baseline_dir: Path, day, passes: int, *, n: int = 200, suite: str = SUITE,
                  latency_ms: float = 800.0, update: bool = False, metric: str = "accuracy") -> dict:
    """A complete run of ``n`` binary cases of which the first ``passes`` score 1, started
    at noon UTC of ``day``; judged against (or, with ``update``, blessed into) the baseline
    under ``baseline_dir``. The document is validated against the report schema."""
    spec = SuiteSpec(suite_id=suite, dataset="evals/support.jsonl", fingerprint="sha256:" + "0" * 64, n_rows=n,
                     metrics=(metric,))
    run = EvalRun()
    for i in range(n):
        run.add(CaseResult(spec, f"c{i:04d}", f"h{i:011d}", 0, "passed", {metric: 1.0 if i < passes else 0.0},
                           latency_ms=latency_ms))
    outcome = run.finish(BaselineStore(baseline_dir), GatePolicy(), update=update, plugin_version="0.1.0")
    started = datetime.combine(day, time(12, 0), tzinfo=timezone.utc).isoformat()
    block = run_block(started, _options(update), baseline_dir, {"pytest": "9", "pytest_llmeval": "0.1.0"}, None)
    block["finished_at"] = started
    doc = build_report(block, outcome)
    validate(doc)
    return doc


def _options(update: bool) -> dict:
    return {"alpha": 0.05, "max_drop": 0.02, "max_drop_by_metric": {}, "non_inferiority": False, "enforce_thresholds": True,
            "repeats": None, "default_repeats": 1, "update": update, "cache_mode": "off", "concurrency": 16,
            "output_chars": 1000}
