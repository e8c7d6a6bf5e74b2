"""Comparing two reports: run B judged against run A as if A were B's baseline.

Any two complete reports (two branches, two dates, two models): A's case results are
blessed into a temporary baseline with the code ``--llm-eval-update`` uses, and B's are
judged against it with the code of the gate, so the statistics (paired by case id and
content hash, repeats averaged per case, Holm across a suite's metrics, the MDE) are the
gate's own. The result is a report document like any other (the text summary, Markdown
and HTML render from it). No pytest here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.run import EvalRun, RunOutcome
from ..gate.baseline import BaselineStore
from ..gate.verdicts import GatePolicy
from ..models import CaseResult
from .merge import suite_spec
from .report import ReportError, build_report

__all__ = ["compare_reports"]


class _ReportBaselines(BaselineStore):
    """A temporary baseline folder that names the report it came from."""

    def __init__(self, root: Path, source: str) -> None:
        super().__init__(root)
        self.source = source

    def display(self, suite_id: str) -> str:
        return f"{self.source} ({suite_id})"


def compare_reports(base: tuple[str, Mapping[str, Any]], head: tuple[str, Mapping[str, Any]]) -> tuple[dict[str, Any], RunOutcome]:
    """(report document, outcome) of ``head`` judged against ``base``; each a
    ``(name, validated document)`` pair. The gate's options (alpha, allowed drops,
    non-inferiority, thresholds) are ``head``'s. Raises ReportError for a report that is
    incomplete or whose gate was deferred (merge shard reports first)."""
    for name, doc in (base, head):
        if not doc["complete"]:
            raise ReportError(f"{name}: the run was incomplete ({doc['run'].get('incomplete_reason')}); nothing in it is final")
        if doc["verdict"] == "deferred":
            raise ReportError(f"{name}: a shard report; merge the shards with `llm-eval merge` first")
    options = head[1]["run"]["options"]
    policy = GatePolicy(options["alpha"], options["max_drop"], options["max_drop_by_metric"],
                        options["non_inferiority"], options["enforce_thresholds"])
    with tempfile.TemporaryDirectory(prefix="llm-eval-compare-") as folder:
        store = _ReportBaselines(Path(folder), base[0])
        _runs(base[1]).finish(store, policy, update=True, baseline_output_chars=None)
        outcome = _runs(head[1]).finish(store, policy)
    run = {**head[1]["run"], "compared_with": {"base": base[0], "head": head[0], "base_git": base[1]["run"].get("git") or {}}}
    return build_report(run, outcome), outcome


def _runs(doc: Mapping[str, Any]) -> EvalRun:
    run = EvalRun()
    for suite in doc["suites"]:
        spec = suite_spec(suite)
        for case in suite["cases"]:
            run.add(CaseResult.from_dict(case, suite=spec))
    return run
