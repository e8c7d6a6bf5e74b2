"""One eval run: collects case results, then judges each suite and updates baselines.

No pytest here. The glue feeds :meth:`EvalRun.add` from every test report (serial or
from xdist workers alike) and calls :meth:`EvalRun.finish` once, on the controller,
after a complete run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import BaselineError
from ..gate.baseline import Baseline, BaselineCase, BaselineStore, lost_baseline, quantise
from ..gate.budgets import UsageVerdict, judge_usage
from ..gate.comparison import CaseFigures, ComparisonPolicy, PairComparison, RouteInfo, VariantGate, VariantSummary, \
    compare_variants, summarize_variant
from ..gate.verdicts import GatePolicy, MetricVerdict, judge_suite
from ..models import CaseResult, SuiteSpec, VariantSpec
from ..providers.accounting import SuiteUsage, summarize_suite
from .review import HumanReview, ReviewFile, ReviewFlag, cut_text, flag_cases

__all__ = ["EvalRun", "RunOutcome", "SuiteOutcome", "VariantGroup", "prompt_versions"]


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
    baseline_lost: str | None = None  # the absent baseline existed before: the evidence (gate.baseline.lost_baseline)
    paired_cases: int = 0
    new_cases: list[str] = field(default_factory=list)
    missing_cases: list[str] = field(default_factory=list)
    changed_cases: list[str] = field(default_factory=list)
    fingerprint_changed: bool = False
    baseline_written: bool | None = None  # None: not an update run
    rounds_note: str | None = None  # repeats="auto": how many rounds ran and why they stopped
    variant: str | None = None  # with A/B variants: one outcome per variant
    compared_with_baseline: bool = True  # False: a variant the baseline gate does not apply to
    comparison: PairComparison | None = None  # this variant versus the control
    summary: VariantSummary | None = None
    review: dict[str, list[ReviewFlag]] = field(default_factory=dict)  # case id -> why a person should look
    human_reviews: dict[str, HumanReview] = field(default_factory=dict)  # case id -> a reviewer's decision

    @property
    def n_cases(self) -> int:
        return len(self.repeats)

    @property
    def display_id(self) -> str:
        """The suite id, with ``@variant`` for a variant (how reports and llm-eval-check name it)."""
        return self.spec.suite_id if self.variant is None else f"{self.spec.suite_id}@{self.variant}"

    @property
    def partial(self) -> str | None:
        """"k of n cases" when not every case of the suite ran (a -k, node id or --lf
        selection), else None."""
        return None if self.full_run else f"{self.n_cases} of {self.spec.n_rows} cases"

    @property
    def passed(self) -> bool:
        return (self.baseline_error is None and all(v.passed for v in [*self.verdicts, *self.usage_verdicts])
                and (self.comparison is None or self.comparison.passed))

    def notes(self) -> list[str]:
        """What a reader must know to trust the comparison."""
        notes = [self.rounds_note] if self.rounds_note else []
        if self.partial:
            notes.append(f"partial: {self.partial} ran; the gate judges only these (thresholds are reported, "
                         "enforced only with --llm-eval-enforce-partial; the regression test pairs only these cases)")
        if self.baseline_error:
            notes.append(self.baseline_error)
        elif self.baseline is None and self.baseline_written is None and self.compared_with_baseline and self.baseline_lost:
            notes.append(f"BASELINE MISSING: {self.baseline_path} is gone but existed before ({self.baseline_lost}): "
                         f"regression check skipped; restore it (git checkout -- {self.baseline_path}) or bless a new "
                         "one with --llm-eval-update")
        elif self.baseline is None and self.baseline_written is None and self.compared_with_baseline:
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
        rerun = sorted({r.case_id for r in self.results if r.attempts > 1})
        if rerun:  # a rerun that passes replaces a failing attempt: the means may be the better of two tries
            notes.append(f"{len(rerun)} case(s) were rerun (pytest-rerunfailures); their scores are from the last "
                         f"attempt: {_preview(rerun)}")
        return notes


@dataclass
class VariantGroup:
    """The variants of one suite side by side: summaries and control-vs-variant comparisons."""

    suite_id: str
    control: str
    baseline_variant: str
    summaries: list[VariantSummary]
    comparisons: list[PairComparison]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)


@dataclass
class RunOutcome:
    suites: list[SuiteOutcome]
    update: bool = False
    groups: list[VariantGroup] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(suite.passed for suite in self.suites)

    def flag_lost_baselines(self, store: BaselineStore, root: Path,
                            compared_before: Callable[[], set[str]] = set) -> list[str]:
        """Mark each suite whose baseline is absent but existed before, so its notes say
        BASELINE MISSING: a deleted or moved baseline must not turn into a quiet skip. The
        evidence: ``compared_before()``, the suite ids a previous report compared with a
        baseline (called only when some suite has none), else git history of the file under
        ``root``. Returns one warning per such suite, for the terminal."""
        missing = [s for s in self.suites if s.baseline is None and s.baseline_error is None and s.compared_with_baseline]
        before = compared_before() if missing else set()
        warnings = []
        for suite in missing:
            suite.baseline_lost = lost_baseline(store.path_for(suite.spec.suite_id), root, suite.display_id, before)
            if suite.baseline_lost:
                warnings.append(f"{suite.display_id}: baseline {suite.baseline_path} is missing but existed before "
                                f"({suite.baseline_lost})")
        return warnings


class EvalRun:
    """Accumulates :class:`CaseResult` objects per suite."""

    def __init__(self) -> None:
        self._results: dict[str, dict[tuple[str, int, str | None], CaseResult]] = {}

    def add(self, result: CaseResult) -> None:
        """Add a case result; a later result of the same case, repeat and variant (a rerun's
        final attempt) replaces the earlier one, so every case counts once."""
        self._results.setdefault(result.suite.suite_id, {})[(result.case_id, result.repeat, result.variant)] = result

    def __bool__(self) -> bool:
        return bool(self._results)

    def results(self) -> dict[str, list[CaseResult]]:
        """The results so far by suite id, sorted by case and repeat (for incomplete runs)."""
        return {suite_id: [found[key] for key in sorted(found, key=lambda k: (k[0], k[1], k[2] or ''))] for suite_id, found in sorted(self._results.items())}

    def finish(
        self,
        store: BaselineStore,
        policy: GatePolicy,
        *,
        update: bool = False,
        plugin_version: str = "",
        provenance: Callable[[], Mapping[str, Any]] = dict,
        sequential: Mapping[str, tuple[float, str]] | None = None,
        baseline_output_chars: int | None = 0,
        reviews: ReviewFile | None = None,
    ) -> RunOutcome:
        """Judge every suite and flag the cases a person should look at; in update mode also
        write the baselines, keeping each case's output cut at ``baseline_output_chars``
        characters (0: no outputs, None: whole). ``sequential`` maps the suite id of a
        ``repeats="auto"`` suite to (nominal alpha of its last look, the note saying how many
        rounds ran and why they stopped); ``reviews``: reviewers' decisions to show."""
        outcome = self.judge(store, policy, update=update, sequential=sequential, reviews=reviews)
        if update:
            self.write_baselines(outcome, store, plugin_version=plugin_version, provenance=provenance,
                                 baseline_output_chars=baseline_output_chars)
        return outcome

    def judge(self, store: BaselineStore, policy: GatePolicy, *, update: bool = False,
              sequential: Mapping[str, tuple[float, str]] | None = None, reviews: ReviewFile | None = None) -> RunOutcome:
        """Judge every suite (each variant of a suite with variants) against its stored
        baseline and compare the variants; writes nothing (``sequential``: as for
        :meth:`finish`)."""
        outcomes, groups = [], []
        for suite_id, results in self.results().items():
            suite_policy, rounds_note = policy, None
            if sequential and suite_id in sequential:
                suite_policy = replace(policy, alpha=sequential[suite_id][0])
                rounds_note = sequential[suite_id][1]
            variants = results[-1].suite.variants
            by_variant = {name: [r for r in results if r.variant == name] for name in variants.names} if variants else {None: results}
            judged = []
            for name, found in by_variant.items():
                if not found:
                    continue  # a variant deselected (-k) or not run: the group notes say so
                outcome = _collate(found)
                outcome.variant = name
                outcome.rounds_note = rounds_note
                outcome.baseline_path = store.display(suite_id)
                outcome.compared_with_baseline = variants is None or name == variants.baseline_variant
                _judge(outcome, store if outcome.compared_with_baseline else None, suite_policy, update)
                if reviews is not None:
                    outcome.human_reviews = {c: r for c in outcome.content_hashes if (r := reviews.get(suite_id, c)) is not None}
                judged.append(outcome)
            if variants is not None:
                groups.append(_compare(suite_id, variants, judged, suite_policy.alpha))
            outcomes += judged
        return RunOutcome(outcomes, update=update, groups=groups)

    @staticmethod
    def write_baselines(outcome: RunOutcome, store: BaselineStore, *, plugin_version: str = "",
                        provenance: Callable[[], Mapping[str, Any]] = dict, baseline_output_chars: int | None = 0) -> None:
        """Write the judged suites' baselines, holding the folder's lock: each suite's
        update is merged into the file as it is on disk now (another run may have written
        it since the gate read it), so concurrent partial updates lose no case."""
        with store.locked():
            for suite in outcome.suites:
                if suite.baseline_error is None and suite.compared_with_baseline:
                    suite.baseline_written = store.update(
                        suite.spec.suite_id, lambda current, suite=suite: _updated_baseline(suite, current, plugin_version, provenance, baseline_output_chars))


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
                # At the baseline's precision, so both sides of a comparison are quantised alike.
                per_metric.setdefault(metric, []).append(quantise(value))
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
    """Mean app input/output tokens per case (over its repeats), for cases that called a
    model and whose every call reported its usage (no invented zeros reach a baseline)."""
    per_case: dict[str, list[tuple[int, int]]] = {}
    unknown = {r.case_id for r in results if (r.usage.get("app") or {}).get("usage_unknown_calls")}
    for result in results:
        app = result.usage.get("app")
        if app and app.get("calls") and result.outcome != "error" and result.case_id not in unknown:
            per_case.setdefault(result.case_id, []).append((app["input_tokens"], app["output_tokens"]))
    return {
        case_id: {"input_tokens": sum(i for i, _ in runs) / len(runs), "output_tokens": sum(o for _, o in runs) / len(runs)}
        for case_id, runs in per_case.items()
    }


