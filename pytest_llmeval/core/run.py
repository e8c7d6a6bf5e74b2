"""One eval run: collects case results, then judges each suite and updates baselines.

No pytest here. The glue feeds :meth:`EvalRun.add` from every test report (serial or
from xdist workers alike) and calls :meth:`EvalRun.finish` once, on the controller,
after a complete run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import BaselineError
from ..gate.baseline import Baseline, BaselineCase, BaselineStore
from ..gate.budgets import UsageVerdict, judge_usage
from ..gate.verdicts import GatePolicy, MetricVerdict, judge_suite
from ..models import CaseResult, SuiteSpec
from ..providers.accounting import SuiteUsage, summarize_suite

__all__ = ["EvalRun", "RunOutcome", "SuiteOutcome", "prompt_versions"]


@dataclass
class SuiteOutcome:
    """A judged suite: its cases, verdicts and what happened to its baseline."""

    spec: SuiteSpec
    case_means: dict[str, dict[str, float]]
    repeats: dict[str, dict[str, list[float]]]
    errors: dict[str, str]
    failed_cases: list[str]
    flaky_cases: list[str]
    full_run: bool
    content_hashes: dict[str, str]
    results: list[CaseResult]
    prompts: dict[str, list[str]] = field(default_factory=dict)  # name -> versions rendered
    usage: SuiteUsage | None = None
    case_tokens: dict[str, dict[str, float]] = field(default_factory=dict)
    verdicts: list[MetricVerdict] = field(default_factory=list)
    usage_verdicts: list[UsageVerdict] = field(default_factory=list)
    baseline_path: str = ""
    baseline_error: str | None = None
    baseline: Baseline | None = None
    paired_cases: int = 0
    new_cases: list[str] = field(default_factory=list)
    missing_cases: list[str] = field(default_factory=list)
    changed_cases: list[str] = field(default_factory=list)
    fingerprint_changed: bool = False
    baseline_written: bool | None = None  # None: not an update run

    @property
    def n_cases(self) -> int:
        return len(self.repeats)

    @property
    def passed(self) -> bool:
        return self.baseline_error is None and all(v.passed for v in [*self.verdicts, *self.usage_verdicts])

    def notes(self) -> list[str]:
        """What a reader must know to trust the comparison."""
        notes = []
        if self.baseline_error:
            notes.append(self.baseline_error)
        elif self.baseline is None and self.baseline_written is None:
            notes.append(f"no baseline at {self.baseline_path}: regression check skipped (bless one with --llm-eval-update)")
        if self.baseline is not None:
            for name in sorted(set(self.prompts) | set(self.baseline.prompts)):
                before, after = self.baseline.prompts.get(name, []), self.prompts.get(name, [])
                if before != after:
                    notes.append(f"prompt {name} {','.join(before) or '(none)'} -> {','.join(after) or '(none)'} since the baseline")
        if self.fingerprint_changed:
            notes.append(f"dataset changed since the baseline: {len(self.new_cases)} row(s) added, {len(self.changed_cases)} "
                         f"changed, {len(self.missing_cases)} removed; only cases with the same id and content are compared")
        counts = [(self.new_cases, "new since the baseline"), (self.missing_cases, "in the baseline but not in this run"),
                  (self.changed_cases, "changed content since the baseline (not compared)")]
        for cases, what in counts:
            if cases and self.baseline is not None:
                notes.append(f"{len(cases)} case(s) {what}: {_preview(cases)}")
        if self.flaky_cases:
            notes.append(f"{len(self.flaky_cases)} flaky case(s) (repeats disagree): {_preview(self.flaky_cases)}")
        if self.errors:
            notes.append(f"{len(self.errors)} case(s) errored and are left out of the means: {_preview(sorted(self.errors))}")
        unscored = sorted(case_id for case_id, scores in self.case_means.items() if not scores)
        if unscored:
            notes.append(f"{len(unscored)} case(s) recorded no score and are left out of the means: {_preview(unscored)}")
        return notes


@dataclass
class RunOutcome:
    suites: list[SuiteOutcome]
    update: bool = False

    @property
    def passed(self) -> bool:
        return all(suite.passed for suite in self.suites)


class EvalRun:
    """Accumulates :class:`CaseResult` objects per suite."""

    def __init__(self) -> None:
        self._results: dict[str, list[CaseResult]] = {}

    def add(self, result: CaseResult) -> None:
        self._results.setdefault(result.suite.suite_id, []).append(result)

    def __bool__(self) -> bool:
        return bool(self._results)

    def results(self) -> dict[str, list[CaseResult]]:
        """The results so far by suite id, sorted by case and repeat (for incomplete runs)."""
        return {suite_id: sorted(found, key=lambda r: (r.case_id, r.repeat)) for suite_id, found in sorted(self._results.items())}

    def finish(
        self,
        store: BaselineStore,
        policy: GatePolicy,
        *,
        update: bool = False,
        plugin_version: str = "",
        provenance: Callable[[], Mapping[str, Any]] = dict,
    ) -> RunOutcome:
        """Judge every suite; in update mode also write the baselines."""
        outcomes = []
        for suite_id, results in self.results().items():
            outcome = _collate(results)
            outcome.baseline_path = store.display(suite_id)
            _judge(outcome, store, policy, update)
            if update and outcome.baseline_error is None:
                outcome.baseline_written = store.write(_updated_baseline(outcome, plugin_version, provenance))
            outcomes.append(outcome)
        return RunOutcome(outcomes, update=update)


def _collate(results: list[CaseResult]) -> SuiteOutcome:
    spec = results[-1].suite
    repeats: dict[str, dict[int, Mapping[str, float]]] = {}
    hashes: dict[str, str] = {}
    errors: dict[str, str] = {}
    failed: set[str] = set()
    for result in results:
        repeats.setdefault(result.case_id, {})[result.repeat] = result.scores
        hashes[result.case_id] = result.content_hash
        if result.outcome == "error":
            errors[result.case_id] = result.error or "error"
        elif result.outcome == "failed":
            failed.add(result.case_id)

    usage = None
    if any(r.usage or r.latency_ms is not None for r in results):
        usage = summarize_suite([r.usage for r in results], [r.latency_ms for r in results],
                                [r.error_kind if r.outcome == "error" and r.error_kind not in ("scorer", "setup") else None
                                 for r in results])

    by_metric: dict[str, dict[str, list[float]]] = {}
    for case_id, runs in repeats.items():
        per_metric: dict[str, list[float]] = {}
        for repeat in sorted(runs):
            for metric, value in runs[repeat].items():
                per_metric.setdefault(metric, []).append(value)
        by_metric[case_id] = per_metric

    case_means = {
        case_id: {metric: sum(values) / len(values) for metric, values in metrics.items()}
        for case_id, metrics in by_metric.items()
        if case_id not in errors
    }
    flaky = sorted(case_id for case_id, metrics in by_metric.items() if any(len(set(v)) > 1 for v in metrics.values()))
    outcome = SuiteOutcome(
        spec=spec,
        case_means=case_means,
        repeats=by_metric,
        errors=errors,
        failed_cases=sorted(failed),
        flaky_cases=flaky,
        full_run=len(repeats) == spec.n_rows,
        content_hashes=hashes,
        results=sorted(results, key=lambda r: (r.case_id, r.repeat)),
        prompts=prompt_versions(results),
        usage=usage,
        case_tokens=_case_tokens(results),
    )
    return outcome


def prompt_versions(results: list[CaseResult]) -> dict[str, list[str]]:
    """Prompt name -> the versions the cases rendered."""
    found: dict[str, set[str]] = {}
    for result in results:
        for name, version in result.prompts.items():
            found.setdefault(name, set()).add(version)
    return {name: sorted(versions) for name, versions in sorted(found.items())}


def _case_tokens(results: list[CaseResult]) -> dict[str, dict[str, float]]:
    """Mean app input/output tokens per case (over its repeats), for cases that called a model."""
    per_case: dict[str, list[tuple[int, int]]] = {}
    for result in results:
        app = result.usage.get("app")
        if app and app.get("calls") and result.outcome != "error":
            per_case.setdefault(result.case_id, []).append((app["input_tokens"], app["output_tokens"]))
    return {
        case_id: {"input_tokens": sum(i for i, _ in runs) / len(runs), "output_tokens": sum(o for _, o in runs) / len(runs)}
        for case_id, runs in per_case.items()
    }


def _judge(outcome: SuiteOutcome, store: BaselineStore, policy: GatePolicy, update: bool) -> None:
    spec = outcome.spec
    baseline_scores = None
    try:
        baseline = store.load(spec.suite_id)
    except BaselineError as exc:
        baseline, outcome.baseline_error = None, str(exc)
    outcome.baseline = baseline
    if baseline is not None:
        outcome.fingerprint_changed = baseline.fingerprint != spec.fingerprint
        hashes = outcome.content_hashes
        outcome.new_cases = sorted(set(hashes) - set(baseline.cases))
        outcome.missing_cases = sorted(set(baseline.cases) - set(hashes))
        outcome.changed_cases = sorted(c for c in set(hashes) & set(baseline.cases) if baseline.cases[c].content_hash != hashes[c])
        paired = {c: baseline.cases[c].means() for c in outcome.case_means if c in baseline.cases and c not in outcome.changed_cases}
        outcome.paired_cases = len(paired)
        if not update:
            baseline_scores = paired
    present = {m for scores in outcome.case_means.values() for m in scores} | set(spec.metrics)
    outcome.verdicts = judge_suite(outcome.case_means, spec.thresholds_for(present), spec.max_drop, policy, baseline_scores, spec.metrics)
    if outcome.usage is not None:
        paired_tokens = None
        if baseline is not None and not update:
            shared = [c for c in outcome.case_tokens if c in baseline.cases and baseline.cases[c].usage and c not in outcome.changed_cases]
            if shared:
                paired_tokens = {
                    name: (sum(baseline.cases[c].usage.get(name, 0.0) for c in shared) / len(shared),
                           sum(outcome.case_tokens[c][name] for c in shared) / len(shared))
                    for name in ("input_tokens", "output_tokens")
                }
        outcome.usage_verdicts = judge_usage(outcome.usage, spec.budgets, paired_tokens)


def _updated_baseline(outcome: SuiteOutcome, plugin_version: str, provenance: Callable[[], Mapping[str, Any]]) -> Baseline:
    spec = outcome.spec
    hashes = outcome.content_hashes
    updates = {
        case_id: BaselineCase.of(hashes[case_id], outcome.repeats[case_id], outcome.case_tokens.get(case_id))
        for case_id in outcome.case_means
    }
    old = outcome.baseline or Baseline(spec.suite_id, spec.dataset, spec.fingerprint, {})
    keep = set(hashes) if outcome.full_run else None
    prompts = outcome.prompts if outcome.full_run else {**old.prompts, **outcome.prompts}
    return Baseline(spec.suite_id, spec.dataset, spec.fingerprint, old.merged(updates, keep), plugin_version, provenance(), prompts=prompts)


def _preview(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
