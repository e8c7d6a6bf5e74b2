"""The terminal summary: a RunOutcome as lines of text (pure; the glue prints them)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..core.run import RunOutcome, SuiteOutcome, VariantGroup
from ..gate.verdicts import MetricVerdict, fmt, fmt_ci, fmt_money, fmt_p, fmt_signed
from ..providers.accounting import SuiteUsage

__all__ = ["WORST_CASES", "summary_lines", "usage_line", "variant_lines", "worst_cases"]

WORST_CASES = 5  # per failing metric; -v lists them all
EXCERPT_CHARS = 70

_COLUMNS = ("metric", "mean", "95% CI", "threshold", "baseline", "change (95% CI)", "p", "test", "verdict")


def summary_lines(outcome: RunOutcome, *, verbose: bool = False) -> list[str]:
    """The summary: per suite its verdict table, usage, notes, the worst cases behind each
    failing metric (all of them when ``verbose``) and the cases flagged for review."""
    lines: list[str] = []
    for suite in outcome.suites:
        lines += _suite_lines(suite)
        lines += _worst_lines(suite, None if verbose else WORST_CASES)
        lines += _review_lines(suite, verbose)
        lines.append("")
    for group in outcome.groups:
        lines += variant_lines(group)
        lines.append("")
    if lines:
        lines.pop()
    return lines


def _suite_lines(suite: SuiteOutcome) -> list[str]:
    spec = suite.spec
    cases = f"partial: {suite.partial}" if suite.partial else f"{suite.n_cases} case(s)"
    head = f"{suite.display_id}  dataset {spec.dataset}: {cases}"
    if spec.repeats > 1:
        head += f" x {spec.repeats} repeats"
    if suite.paired_cases:
        head += f", {suite.paired_cases} paired with the baseline"
    errors = error_kinds(suite)
    if errors:
        head += f", {sum(errors.values())} errored ({_kinds(errors)})"
    head += "  " + ("PASS" if suite.passed else "FAIL")
    rows = [_COLUMNS] + [_row(v) for v in suite.verdicts]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    table = ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines = [head] + table
    if suite.usage is not None:
        lines.append("  " + usage_line(suite.usage))
    if errors:  # every kind, not only the app-call errors the usage line and error-rate budget count
        lines.append(f"  case errors: {sum(errors.values())} of {suite.n_cases} case(s) ({_kinds(errors)})")
    lines += [f"  {v.name}: {v.message}  {'NOT JUDGED' if not v.judged else 'pass' if v.passed else 'FAIL'}" for v in suite.usage_verdicts]
    lines += [f"  note: {note}" for note in suite.notes()]
    for verdict in suite.verdicts:
        lines += [f"  note: {note}" for note in verdict.notes]
    if suite.baseline_written is not None:
        if suite.baseline_written:
            lines.append(f"  baseline written: {suite.baseline_path} ({len(suite.case_means)} case(s) from this run{'' if suite.full_run else ', others kept'})")
        elif suite.baseline_error is None:
            lines.append(f"  baseline unchanged: {suite.baseline_path}")
    return lines


def error_kinds(suite: SuiteOutcome) -> dict[str, int]:
    """Errored cases by kind (app, a provider error kind, scorer, setup, crash)."""
    by_case: dict[str, str] = {}
    for result in suite.results:
        if result.outcome == "error":
            by_case.setdefault(result.case_id, result.error_kind or "error")
    kinds: dict[str, int] = {}
    for kind in by_case.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def _kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))


def usage_line(u: SuiteUsage) -> str:
    """Cost, tokens, latency, errors and cache use of a suite, in one line."""
    parts = []
    if u.calls:
        cost = f"cost ${fmt_money(u.cost_total)} (${fmt_money(u.cost_mean)}/case, p95 ${fmt_money(u.cost_p95)})"
        if u.cost_unknown:
            cost = "cost unknown"
        elif u.cost_unknown_calls:
            cost = "cost at least " + cost.removeprefix("cost ")
        if u.judge_cost_total:
            cost += f" of which judge ${fmt_money(u.judge_cost_total)}"
        if u.unpriced_calls:
            count = f"{u.unpriced_calls} call{'s' if u.unpriced_calls != 1 else ''}"
            cost += f" ({count} unpriced: {', '.join(u.unpriced_models)})" if u.cost_unknown and not u.usage_unknown_calls \
                else f", {count} unpriced: {', '.join(u.unpriced_models)}"
        elif u.unpriced_models:  # a report written before calls were counted
            cost += f", unpriced: {', '.join(u.unpriced_models)}"
        if u.usage_unknown_calls:
            cost += f", usage unknown for {u.usage_unknown_calls} of {u.calls} calls"
        parts.append(cost)
        tokens = f"tokens {u.input_tokens:,} in / {u.output_tokens:,} out ({u.output_tokens_mean:.0f} out/case)"
        details = [f"{n:,} {what}" for n, what in ((u.cached_input_tokens, "cached in"), (u.cache_write_tokens, "cache writes"),
                                                   (u.reasoning_tokens, "reasoning")) if n]
        parts.append(tokens + (f" [{', '.join(details)}]" if details else ""))
        parts.append(f"calls {u.calls}" + (f" ({u.cached_calls} from cache)" if u.cached_calls else ""))
    if not math.isnan(u.latency_p50_ms):
        parts.append(f"latency p50 {u.latency_p50_ms:.0f} ms, p95 {u.latency_p95_ms:.0f} ms, p99 {u.latency_p99_ms:.0f} ms")
    errors = ", ".join(f"{kind} {n}" for kind, n in sorted(u.errors_by_kind.items()))
    parts.append(f"errors {u.error_rate:.1%}" + (f" ({errors})" if errors else ""))
    retries = sum(u.retries_by_kind.values())
    if retries:
        parts.append(f"retries {retries} (" + ", ".join(f"{k} {n}" for k, n in sorted(u.retries_by_kind.items())) + ")")
    return "usage: " + "; ".join(parts)


def _row(v: MetricVerdict) -> tuple[str, ...]:
    e, c = v.estimate, v.comparison
    threshold = "" if v.threshold is None else f">= {v.threshold:g}"
    if c is not None and c.n:
        baseline, change = fmt(c.baseline_mean), f"{fmt_signed(c.change)} ({fmt_signed(c.ci_low)}..{fmt_signed(c.ci_high)})"
        p = "insufficient" if v.insufficient else fmt_p(v.p_adjusted if v.p_adjusted is not None else c.p_value)
        test = c.test
    else:
        baseline = change = p = test = ""
    return (v.metric, fmt(e.mean), fmt_ci(e.ci_low, e.ci_high), threshold, baseline, change, p, test, v.status)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def variant_lines(group: VariantGroup) -> list[str]:
    """A suite's variants side by side, then each control-vs-variant comparison."""
    status = "PASS" if group.passed else "FAIL"
    lines = [f"{group.suite_id}  variants (control {group.control}, baseline gate on {group.baseline_variant})  {status}"]
    metrics = sorted({m for s in group.summaries for m in s.metrics})
    rows: list[tuple[str, ...]] = [("variant", "n", *metrics, "cost/case mean/p95", "tokens in/out per case")]
    for s in group.summaries:
        cells = [f"{fmt(s.metrics[m].mean)} ({fmt_ci(s.metrics[m].ci_low, s.metrics[m].ci_high)})" if m in s.metrics else "" for m in metrics]
        cost = "n/a" if math.isnan(s.cost_mean) else f"${fmt_money(s.cost_mean)}/${fmt_money(s.cost_p95)}"
        tokens = "n/a" if math.isnan(s.output_tokens_mean) else f"{s.input_tokens_mean:.0f}/{s.output_tokens_mean:.0f}"
        rows.append((s.variant, str(s.n), *cells, cost, tokens))
    lines += _table(rows)
    latencies = [f"{s.variant} {s.latency_mean_ms:.0f} ms/{s.latency_p50_ms:.0f} ms/{s.latency_p95_ms:.0f} ms"
                 for s in group.summaries if not math.isnan(s.latency_mean_ms)]
    if latencies:
        lines.append("  latency per case (app call, mean/p50/p95): " + ", ".join(latencies))
    if group.comparisons:
        rows = [("comparison", "metric", "change (95% CI)", "p", "Holm p", "verdict")]
        for pair in group.comparisons:
            for m in pair.metrics:
                verdict = m.verdict if m.verdict != "no detectable difference" else f"{m.verdict} ({m.mde_text()}; {m.needed_text()})"
                rows.append((f"{pair.variant} vs {pair.control}", m.metric, f"{fmt_signed(m.change)} ({fmt_signed(m.ci_low)}..{fmt_signed(m.ci_high)})",
                             fmt_p(m.p_value), fmt_p(m.p_adjusted), verdict))
        lines += _table(rows)
        for pair in group.comparisons:
            for names in (("cost", "output_tokens"), ("latency_ms",)):
                resources = [r.describe() for r in pair.resources if r.name in names and r.difference.n]
                if resources:
                    lines.append(f"  {pair.variant} vs {pair.control}: " + "; ".join(resources))
            lines += [f"  {g.kind.replace('_', '-')}: {g.message}  {'pass' if g.passed else 'FAIL'}" for g in pair.gates]
    lines += [f"  note: {note}" for note in group.notes]
    return lines