def _judge(outcome: SuiteOutcome, store: BaselineStore | None, policy: GatePolicy, update: bool) -> None:
    """Thresholds and budgets; with a store also the regression test against its baseline."""
    spec = outcome.spec
    if outcome.partial and policy.enforce_thresholds and not policy.enforce_partial:
        policy = replace(policy, enforce_thresholds=False, waived_because=f"partial: {outcome.partial}")
    baseline_scores = None
    baseline = None
    try:
        baseline = store.load(spec.suite_id) if store is not None else None
    except BaselineError as exc:
        outcome.baseline_error = str(exc)
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
    thresholds = spec.thresholds_for(present)
    outcome.verdicts = judge_suite(outcome.case_means, thresholds, spec.max_drop, policy, baseline_scores, spec.metrics)
    outputs = {c: case.output for c, case in (baseline.cases.items() if baseline is not None else ())
               if case.output is not None and c not in outcome.changed_cases}
    outcome.review = flag_cases(outcome.results, thresholds, spec.case_thresholds, outputs)
    if outcome.usage is not None:
        paired_tokens = None
        if baseline is not None and not update:
            shared = [c for c in outcome.case_tokens if c in baseline.cases and baseline.cases[c].usage and c not in outcome.changed_cases]
            paired_tokens = {}  # a comparison was due: empty when no case pairs (the budgets then say why)
            if shared:
                paired_tokens = {
                    name: (sum(baseline.cases[c].usage.get(name, 0.0) for c in shared) / len(shared),
                           sum(outcome.case_tokens[c][name] for c in shared) / len(shared))
                    for name in ("input_tokens", "output_tokens")
                }
        outcome.usage_verdicts = judge_usage(outcome.usage, spec.budgets, paired_tokens)


