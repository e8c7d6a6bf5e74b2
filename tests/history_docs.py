"""Real report documents for the history tests: case results judged by the real gate
against a real baseline file, built as ``pytest --llm-eval-report`` builds them."""

from __future__ import annotations

import copy
import random
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from pytest_llmeval.core.run import EvalRun
from pytest_llmeval.gate.baseline import BaselineStore
from pytest_llmeval.gate.verdicts import GatePolicy
from pytest_llmeval.models import CaseResult, SuiteSpec
from pytest_llmeval.reporting.report import build_report, run_block, validate

SUITE = "tests/test_support.py::test_support"
# The history acceptance scenario (tests/test_history_trends.py, docs/production.md).
N = 1000
BASELINE_PASSES = 850  # baseline mean 0.85
DROPPED_PASSES = 799  # 0.799 = 0.85 x 0.94: a 6% drop
DAY1 = date(2026, 3, 1)


def judged_report(baseline_dir: Path, day, passes: int, *, n: int = 200, suite: str = SUITE,
                  latency_ms: float = 800.0, update: bool = False, metric: str = "accuracy") -> dict:
    """A complete run of ``n`` binary cases of which the first ``passes`` score 1, started
    at noon UTC of ``day``; judged against (or, with ``update``, blessed into) the baseline
    under ``baseline_dir``. The document is validated against the report schema, with the
    first and last two cases of each suite (validating a thousand cases takes half a second,
    and every case has the shape of these: one passing, one failing at the ends)."""
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
    trimmed = copy.deepcopy({**doc, "suites": []})
    trimmed["suites"] = [{**suite, "cases": suite["cases"][:2] + suite["cases"][-2:]} for suite in doc["suites"]]
    validate(trimmed)
    return doc


def seeded_month(baseline_dir: Path, store=None) -> tuple[list[dict], dict[date, float]]:
    """The acceptance scenario's 30 daily runs of N cases, judged against a baseline blessed
    the day before DAY1 under ``baseline_dir``: the pass rate jitters by +-0.2 points around
    0.85, from day 20 on it is 6% lower, and day 28's latency spikes to 3.4 s. Returns the
    documents in day order and each day's mean; ``store`` (a HistoryStore) records each."""
    judged_report(baseline_dir, DAY1 - timedelta(days=1), BASELINE_PASSES, n=N, update=True)
    rng = random.Random(20)
    docs, means = [], {}
    for k in range(30):
        day = DAY1 + timedelta(days=k)
        passes = (DROPPED_PASSES if k >= 19 else BASELINE_PASSES) + rng.randint(-2, 2)
        docs.append(judged_report(baseline_dir, day, passes, n=N, latency_ms=900.0 if k != 27 else 3400.0))
        if store is not None:
            store.record(docs[-1])
        means[day] = passes / N
    return docs, means


def _options(update: bool) -> dict:
    return {"alpha": 0.05, "max_drop": 0.02, "max_drop_by_metric": {}, "non_inferiority": False, "enforce_thresholds": True,
            "repeats": None, "default_repeats": 1, "update": update, "cache_mode": "off", "concurrency": 16,
            "output_chars": 1000}
