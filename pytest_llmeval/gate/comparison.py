"""A/B variants of one suite: per-variant summaries and paired control-vs-variant statistics.

Every case of a suite runs under every variant, so variant and control are compared
paired by case id (repeats already averaged: the case is the unit). Per variant:
:class:`VariantSummary` (n, mean and CI per metric, latency mean/p50/p95, cost mean/p95
per case, tokens). Per pair (control vs each other variant), :func:`compare_variants`
gives for every metric

* the paired difference with its 95% CI and a two-sided p-value from the gate's own
  tests (:func:`~pytest_llmeval.gate.stats.compare_paired` in both directions: exact
  McNemar for binary metrics, paired t otherwise; two-sided p = 2 x the smaller one-sided
  p), Holm-corrected across every (variant, metric) of the suite;
* a verdict: ``better`` / ``worse`` when the adjusted p < alpha, otherwise
  ``no detectable difference`` with the minimum detectable effect at this n and the
  number of cases needed to detect the configured minimum effect (power analysis, at the
  Bonferroni level alpha / (2 m) that Holm applies to its smallest p-value, so the number
  is enough whatever the other comparisons show);

plus cost, latency and token differences (paired t, two-sided), and the optional gates:
non-inferiority per metric (the variant's lower one-sided 1 - alpha bound of the change
is above minus the margin) and provider parity for routed models (the same bound against
the primary route, for every metric). No pytest here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from . import stats
from .verdicts import _informative, fmt, fmt_money, fmt_p, fmt_signed

__all__ = [
    "BETTER",
    "NO_DIFFERENCE",
    "WORSE",
    "CaseFigures",
    "ComparisonPolicy",
    "MetricDifference",
    "PairComparison",
    "ResourceDifference",
    "RouteInfo",
    "VariantGate",
    "VariantSummary",
    "compare_variants",
    "summarize_variant",
]

BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no detectable difference"
_NAN = float("nan")


@dataclass(frozen=True)
class CaseFigures:
    """One case under one variant: scores (repeats averaged) and what it cost.

    ``cost`` in USD, ``latency_ms`` in milliseconds, tokens of the app's calls; None when
    not measured (no call through the plugin's clients, or an unpriced model's cost)."""

    scores: Mapping[str, float]
    latency_ms: float | None = None
    cost: float | None = None
    input_tokens: float | None = None
    output_tokens: float | None = None


@dataclass(frozen=True)
class RouteInfo:
    """A routed model a variant evaluates: ``route`` names it in the config
    (``routing.secondary``), ``model`` is ``provider:model``, ``share`` its traffic share."""

    route: str
    model: str
    share: float
    fallback: bool = False

    def describe(self) -> str:
        share = f"{round(self.share * 100, 6):g}% of traffic" if self.share > 0 else "takes the traffic on failover"
        return f"{self.model} ({self.route}, {share})"


@dataclass(frozen=True)
class ComparisonPolicy:
    """How variants are compared. ``min_effect``: the smallest change worth detecting
    (power analysis); ``non_inferiority``: metric -> margin for the "not worse than
    control" gate; ``parity_margin``: with routes, every routed model must be within
    this of the primary on every metric."""

    alpha: float = stats.DEFAULT_ALPHA
    power: float = stats.DEFAULT_POWER
    confidence: float = stats.DEFAULT_CONFIDENCE
    min_effect: float = 0.05
    non_inferiority: Mapping[str, float] = field(default_factory=dict)
    parity_margin: float | None = None
    routes: Mapping[str, RouteInfo] = field(default_factory=dict)  # variant -> routed model


@dataclass(frozen=True)
class VariantSummary:
    """The article's PromptABTest summary of one variant (nan: not measured)."""

    variant: str
    n: int
    metrics: Mapping[str, stats.MeanEstimate]
    latency_mean_ms: float
    latency_p50_ms: float
    latency_p95_ms: float
    cost_mean: float
    cost_p95: float
    input_tokens_mean: float
    output_tokens_mean: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "n": self.n,
            "metrics": {m: {"n": e.n, "mean": e.mean, "ci_low": e.ci_low, "ci_high": e.ci_high, "ci_method": e.method}
                        for m, e in sorted(self.metrics.items())},
            "latency_mean_ms": self.latency_mean_ms,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "cost_mean": self.cost_mean,
            "cost_p95": self.cost_p95,
            "input_tokens_mean": self.input_tokens_mean,
            "output_tokens_mean": self.output_tokens_mean,
        }


