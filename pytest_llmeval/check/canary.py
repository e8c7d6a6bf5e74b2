"""The canary decision: promote, hold or roll back a candidate against its control.

The report holds two suites run on the same cases: the control (what serves traffic now)
and the candidate (the change being rolled out). Cases are paired by ``case_id``
(repeats of a case are averaged first: the case is the unit, never case x repeat), and
each metric is compared with :func:`pytest_llmeval.gate.stats.compare_paired` (exact McNemar
for binary metrics, paired t otherwise), Holm-corrected across metrics.

* **roll back** when the candidate's own gate failed, its error rate or p95 latency is
  above the rollback limits, or a metric dropped significantly (adjusted p < alpha) by
  more than the allowed drop;
* **hold** when the evidence cannot settle it: the minimum detectable drop at this n
  exceeds the allowed drop (the decision says how many cases would be enough), the paired
  test has insufficient evidence (differences with no variance), the run
  is incomplete or unjudged, or the stage has not run its minimum time;
* **promote** otherwise, to the stage after ``current_stage`` (the first stage when none).

The minimum detectable drop and the number of cases needed come from
:func:`~pytest_llmeval.gate.stats.minimum_detectable_drop`, the gate's formula (Connor 1987
for binary metrics, its continuous analogue otherwise: a real drop adds discordance), for
the test alone, with n the number of paired *cases*: repeats are averaged into their case
first and never count as extra evidence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from ..errors import LLMEvalError
from ..gate.stats import cases_needed
from ..reporting.report import json_safe
from .config import LoadedConfig
from .crosscheck import suite_failures
from .rules import number

__all__ = [
    "EXIT_CODES",
    "CanaryDecision",
    "CanaryError",
    "CanaryPolicy",
    "MetricResult",
    "cases_needed",
    "decide",
    "render_canary_json",
    "render_canary_junit",
    "render_canary_text",
]

EXIT_CODES = {"promote": 0, "rollback": 1, "hold": 3}


class CanaryError(LLMEvalError):
    """The canary question cannot be answered from this config and report (exit 2)."""


@dataclass(frozen=True)
class CanaryPolicy:
    """What the config's ``canary`` section asks for."""

    stages: tuple[float, ...]
    allowed_drop: float
    allowed_drop_source: str
    max_error_rate: float | None = None
    max_latency_p95_ms: float | None = None
    alpha: float = 0.05
    power: float = 0.80
    metrics: tuple[str, ...] | None = None
    min_stage_minutes: float | None = None

    @classmethod
    def from_config(cls, c: LoadedConfig) -> CanaryPolicy:
        canary = c.get("canary")
        if not isinstance(canary, dict):
            raise CanaryError(f"{c.file}: the config has no canary section (stages, rollback, ...)")
        stages = canary.get("stages")
        values = [number(s) for s in stages] if isinstance(stages, list) else []
        if not values or any(v is None for v in values):
            raise CanaryError(f"{c.file}:{c.line(('canary', 'stages'))}: canary.stages must be a list of percents")
        drop = number(c.get("canary", "rollback", "max_quality_drop"))
        if drop is not None:
            source = f"{c.file}:{c.line(('canary', 'rollback', 'max_quality_drop'))} canary.rollback.max_quality_drop"
        else:
            quality = number(c.get("monitoring", "quality_alert_threshold"))
            if quality is None or not quality < 0:
                raise CanaryError(f"{c.file}:{c.line(('canary',))}: no allowed drop for the canary: set "
                                  "canary.rollback.max_quality_drop (or a negative monitoring.quality_alert_threshold)")
            drop = -quality
            source = f"{c.file}:{c.line(('monitoring', 'quality_alert_threshold'))} monitoring.quality_alert_threshold"
        metrics = canary.get("metrics")
        return cls(
            stages=tuple(v for v in values if v is not None),
            allowed_drop=drop,
            allowed_drop_source=source,
            max_error_rate=number(c.get("canary", "rollback", "max_error_rate")),
            max_latency_p95_ms=number(c.get("canary", "rollback", "max_latency_p95_ms")),
            alpha=number(canary.get("alpha")) or 0.05,
            power=number(canary.get("power")) or 0.80,
            metrics=tuple(m for m in metrics if isinstance(m, str)) if isinstance(metrics, list) else None,
            min_stage_minutes=number(canary.get("min_stage_duration_minutes")),
        )