def worst_cases(suite: SuiteOutcome, metric: str) -> list[tuple[str, float, float | None]]:
    """(case id, score, baseline score) of the cases behind a failing metric, worst first:
    those that dropped against the baseline when the metric was compared, otherwise those
    below the metric's threshold (repeats averaged)."""
    verdict = next(v for v in suite.verdicts if v.metric == metric)
    baseline = suite.baseline
    if verdict.comparison is not None and verdict.comparison.n and baseline is not None:
        drops = []
        for case_id, scores in suite.case_means.items():
            before = baseline.cases[case_id].means().get(metric) if case_id in baseline.cases and case_id not in suite.changed_cases else None
            if before is not None and metric in scores and scores[metric] < before:
                drops.append((case_id, scores[metric], before))
        return sorted(drops, key=lambda d: (d[1] - d[2], d[0]))
    line = verdict.threshold if verdict.threshold is not None else math.inf
    low = [(case_id, scores[metric], None) for case_id, scores in suite.case_means.items() if metric in scores and scores[metric] < line]
    return sorted(low, key=lambda d: (d[1], d[0]))


def _worst_lines(suite: SuiteOutcome, limit: int | None) -> list[str]:
    outputs: dict[str, str] = {}
    for result in suite.results:
        if result.output is not None:
            outputs.setdefault(result.case_id, result.output)
    lines = []
    for verdict in suite.verdicts:
        if verdict.passed:
            continue
        cases = worst_cases(suite, verdict.metric)
        if not cases:
            continue
        what = "dropped against the baseline" if cases[0][2] is not None else "scored lowest"
        shown = cases if limit is None else cases[:limit]
        more = f", {len(cases) - len(shown)} more with -v" if len(shown) < len(cases) else ""
        lines.append(f"  worst cases for {verdict.metric} ({len(cases)} {what}{more}):")
        width = max(len(case_id) for case_id, _, _ in shown)
        for case_id, score, before in shown:
            versus = f" vs baseline {fmt(before)}" if before is not None else ""
            lines.append(f"    {case_id.ljust(width)}  {verdict.metric} {fmt(score)}{versus}  {_excerpt(outputs.get(case_id))}".rstrip())
    return lines


