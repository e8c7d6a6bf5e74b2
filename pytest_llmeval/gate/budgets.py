"""Usage budgets: cost, latency, error rate and token growth against the baseline.

Configured like thresholds (ini ``llm_eval_budgets`` lines, the marker's ``budgets=``).
Token growth is compared on tokens, not dollars: tokens are what a prompt change moves,
they are recorded on cache hits too, and they do not change when prices do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from .budget_keys import BUDGET_KEYS, DEFAULT_BUDGETS, parse_budgets

if TYPE_CHECKING:
    from ..providers.accounting import SuiteUsage

__all__ = ["BUDGET_KEYS", "DEFAULT_BUDGETS", "UsageVerdict", "judge_usage", "parse_budgets"]


@dataclass(frozen=True)
class UsageVerdict:
    """One budget's verdict. ``judged=False``: the budget could not be judged (usage
    unknown for some calls); it neither passes nor fails, and ``message`` says why."""

    name: str
    passed: bool
    message: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    judged: bool = True

    @property
    def status(self) -> str:
        """``"pass"``, ``"fail"`` or ``"not judged"``."""
        return "not judged" if not self.judged else "pass" if self.passed else "fail"


def _not_judged(name: str, usage: SuiteUsage, what: str) -> UsageVerdict:
    return UsageVerdict(name, True, f"{what} not judged: usage unknown for {usage.usage_unknown_calls} of {usage.calls} calls"
                        " (the provider's answers had no usage)",
                        {"usage_unknown_calls": usage.usage_unknown_calls, "calls": usage.calls}, judged=False)


def _cost_not_judged(usage: SuiteUsage, limit: float) -> UsageVerdict:
    from .verdicts import fmt_money

    what = f"cost per case (budget ${fmt_money(limit)})"
    if not getattr(usage, "unpriced_calls", 0):
        return _not_judged("cost_per_case", usage, what)
    reasons = [f"{usage.unpriced_calls} of {usage.calls} calls unpriced ({', '.join(usage.unpriced_models)}: no price in "
               "the table; add one with llm_eval_prices)"]
    if usage.usage_unknown_calls:
        reasons.append(f"usage unknown for {usage.usage_unknown_calls} of {usage.calls} calls")
    return UsageVerdict("cost_per_case", True, f"{what} not judged: cost unknown: {'; '.join(reasons)}",
                        {"unpriced_calls": usage.unpriced_calls, "usage_unknown_calls": usage.usage_unknown_calls,
                         "calls": usage.calls}, judged=False)


def _replayed_not_judged(name: str, what: str, usage: SuiteUsage) -> UsageVerdict:
    return UsageVerdict(name, True, f"{what} not judged: {usage.cached_calls} of {usage.calls} calls were replayed from "
                        "the cache, which costs nothing and does not wait for the provider; judged on live runs",
                        {"cached_calls": usage.cached_calls, "calls": usage.calls}, judged=False)


def judge_usage(
    usage: SuiteUsage,
    budgets: Mapping[str, float],
    paired_tokens: Mapping[str, tuple[float, float]] | None = None,
) -> list[UsageVerdict]:
    """Judge ``usage`` against ``budgets``. ``paired_tokens`` maps ``input_tokens`` /
    ``output_tokens`` to (baseline mean, current mean) over the cases both sides share.
    ``paired_tokens`` is None when no comparison was due (no baseline, an update run).
    When some calls had no usage, the cost and token budgets are not judged (a sum with
    unknown terms is neither under nor over a limit); so is the cost budget when some calls'
    models have no price, unless the priced calls alone are over it (then it fails). When
    some calls were replayed from the cache, the cost and latency budgets are not judged
    unless the live calls alone are over them: a replay pays nothing and waits for no
    provider. The token budgets are judged on replays too (recordings hold the tokens)."""
    from .verdicts import fmt_money

    verdicts = []
    unknown = getattr(usage, "usage_unknown_calls", 0) > 0
    unpriced = getattr(usage, "unpriced_calls", 0)
    replayed = getattr(usage, "cached_calls", 0)
    limit = budgets.get("max_cost_per_case")
    # Calls the mean leaves out (no usage, no price) or counts at $0 (replayed): it is a lower bound.
    uncounted = (f"cost unknown for {usage.usage_unknown_calls + unpriced} of {usage.calls} calls" if unknown or unpriced
                 else f"{replayed} of {usage.calls} calls replayed from the cache at no cost" if replayed else None)
    if limit is not None and uncounted and not usage.cost_mean > limit:
        verdicts.append(_cost_not_judged(usage, limit) if unknown or unpriced
                        else _replayed_not_judged("cost_per_case", f"cost per case (budget ${fmt_money(limit)})", usage))
    elif limit is not None and uncounted:  # the counted calls alone are over: a fact
        verdicts.append(UsageVerdict("cost_per_case", False,
                                     f"cost per case at least ${fmt_money(usage.cost_mean)} mean ({uncounted}) > budget "
                                     f"${fmt_money(limit)}", {"cost_mean": usage.cost_mean, "budget": limit}))
    elif limit is not None:
        mean = usage.cost_mean
        passed = math.isnan(mean) or mean <= limit
        text = f"cost per case ${fmt_money(mean)} mean (p95 ${fmt_money(usage.cost_p95)}, total ${fmt_money(usage.cost_total)})"
        if usage.unpriced_models:
            text += f"; unpriced models not counted: {', '.join(usage.unpriced_models)}"
        verdicts.append(UsageVerdict("cost_per_case", passed, f"{text} {'<=' if passed else '>'} budget ${fmt_money(limit)}",
                                     {"cost_mean": mean, "budget": limit}))
    limit = budgets.get("max_latency_p95_ms")
    app_replayed = getattr(usage, "app_cached_calls", 0)  # the latency is the app's: replayed judge calls are not in it
    if limit is not None and app_replayed and not usage.latency_p95_ms > limit:
        verdicts.append(UsageVerdict("latency_p95", True, f"latency p95 (budget {limit:g} ms) not judged: {app_replayed} app "
                                     "call(s) were replayed from the cache, which does not wait for the provider; judged on "
                                     "live runs", {"app_cached_calls": app_replayed}, judged=False))
    elif limit is not None:
        p95 = usage.latency_p95_ms
        passed = math.isnan(p95) or p95 <= limit
        verdicts.append(UsageVerdict("latency_p95", passed,
                                     f"latency p95 {p95:.0f} ms (p50 {usage.latency_p50_ms:.0f}, p99 {usage.latency_p99_ms:.0f}) {'<=' if passed else '>'} budget {limit:g} ms",
                                     {"latency_p95_ms": p95, "budget": limit}))
    limit = budgets.get("max_error_rate")
    if limit is not None:
        passed = usage.error_rate <= limit
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(usage.errors_by_kind.items())) or "none"
        verdicts.append(UsageVerdict("error_rate", passed,
                                     f"error rate {usage.error_rate:.1%} of {usage.cases} case(s) ({kinds}) {'<=' if passed else '>'} budget {limit:.1%}",
                                     {"error_rate": usage.error_rate, "budget": limit}))
    for tokens in ("output_tokens", "input_tokens"):
        limit = budgets.get(f"max_{tokens}_increase")
        if limit is not None and unknown and paired_tokens is not None:
            verdicts.append(_not_judged(f"{tokens}_increase", usage, f"{tokens.replace('_', ' ')} increase (allowed {limit:.0%})"))
            continue
        if limit is None or not paired_tokens or tokens not in paired_tokens:
            continue
        before, after = paired_tokens[tokens]
        growth = math.inf if before == 0 and after > 0 else 0.0 if before == 0 else after / before - 1
        passed = growth <= limit
        label = tokens.replace("_", " ")
        verdicts.append(UsageVerdict(f"{tokens}_increase", passed,
                                     f"mean {label} per case {before:.1f} -> {after:.1f} ({growth:+.0%}) {'<=' if passed else 'exceeds'} allowed increase {limit:.0%}",
                                     {"baseline_mean": before, "mean": after, "increase": growth, "budget": limit}))
    return verdicts