@dataclass(frozen=True)
class MetricDifference:
    """One metric, variant versus control over the paired cases."""

    metric: str
    n: int
    control_mean: float
    variant_mean: float
    change: float  # variant - control
    ci_low: float
    ci_high: float
    p_value: float  # two-sided
    p_adjusted: float  # Holm across the suite's (variant, metric) family
    test: str
    mde: float  # smallest change detected with the policy's power, at n (two-sided, Bonferroni level)
    min_effect: float
    cases_needed: int | None  # for min_effect at the same level; None when n < 2 pairs leave no estimate
    verdict: str  # BETTER | WORSE | NO_DIFFERENCE

    def describe(self) -> str:
        numbers = (f"{fmt(self.control_mean)} -> {fmt(self.variant_mean)}, change {fmt_signed(self.change)} "
                   f"(95% CI {fmt_signed(self.ci_low)} to {fmt_signed(self.ci_high)}), p={fmt_p(self.p_value)}, "
                   f"Holm p={fmt_p(self.p_adjusted)}, n={self.n}")
        if self.verdict != NO_DIFFERENCE:
            return f"{self.metric} {self.verdict}: {numbers}"
        return f"{self.metric} {self.verdict} ({self.mde_text()}): {numbers}; {self.needed_text()}"

    def mde_text(self) -> str:
        return f"MDE {fmt(self.mde)} at n={self.n}"

    def needed_text(self) -> str:
        if self.cases_needed is None:
            return "too few pairs to estimate the cases needed"
        more = self.cases_needed - self.n
        tail = f" ({more} more)" if more > 0 else " (this run has enough)"
        return f"{self.cases_needed} paired cases needed to detect a change of {self.min_effect:g}{tail}"


@dataclass(frozen=True)
class ResourceDifference:
    """Cost, latency or tokens per case, variant versus control (paired t, two-sided)."""

    name: str  # "cost" | "latency_ms" | "output_tokens" | "input_tokens"
    difference: stats.PairedDifference
    alpha: float

    @property
    def verdict(self) -> str:
        """``lower`` / ``higher`` when the CI excludes 0, else NO_DIFFERENCE; ``unknown`` with no pairs."""
        d = self.difference
        if d.n == 0:
            return "unknown"
        if d.p_value < self.alpha:
            return "lower" if d.change < 0 else "higher"
        return NO_DIFFERENCE

    @property
    def label(self) -> str:
        words = {"cost": ("cheaper", "more expensive"), "latency_ms": ("faster", "slower"),
                 "output_tokens": ("fewer output tokens", "more output tokens"),
                 "input_tokens": ("fewer input tokens", "more input tokens")}[self.name]
        verdict = self.verdict
        if verdict == "lower":
            return words[0]
        if verdict == "higher":
            return words[1]
        return f"{self.name.replace('_ms', '').replace('_', ' ')}: {verdict}"

    def describe(self) -> str:
        d = self.difference
        if d.n == 0:
            return f"{self.name}: not measured"
        unit = {"cost": lambda v: f"${fmt_money(v)}", "latency_ms": lambda v: f"{v:.0f} ms"}.get(self.name, lambda v: f"{v:.1f}")
        relative = "" if math.isnan(d.relative) else f" ({d.relative:+.0%})"
        ci = "" if math.isnan(d.ci_low) else f", 95% CI {_signed(d.ci_low, unit)} to {_signed(d.ci_high, unit)}"
        return f"{self.label}: {unit(d.control_mean)} -> {unit(d.variant_mean)} per case{relative}{ci}"


def _signed(value: float, unit: Any) -> str:
    return ("-" if value < 0 else "+") + unit(abs(value))


@dataclass(frozen=True)
class VariantGate:
    """A non-inferiority or parity gate on one metric of one variant."""

    kind: str  # "non_inferiority" | "parity"
    metric: str
    margin: float
    lower_bound: float  # one-sided 1 - alpha lower bound of the change (nan: cannot tell)
    passed: bool
    message: str