@dataclass(frozen=True)
class MetricResult:
    """One metric, candidate versus control over the paired cases."""

    metric: str
    n: int
    control_mean: float | None
    candidate_mean: float | None
    change: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_adjusted: float | None
    test: str
    mde: float | None
    binary: bool
    status: str  # "ok" | "regressed" | "underpowered"
    cases_needed: int | None
    message: str


@dataclass(frozen=True)
class CanaryDecision:
    decision: str  # "promote" | "hold" | "rollback"
    control: str
    candidate: str
    current_stage: float | None
    target_stage: float | None  # promote: the next stage (None: the rollout is complete); hold: current; rollback: 0
    allowed_drop: float
    allowed_drop_source: str
    alpha: float
    power: float
    n_pairs: int
    cases_needed: int | None
    reasons: tuple[str, ...]
    metrics: tuple[MetricResult, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["exit_code"] = self.exit_code
        data["mode"] = "canary"
        return json_safe(data)


def _case_means(suite: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """case_id -> metric -> mean over the case's repeats (errored repeats left out)."""
    collected: dict[str, dict[str, list[float]]] = {}
    for case in suite.get("cases", []):
        if case.get("outcome") == "error":
            continue
        scores = collected.setdefault(case["case_id"], {})
        for metric, value in (case.get("scores") or {}).items():
            scores.setdefault(metric, []).append(float(value))
    return {cid: {m: math.fsum(v) / len(v) for m, v in scores.items()} for cid, scores in collected.items()}


def _find_suite(report: Mapping[str, Any], suite_id: str, role: str) -> Mapping[str, Any]:
    suites = list(report.get("suites", []))
    for suite in suites:
        if suite["suite_id"] == suite_id:
            return suite
    import difflib

    ids = [s["suite_id"] for s in suites]
    close = difflib.get_close_matches(suite_id, ids, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise CanaryError(f"--{role} {suite_id!r}: no such suite in the report{hint} (suites: {', '.join(ids) or 'none'})")


def _fmt_stage(stage: float | None) -> str:
    return "-" if stage is None else f"{stage:g}%"


def decide(
    report: Mapping[str, Any],
    control_id: str,
    candidate_id: str,
    policy: CanaryPolicy,
    *,
    current_stage: float | None = None,
    stage_minutes: float | None = None,
) -> CanaryDecision:
    """Promote, hold or roll back; CanaryError when the question cannot be answered."""
    from ..gate.stats import compare_paired, holm, is_binary

    if control_id == candidate_id:
        raise CanaryError("--control and --candidate name the same suite")
    if current_stage is not None and not any(abs(current_stage - s) < 1e-9 for s in policy.stages):
        raise CanaryError(f"--current-stage {current_stage:g} is not one of canary.stages "
                          f"({', '.join(f'{s:g}' for s in policy.stages)})")
    control = _find_suite(report, control_id, "control")
    candidate = _find_suite(report, candidate_id, "candidate")
    before, after = _case_means(control), _case_means(candidate)
    shared_cases = sorted(set(before) & set(after))
    available = sorted({m for cid in shared_cases for m in before[cid]} & {m for cid in shared_cases for m in after[cid]})
    if policy.metrics is not None:
        missing = [m for m in policy.metrics if m not in available]
        if missing:
            raise CanaryError(f"canary.metrics: {', '.join(missing)} not scored on the shared cases of both suites "
                              f"(available: {', '.join(available) or 'none'})")
        metrics = list(policy.metrics)
    else:
        metrics = available
    if not metrics:
        raise CanaryError(f"{control_id} and {candidate_id} share no scored case and metric: "
                          f"{len(shared_cases)} common case id(s); run both on the same dataset")

    comparisons = []
    for metric in metrics:
        ids = [cid for cid in shared_cases if metric in before[cid] and metric in after[cid]]
        base = [before[cid][metric] for cid in ids]
        cur = [after[cid][metric] for cid in ids]
        try:
            comparison = compare_paired(base, cur, alpha=policy.alpha, power=policy.power)
        except ValueError as exc:  # a recorded value outside [0, 1]: no paired test applies
            raise CanaryError(f"metric {metric}: {exc}") from None
        comparisons.append((metric, comparison, is_binary(base) and is_binary(cur)))
    adjusted = holm([c.p_value for _, c, _ in comparisons])

    results: list[MetricResult] = []
    allowed = policy.allowed_drop
    for (metric, cmp, binary), p_adj in zip(comparisons, adjusted):
        drop = -cmp.change if cmp.n else math.nan
        needed = None
        if cmp.n and p_adj < policy.alpha and drop > allowed:
            status = "regressed"
            message = (f"{metric}: dropped {drop:.3f} ({cmp.baseline_mean:.3f} -> {cmp.current_mean:.3f}, "
                       f"p={p_adj:.3g} after Holm) beyond the allowed {allowed:g}")
        elif cmp.insufficient and cmp.n >= 2:  # no variance: the test cannot settle it either way
            status = "underpowered"
            message = f"{metric}: insufficient evidence ({cmp.insufficient}): the paired test cannot judge this change"
        elif not (cmp.mde_test <= allowed):  # also nan: fewer than 2 pairs
            status = "underpowered"
            noise = cmp.noise if math.isfinite(cmp.noise) else 0.0
            needed = cases_needed(noise, allowed, alpha=policy.alpha, power=policy.power, binary=binary,
                                  loss_size=cmp.loss_size)
            seen = "nothing (fewer than 2 pairs)" if math.isnan(cmp.mde_test) else f"{cmp.mde_test:.3f}"
            message = (f"{metric}: with {cmp.n} paired case(s) the smallest detectable drop is {seen}, above the "
                       f"allowed {allowed:g}: about {needed} paired cases are needed ({max(needed - cmp.n, 0)} more)")
        else:
            status = "ok"
            message = (f"{metric}: change {cmp.change:+.3f} (p={p_adj:.3g}); a drop of {allowed:g} would have been "
                       f"seen (MDE {cmp.mde_test:.3f})")
        results.append(MetricResult(
            metric, cmp.n, _f(cmp.baseline_mean), _f(cmp.current_mean), _f(cmp.change), _f(cmp.ci_low),
            _f(cmp.ci_high), _f(cmp.p_value), _f(p_adj), cmp.test, _f(cmp.mde_test), binary, status, needed, message))

    rollback: list[str] = []
    hold: list[str] = []
    judged = candidate.get("verdict") is not None and report.get("complete", False)
    if not report.get("complete", False):
        hold.append("the report is incomplete: the run was interrupted or is still running")
    elif candidate.get("verdict") is None:
        hold.append(f"the candidate suite {candidate_id} was not judged (a deferred shard?): merge the shards first")
    if judged:
        failures = suite_failures(candidate, cases=False)
        if failures:
            rollback.append(f"the candidate suite {candidate_id} failed its gate: {'; '.join(failures)}")
    usage = candidate.get("usage") or {}
    error_rate = usage.get("error_rate")
    if error_rate is None:
        cases = candidate.get("cases", [])
        error_rate = sum(1 for c in cases if c.get("outcome") == "error") / len(cases) if cases else None
    if policy.max_error_rate is not None and error_rate is not None and error_rate > policy.max_error_rate:
        rollback.append(f"candidate error rate {error_rate:.1%} is above canary.rollback.max_error_rate "
                        f"{policy.max_error_rate:.1%}")
    p95 = usage.get("latency_p95_ms")
    if policy.max_latency_p95_ms is not None and p95 is not None and p95 > policy.max_latency_p95_ms:
        rollback.append(f"candidate p95 latency {p95:,.0f} ms is above canary.rollback.max_latency_p95_ms "
                        f"{policy.max_latency_p95_ms:,.0f} ms")
    rollback.extend(r.message for r in results if r.status == "regressed")
    hold.extend(r.message for r in results if r.status == "underpowered")
    if (current_stage is not None and stage_minutes is not None and policy.min_stage_minutes is not None
            and stage_minutes < policy.min_stage_minutes):
        hold.append(f"the {current_stage:g}% stage has run {stage_minutes:g} of its minimum "
                    f"{policy.min_stage_minutes:g} minutes (canary.min_stage_duration_minutes)")

    needed_all = [r.cases_needed for r in results if r.cases_needed is not None]
    n_pairs = len(shared_cases)
    if rollback:
        decision, target, reasons = "rollback", 0.0, rollback
    elif hold:
        decision, target, reasons = "hold", current_stage, hold
    else:
        decision, reasons = "promote", []
        if current_stage is None:
            target = policy.stages[0]
        else:
            index = next(i for i, s in enumerate(policy.stages) if abs(current_stage - s) < 1e-9)
            target = policy.stages[index + 1] if index + 1 < len(policy.stages) else None
        where = ": the rollout is complete" if target is None else f" to the {target:g}% stage"
        reasons.append(f"no metric dropped beyond the allowed {allowed:g} and every drop of that size would have been "
                       f"detected with {n_pairs} paired cases: promote{where}")
    return CanaryDecision(decision, control_id, candidate_id, current_stage, target, allowed,
                          policy.allowed_drop_source, policy.alpha, policy.power, n_pairs,
                          max(needed_all) if needed_all else None, tuple(reasons), tuple(results))


def _f(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


# --------------------------------------------------------------------------- rendering

_TITLES = {"promote": "PROMOTE", "hold": "HOLD", "rollback": "ROLL BACK"}


def render_canary_text(decision: CanaryDecision, findings: Sequence[Any] = ()) -> str:
    lines = [str(f) for f in findings]
    d = decision
    lines.append(f"canary: candidate {d.candidate} vs control {d.control}: {d.n_pairs} paired case(s); allowed drop "
                 f"{d.allowed_drop:g} ({d.allowed_drop_source}); alpha {d.alpha:g}, power {d.power:g}")
    header = f"  {'metric':<16} {'n':>5} {'control':>8} {'candidate':>9} {'change (95% CI)':>24} {'p(Holm)':>8} {'MDE':>6}  status"
    lines.append(header)
    for r in d.metrics:
        ci = "" if r.ci_low is None or r.ci_high is None else f" ({r.ci_low:+.3f}..{r.ci_high:+.3f})"
        change = "-" if r.change is None else f"{r.change:+.3f}{ci}"
        lines.append(f"  {r.metric:<16} {r.n:>5} {_cell(r.control_mean):>8} {_cell(r.candidate_mean):>9} {change:>24} "
                     f"{_cell(r.p_adjusted, '.3g'):>8} {_cell(r.mde):>6}  {r.status}")
    stage = ""
    if d.decision == "promote":
        stage = " (rollout complete)" if d.target_stage is None else f" to {_fmt_stage(d.target_stage)}"
    elif d.decision == "hold":
        stage = f" at {_fmt_stage(d.current_stage)}" if d.current_stage is not None else ""
    lines.append(f"decision: {_TITLES[d.decision]}{stage} (exit {d.exit_code})")
    lines.extend(f"  - {reason}" for reason in d.reasons)
    return "\n".join(lines) + "\n"


def _cell(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def render_canary_json(decision: CanaryDecision, findings: Sequence[Any] = ()) -> str:
    import json

    data = decision.to_dict()
    data["findings"] = [f.to_dict() for f in findings]
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


def render_canary_junit(decision: CanaryDecision, findings: Sequence[Any] = ()) -> str:
    """One test case per metric (a regressed metric fails) plus the decision (fails on roll back)."""
    from xml.etree import ElementTree as ET

    from .findings import xml_safe

    root = ET.Element("testsuites")
    failures = sum(1 for r in decision.metrics if r.status == "regressed") + (decision.decision == "rollback")
    suite = ET.SubElement(root, "testsuite", {"name": "llm-eval-check canary", "tests": str(len(decision.metrics) + 1),
                                              "failures": str(failures), "errors": "0", "skipped": "0"})
    classname = f"llm-eval-check.canary.{decision.candidate}"
    for r in decision.metrics:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": f"canary[{r.metric}]"})
        if r.status == "regressed":
            ET.SubElement(case, "failure", {"message": xml_safe(r.message)}).text = xml_safe(r.message)
        else:
            ET.SubElement(case, "system-out").text = xml_safe(r.message)
    case = ET.SubElement(suite, "testcase", {"classname": classname, "name": f"canary decision: {decision.decision}"})
    text = xml_safe("\n".join(decision.reasons + tuple(str(f) for f in findings)))
    if decision.decision == "rollback":
        ET.SubElement(case, "failure", {"message": xml_safe(decision.reasons[0])}).text = text
    else:
        ET.SubElement(case, "system-out").text = text
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