def _updated_baseline(outcome: SuiteOutcome, current: Baseline | None, plugin_version: str,
                      provenance: Callable[[], Mapping[str, Any]], output_chars: int | None) -> Baseline:
    spec = outcome.spec
    hashes = outcome.content_hashes
    outputs: dict[str, str] = {}
    if output_chars != 0:
        for result in outcome.results:  # sorted by case and repeat: the first repeat's output
            if result.output is not None and result.case_id not in outputs:
                outputs[result.case_id] = cut_text(result.output, output_chars)
    updates = {
        case_id: BaselineCase.of(hashes[case_id], outcome.repeats[case_id], outcome.case_tokens.get(case_id), outputs.get(case_id))
        for case_id in outcome.case_means
    }
    old = current or Baseline(spec.suite_id, spec.dataset, spec.fingerprint, {})
    keep = set(hashes) if outcome.full_run else None
    prompts = outcome.prompts if outcome.full_run else {**old.prompts, **outcome.prompts}
    return Baseline(spec.suite_id, spec.dataset, spec.fingerprint, old.merged(updates, keep), plugin_version, provenance(), prompts=prompts)


def _compare(suite_id: str, spec: VariantSpec, outcomes: list[SuiteOutcome], alpha: float) -> VariantGroup:
    """Summarise each variant that ran and compare the control with every other one."""
    figures = {o.variant: _case_figures(o) for o in outcomes if o.variant is not None}
    group = VariantGroup(suite_id, spec.control, spec.baseline_variant,
                         [summarize_variant(name, cases, o.spec.metrics) for (name, cases), o in zip(figures.items(), outcomes)], [])
    for o, summary in zip(outcomes, group.summaries):
        o.summary = summary
    missing = [name for name in spec.names if name not in figures]
    if missing:
        group.notes.append(f"variant(s) {', '.join(missing)} did not run (deselected?): not compared")
    if spec.control not in figures:
        group.notes.append(f"the control variant {spec.control} did not run: no variant was compared")
        return group
    policy = ComparisonPolicy(alpha=alpha, min_effect=spec.min_effect, non_inferiority=spec.non_inferiority,
                              parity_margin=spec.parity_margin,
                              routes={name: RouteInfo(r["route"], r["model"], float(r["share"]), bool(r.get("fallback")))
                                      for name, r in spec.routes.items()})
    unapplied = {o.variant: problem for o in outcomes if (problem := _unapplied(spec, o)) is not None}
    by_name = {o.variant: o for o in outcomes}
    for pair in compare_variants(figures, spec.control, policy):
        problems = [unapplied[v] for v in (spec.control, pair.variant) if v in unapplied]
        if problems:  # comparing a thing with itself would say "no difference" quietly
            pair = replace(pair, gates=pair.gates + tuple(VariantGate("applied", "", 0.0, math.nan, False, p) for p in problems))
        by_name[pair.variant].comparison = pair
        group.comparisons.append(pair)
    return group