@dataclass(frozen=True)
class PairComparison:
    """Control versus one variant: quality, resources and gates."""

    control: str
    variant: str
    n_paired: int
    metrics: tuple[MetricDifference, ...]
    resources: tuple[ResourceDifference, ...]
    gates: tuple[VariantGate, ...] = ()
    route: RouteInfo | None = None

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (nan stays nan: the report's json_safe turns it into null)."""
        return {
            "control": self.control,
            "variant": self.variant,
            "n_paired": self.n_paired,
            "verdict": "pass" if self.passed else "fail",
            "headline": self.headline(),
            "metrics": [{"name": m.metric, "n": m.n, "control_mean": m.control_mean, "variant_mean": m.variant_mean,
                         "change": m.change, "change_ci_low": m.ci_low, "change_ci_high": m.ci_high, "p_value": m.p_value,
                         "p_adjusted": m.p_adjusted, "test": m.test, "mde": m.mde, "min_effect": m.min_effect,
                         "cases_needed": m.cases_needed, "verdict": m.verdict, "message": m.describe()} for m in self.metrics],
            "resources": [{"name": r.name, "n": r.difference.n, "control_mean": r.difference.control_mean,
                           "variant_mean": r.difference.variant_mean, "change": r.difference.change,
                           "relative": r.difference.relative, "change_ci_low": r.difference.ci_low,
                           "change_ci_high": r.difference.ci_high, "p_value": r.difference.p_value, "verdict": r.verdict,
                           "label": r.label} for r in self.resources],
            "gates": [{"kind": g.kind, "metric": g.metric, "margin": g.margin, "lower_bound": g.lower_bound,
                       "verdict": "pass" if g.passed else "fail", "message": g.message} for g in self.gates],
            "route": None if self.route is None else {"route": self.route.route, "model": self.route.model,
                                                      "share": self.route.share, "fallback": self.route.fallback},
        }

    def headline(self) -> str:
        """One line: every metric's verdict, then cost and latency beside them."""
        parts = []
        for m in self.metrics:
            text = f"{m.metric} {m.verdict}"
            if m.verdict == NO_DIFFERENCE:
                text += f" ({m.mde_text()}; {m.cases_needed if m.cases_needed is not None else '?'} cases needed for {m.min_effect:g})"
            else:
                text += f" ({fmt_signed(m.change)}, Holm p={fmt_p(m.p_adjusted)})"
            parts.append(text)
        parts += [r.label for r in self.resources if r.name in ("cost", "latency_ms") and r.verdict in ("lower", "higher")]
        return f"{self.variant} vs {self.control}: " + "; ".join(parts or ["no metric to compare"])


def summarize_variant(variant: str, cases: Mapping[str, CaseFigures], metrics: Sequence[str] = ()) -> VariantSummary:
    """Summarise one variant's cases (case id -> figures); ``metrics`` adds metrics no case recorded."""
    from ..providers.accounting import _percentiles

    names = sorted({m for c in cases.values() for m in c.scores} | set(metrics))
    ordered = [cases[k] for k in sorted(cases)]
    estimates = {m: stats.mean_ci([c.scores[m] for c in ordered if m in c.scores]) for m in names}
    latencies = _measured(c.latency_ms for c in ordered)
    costs = _measured(c.cost for c in ordered)
    p50, p95 = _percentiles(latencies, (50, 95))
    (cost_p95,) = _percentiles(costs, (95,))
    return VariantSummary(variant, len(ordered), estimates, _mean(latencies), p50, p95, _mean(costs), cost_p95,
                          _mean(_measured(c.input_tokens for c in ordered)), _mean(_measured(c.output_tokens for c in ordered)))


def compare_variants(
    cases: Mapping[str, Mapping[str, CaseFigures]],
    control: str,
    policy: ComparisonPolicy = ComparisonPolicy(),
) -> list[PairComparison]:
    """Control versus every other variant of ``cases`` (variant -> case id -> figures), in
    the mapping's order. Raises ValueError when ``control`` is not a variant."""
    if control not in cases:
        raise ValueError(f"control variant {control!r} is not among {', '.join(cases)}")
    others = [v for v in cases if v != control]
    base = cases[control]
    metrics = sorted({m for figures in cases.values() for c in figures.values() for m in c.scores})
    family = max(1, len(others) * len(metrics))
    level = policy.alpha / (2 * family)  # Bonferroni per side: Holm's first step, two-sided

    raw: dict[tuple[str, str], tuple[stats.PairedComparison, float, bool]] = {}
    for variant in others:
        for metric in metrics:
            ids = [cid for cid in sorted(base) if metric in base[cid].scores and metric in cases[variant].get(cid, _EMPTY).scores]
            before = [base[cid].scores[metric] for cid in ids]
            after = [cases[variant][cid].scores[metric] for cid in ids]
            worse = stats.compare_paired(before, after, alpha=level, power=policy.power, confidence=policy.confidence)
            better = stats.compare_paired(after, before, alpha=level, power=policy.power)
            two_sided = min(1.0, 2 * min(worse.p_value, better.p_value))
            raw[(variant, metric)] = (worse, two_sided, stats.is_binary(before) and stats.is_binary(after))
    tested = [key for key, (c, _, _) in raw.items() if _informative(c)]
    adjusted = dict(zip(tested, stats.holm([raw[key][1] for key in tested])))

    out = []
    for variant in others:
        differences = []
        for metric in metrics:
            c, p, binary = raw[(variant, metric)]
            p_adj = adjusted.get((variant, metric), 1.0 if c.n else _NAN)
            if c.n and p_adj < policy.alpha:
                verdict = BETTER if c.change > 0 else WORSE
            else:
                verdict = NO_DIFFERENCE
            noise = c.noise if math.isfinite(c.noise) else 0.0
            needed = stats.cases_needed(noise, policy.min_effect, alpha=level, power=policy.power, binary=binary,
                                        loss_size=c.loss_size) if c.n >= 2 else None
            differences.append(MetricDifference(metric, c.n, c.baseline_mean, c.current_mean, c.change, c.ci_low, c.ci_high,
                                                p, p_adj, c.test, c.mde, policy.min_effect, needed, verdict))
        paired_ids = sorted(set(base) & set(cases[variant]))
        resources = tuple(
            ResourceDifference(name, _paired(base, cases[variant], paired_ids, name, policy.confidence), policy.alpha)
            for name in ("cost", "latency_ms", "output_tokens", "input_tokens")
        )
        route = policy.routes.get(variant)
        gates = _gates(variant, control, base, cases[variant], metrics, policy, route)
        out.append(PairComparison(control, variant, len(paired_ids), tuple(differences), resources, gates, route))
    return out


_EMPTY = CaseFigures({})


def _gates(variant: str, control: str, base: Mapping[str, CaseFigures], other: Mapping[str, CaseFigures],
           metrics: Sequence[str], policy: ComparisonPolicy, route: RouteInfo | None) -> tuple[VariantGate, ...]:
    wanted: list[tuple[str, str, float]] = [("non_inferiority", m, margin) for m, margin in sorted(policy.non_inferiority.items())]
    if policy.parity_margin is not None and route is not None:
        wanted += [("parity", m, policy.parity_margin) for m in metrics]
    gates = []
    for kind, metric, margin in wanted:
        ids = [cid for cid in sorted(base) if metric in base[cid].scores and metric in other.get(cid, _EMPTY).scores]
        c = stats.compare_paired([base[cid].scores[metric] for cid in ids], [other[cid].scores[metric] for cid in ids],
                                 alpha=policy.alpha, power=policy.power)
        bound = stats.non_inferiority_lower_bound(c, policy.alpha) if c.n >= 2 else _NAN
        # With 2+ pairs a nan bound is degenerate statistics (no variance): insufficient
        # evidence, which never blocks; fewer than 2 pairs cannot be compared at all.
        degenerate = c.n >= 2 and math.isnan(bound)
        passed = degenerate or (not math.isnan(bound) and bound > -margin)
        who = route.describe() if kind == "parity" and route is not None else f"variant {variant}"
        against = f"the primary ({control})" if kind == "parity" else f"control {control}"
        level = f"lower {1 - policy.alpha:.0%} bound"
        if degenerate:
            message = (f"{who}: {metric} vs {against}: insufficient evidence ({c.insufficient or 'no variance'}): change "
                       f"{fmt_signed(c.change)} on every pair (n={c.n}), not blocked")
        elif math.isnan(bound):
            message = (f"{who}: {metric} cannot be compared with {against}: {c.n} paired case(s) with a score on both "
                       f"sides; a {kind.replace('_', '-')} gate needs at least 2")
        elif passed:
            message = (f"{who}: {metric} within {margin:g} of {against}: change {fmt_signed(c.change)}, {level} "
                       f"{fmt_signed(bound)} > -{margin:g} (n={c.n})")
        else:
            message = (f"{who}: {metric} is not shown to be within {margin:g} of {against}: change {fmt_signed(c.change)} "
                       f"({fmt(c.baseline_mean)} -> {fmt(c.current_mean)}), {level} {fmt_signed(bound)} <= -{margin:g} "
                       f"(n={c.n})")
        gates.append(VariantGate(kind, metric, margin, bound, passed, message))
    return tuple(gates)


def _paired(base: Mapping[str, CaseFigures], other: Mapping[str, CaseFigures], ids: Sequence[str], name: str,
            confidence: float) -> stats.PairedDifference:
    pairs = [(getattr(base[cid], name), getattr(other[cid], name)) for cid in ids]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
    return stats.paired_difference([a for a, _ in pairs], [b for _, b in pairs], confidence)


def _measured(values: Any) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else _NAN