def _excerpt(text: str | None) -> str:
    if text is None:
        return ""
    line = " ".join(text.split())
    return repr(line if len(line) <= EXCERPT_CHARS else line[: EXCERPT_CHARS - 3] + "...")


def _review_lines(suite: SuiteOutcome, verbose: bool) -> list[str]:
    lines = []
    if suite.review:
        reasons: dict[str, int] = {}
        for flags in suite.review.values():
            for reason in dict.fromkeys(flag.reason for flag in flags):
                reasons[reason] = reasons.get(reason, 0) + 1
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
        ids = sorted(suite.review)
        top = ", ".join(ids[:WORST_CASES]) + (f", ... ({len(ids) - WORST_CASES} more)" if len(ids) > WORST_CASES and not verbose else "")
        lines.append(f"  review: {len(ids)} case(s) flagged for a person ({counts}): {', '.join(ids) if verbose else top}")
        if verbose:
            lines += [f"    {case_id}: {flag.reason}: {flag.detail}" for case_id in ids for flag in suite.review[case_id]]
    if suite.human_reviews:
        stale = [c for c, r in suite.human_reviews.items() if r.content_hash != suite.content_hashes.get(c)]
        verdicts = ", ".join(f"{v} {n}" for v, n in sorted(_count(r.verdict for c, r in suite.human_reviews.items() if c not in stale).items()))
        lines.append(f"  reviewed by a person: {len(suite.human_reviews) - len(stale)} case(s)" + (f" ({verdicts})" if verdicts else "")
                     + (f"; {len(stale)} review(s) stale (the case changed since): {', '.join(sorted(stale))}" if stale else ""))
    return lines


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
