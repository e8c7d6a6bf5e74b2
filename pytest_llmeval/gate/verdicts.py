"""The gate: per suite and metric, an absolute threshold and a paired regression test.

Pure decision logic. Input is per-case scores (repeats already averaged: the case is the
cluster) and, when a baseline exists, the baseline's scores for the cases both sides
share. Output is one :class:`MetricVerdict` per metric, with the numbers that explain it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from . import stats

__all__ = ["GatePolicy", "MetricVerdict", "judge_suite", "regression_decision"]


@dataclass(frozen=True)
class GatePolicy:
    alpha: float = stats.DEFAULT_ALPHA
    max_drop: float = 0.02
    max_drop_by_metric: Mapping[str, float] = field(default_factory=dict)
    non_inferiority: bool = False
    enforce_thresholds: bool = True
    enforce_partial: bool = False  # fail on thresholds when only some of a suite's cases ran
    waived_because: str = "--llm-eval-ignore-thresholds"  # why a threshold is reported, not enforced

    def allowed_drop(self, metric: str, suite_max_drop: Mapping[str, float]) -> float:
        """The marker's per-metric value, its one number for all, the ini's per-metric, the default."""
        return suite_max_drop.get(metric, suite_max_drop.get("*", self.max_drop_by_metric.get(metric, self.max_drop)))


@dataclass(frozen=True)
class MetricVerdict:
    """Everything the gate concluded about one (suite, metric)."""

    metric: str
    estimate: stats.MeanEstimate
    threshold: float | None
    allowed_drop: float
    comparison: stats.PairedComparison | None = None
    p_adjusted: float | None = None
    threshold_failed: bool = False
    regressed: bool = False
    failures: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    insufficient: str = ""  # why the regression test could not judge ("" when it could)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def status(self) -> str:
        return "pass" if self.passed else "fail"

    def message(self) -> str:
        """One paragraph: failures first, then the numbers and notes."""
        lines = list(self.failures) or [self.summary()]
        if self.comparison is not None and self.comparison.n and not self.regressed:
            lines.append(regression_line(self.metric, self.comparison, self.p_adjusted, self.allowed_drop))
        lines += self.notes
        return "\n".join(lines)

    def summary(self) -> str:
        e = self.estimate
        text = f"{self.metric} {fmt(e.mean)} (95% CI {fmt_ci(e.ci_low, e.ci_high)}, n={e.n})"
        if self.threshold is not None:
            text += f" >= {self.threshold:g}"
        return text


def judge_suite(
    case_scores: Mapping[str, Mapping[str, float]],
    thresholds: Mapping[str, float],
    suite_max_drop: Mapping[str, float],
    policy: GatePolicy,
    baseline_scores: Mapping[str, Mapping[str, float]] | None = None,
    declared: Sequence[str] = (),
) -> list[MetricVerdict]:
    """Judge every metric recorded in ``case_scores`` (case id -> metric -> score), every
    metric that has a threshold, and every ``declared`` one (the scorers' metrics: one no
    case produced fails). ``baseline_scores`` holds the baseline's scores of the cases that
    may be paired (same id, same content)."""
    metrics = sorted({m for scores in case_scores.values() for m in scores} | set(thresholds) | set(declared))
    comparisons: dict[str, stats.PairedComparison] = {}
    if baseline_scores is not None:
        for metric in metrics:
            pairs = [
                (baseline_scores[case][metric], scores[metric])
                for case, scores in sorted(case_scores.items())
                if metric in scores and metric in baseline_scores.get(case, {})
            ]
            comparisons[metric] = stats.compare_paired(
                [b for b, _ in pairs], [c for _, c in pairs], alpha=policy.alpha,
                allowed_drop=policy.allowed_drop(metric, suite_max_drop),
            )
    tested = [m for m in metrics if m in comparisons and _informative(comparisons[m])]
    adjusted = dict(zip(tested, stats.holm([comparisons[m].p_value for m in tested])))

    verdicts = []
    for metric in metrics:
        values = [scores[metric] for _, scores in sorted(case_scores.items()) if metric in scores]
        verdicts.append(
            _judge_metric(metric, values, thresholds.get(metric), policy.allowed_drop(metric, suite_max_drop),
                          policy, comparisons.get(metric), adjusted.get(metric))
        )
    return verdicts


def _informative(c: stats.PairedComparison) -> bool:
    """Whether a comparison could reject at all. Pairs that never differ (no discordant
    pairs, all differences zero) cannot; leaving them out of the Holm family, as Tarone's
    refinement does, keeps metrics that cannot move from diluting the ones that can."""
    if c.n == 0 or c.insufficient:
        return False
    if c.test == "mcnemar-exact":
        return bool((c.losses or 0) + (c.wins or 0))
    return not (c.change == 0 and c.se == 0)


def _judge_metric(
    metric: str,
    values: Sequence[float],
    threshold: float | None,
    allowed_drop: float,
    policy: GatePolicy,
    comparison: stats.PairedComparison | None,
    p_adjusted: float | None,
) -> MetricVerdict:
    estimate = stats.mean_ci(values)
    failures: list[str] = []
    notes: list[str] = []

    threshold_failed = False
    if threshold is None and estimate.n == 0:
        failures.append(f"{metric}: no case produced a score (every case errored or was not scored)")
    elif threshold is not None:
        if estimate.n == 0:
            threshold_failed = True
            failures.append(f"{metric}: no case recorded this metric, but a threshold of {threshold:g} is set")
        elif estimate.mean < threshold:
            threshold_failed = True
            line = f"{metric} {fmt(estimate.mean)} < {threshold:g} (95% CI {fmt_ci(estimate.ci_low, estimate.ci_high)}, n={estimate.n})"
            if policy.enforce_thresholds:
                failures.append(line)
            else:
                notes.append(f"{line} [not enforced: {policy.waived_because}]")

    regressed = False
    insufficient = ""
    if comparison is not None:
        if comparison.n == 0:
            notes.append(f"{metric}: no case pairs with the baseline; regression check skipped")
        else:
            regressed, reason, insufficient = regression_decision(comparison, p_adjusted, allowed_drop, policy)
            if regressed:
                failures.append(f"{metric} regressed: {reason}")
                failures.append(regression_line(metric, comparison, p_adjusted, allowed_drop))
            elif insufficient:
                notes.append(f"{metric}: insufficient evidence for the regression test ({insufficient}); "
                             "the regression check passes, thresholds still apply")
            if not insufficient and not math.isnan(comparison.mde_test) and comparison.mde_test > allowed_drop:
                notes.append(
                    f"{metric}: with n={comparison.n} paired cases the test cannot reliably see a drop of "
                    f"{allowed_drop:g} (minimum detectable drop at 80% power: {fmt(comparison.mde)}); the suite is too small"
                )
    return MetricVerdict(metric, estimate, threshold, allowed_drop, comparison, p_adjusted,
                         threshold_failed, regressed, tuple(failures), tuple(notes), insufficient)


def regression_decision(
    comparison: stats.PairedComparison, p_adjusted: float | None, allowed_drop: float, policy: GatePolicy
) -> tuple[bool, str, str]:
    """The regression rule for one compared metric: ``(blocks, why, insufficient)``.

    Normal mode blocks when the (Holm-adjusted) one-sided p < alpha and the observed drop
    exceeds ``allowed_drop``; non-inferiority mode blocks unless the lower (1 - alpha)
    bound of the change is above ``-allowed_drop``. A comparison whose statistic is
    degenerate (one pair, zero variance) never blocks: ``insufficient`` names the reason.
    """
    drop = -comparison.change
    if policy.non_inferiority:
        lower = stats.non_inferiority_lower_bound(comparison, policy.alpha)
        if math.isnan(lower):
            return False, "", comparison.insufficient or "the differences have no variance: no confidence bound"
        reason = (f"lower {1 - policy.alpha:.0%} bound of the change {fmt_signed(lower)} is not above "
                  f"-{allowed_drop:g} (non-inferiority)")
        return lower <= -allowed_drop, reason, ""
    if comparison.insufficient:
        return False, "", comparison.insufficient
    p = comparison.p_value if p_adjusted is None else p_adjusted
    return p < policy.alpha and drop > allowed_drop, f"significant drop of {fmt(drop)} > allowed {allowed_drop:g}", ""


def regression_line(metric: str, c: stats.PairedComparison, p_adjusted: float | None, allowed_drop: float) -> str:
    """The comparison's numbers in one line, for junit messages and the terminal."""
    holm = f", Holm-adjusted p={fmt_p(p_adjusted)}" if p_adjusted is not None and p_adjusted != c.p_value else ""
    return (
        f"{metric} vs baseline: {fmt(c.baseline_mean)} -> {fmt(c.current_mean)}, "
        f"change {fmt_signed(c.change)} (95% CI {fmt_signed(c.ci_low)} to {fmt_signed(c.ci_high)}), "
        f"{c.test} one-sided p={fmt_p(c.p_value)}{holm}, n paired={c.n}, "
        f"minimum detectable drop {fmt(c.mde)} at 80% power; allowed drop {allowed_drop:g}"
        + (f"; insufficient evidence: {c.insufficient}" if c.insufficient else "")
    )


def fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def fmt_signed(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:+.3f}"


def fmt_ci(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    return f"{low:.2f}-{high:.2f}"


def fmt_money(value: float) -> str:
    """USD with enough digits for per-case amounts."""
    if math.isnan(value):
        return "n/a"
    return f"{value:.4f}" if value >= 0.01 else f"{value:.6f}"


def fmt_p(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"