def _unapplied(spec: VariantSpec, outcome: SuiteOutcome) -> str | None:
    """Why a variant's model or prompt setting did not reach the app (None when it did, or sets none).
    A prompt counts as missed only when the cases rendered registry prompts, but not that one."""
    settings = dict(spec.variants)[outcome.variant]
    prompt = settings.get("prompt")
    rendered = sorted(outcome.prompts)
    if isinstance(prompt, str) and rendered and prompt.partition("@")[0] not in rendered:
        return (f"variant {outcome.variant} sets prompt {prompt}, but its cases rendered {', '.join(rendered)}: the "
                "setting did not reach the app, so the comparison cannot be judged")
    model = settings.get("model")
    if not isinstance(model, str):
        return None
    called = sorted({m for r in outcome.results for m in r.models})
    if any(m.split(":", 1)[-1] == model for m in called):
        return None
    seen = ", ".join(called) if called else "no model the plugin could see"
    return (f"variant {outcome.variant} sets model {model}, but its cases called {seen}: the setting did not reach "
            "the app (call models through the plugin's clients or an SDK the capture sees, or accept model= in the "
            "target), so the comparison cannot be judged")


def _case_figures(outcome: SuiteOutcome) -> dict[str, CaseFigures]:
    """Per case (repeats averaged): scores, app latency, app cost and tokens. Cost and
    latency are left out for cases replayed from the cache or priced at nothing known."""
    runs: dict[str, list[CaseResult]] = {}
    for r in outcome.results:
        if r.case_id in outcome.case_means:
            runs.setdefault(r.case_id, []).append(r)
    out = {}
    for case_id, found in runs.items():
        apps = [r.usage.get("app") or {} for r in found]
        live = all(a.get("calls") and not a.get("cached_calls") for a in apps)
        priced = live and not any(a.get("unpriced_models") for a in apps)
        latencies = [r.latency_ms for r in found if r.latency_ms is not None]
        tokens = outcome.case_tokens.get(case_id, {})
        out[case_id] = CaseFigures(
            outcome.case_means[case_id],
            latency_ms=sum(latencies) / len(latencies) if live and latencies else None,
            cost=sum(float(a.get("cost") or 0.0) for a in apps) / len(apps) if priced else None,
            input_tokens=tokens.get("input_tokens"),
            output_tokens=tokens.get("output_tokens"),
        )
    return out


def _preview(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
