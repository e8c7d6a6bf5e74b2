"""A compact Markdown summary of a report, for a merge-request comment.

Rendered from the report document (not from live objects), so ``llm-eval merge`` can
write one for merged shards too. GitHub and GitLab both render it: plain pipe tables,
no HTML.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..gate.verdicts import fmt, fmt_money, fmt_p, fmt_signed

__all__ = ["render_markdown"]

_MARK = {"pass": "✅ pass", "fail": "❌ fail", None: "—"}
WORST_CASES = 5


def render_markdown(report: Mapping[str, Any]) -> str:
    verdict = report["verdict"]
    lines = [f"## llm-eval: {verdict.upper()}", ""]
    if not report["complete"]:
        lines += [f"> Incomplete run: {report['run'].get('incomplete_reason')}. No verdict is final.", ""]
    git = report["run"].get("git") or {}
    if git:
        lines += [f"Commit `{git.get('commit', '?')[:12]}` on `{git.get('branch', '?')}`.", ""]
    for suite in report["suites"]:
        lines += _suite(suite)
    return "\n".join(lines).rstrip() + "\n"


def _suite(suite: Mapping[str, Any]) -> list[str]:
    baseline = suite.get("baseline") or {}
    head = f"### `{suite['suite_id']}` {_MARK[suite['verdict']]}"
    facts = [f"dataset `{suite['dataset']}`", f"{suite['cases_run']} cases"]
    if baseline.get("paired_cases"):
        facts.append(f"{baseline['paired_cases']} paired with the baseline")
    elif suite["verdict"] is not None:
        facts.append("no baseline" if not baseline.get("found") else "no cases paired with the baseline")
    if suite["models"]:
        facts.append("model " + ", ".join(f"`{m}`" for m in suite["models"]))
    lines = [head, "", " · ".join(facts), ""]
    if suite["metrics"]:
        lines += ["| metric | baseline | current | change (95% CI) | p | verdict |", "|---|---:|---:|---:|---:|---|"]
        for m in suite["metrics"]:
            change = "" if m["change"] is None else f"{fmt_signed(m['change'])} ({fmt_signed(m['change_ci_low'])} to {fmt_signed(m['change_ci_high'])})"
            p = m["p_adjusted"] if m["p_adjusted"] is not None else m["p_value"]
            p_cell = "insufficient evidence" if m.get("insufficient_evidence") else "" if p is None else fmt_p(p)
            lines.append(f"| {_cell(m['name'])} | {_num(m['baseline_mean'])} | {_num(m['mean'])} | {change} | {p_cell} | {_MARK[m['verdict']]} |")
        lines.append("")
    failures = [reason for m in suite["metrics"] for reason in m["reasons"]]
    failures += [g["message"] for g in suite["usage_gates"] if g["verdict"] == "fail"]
    if baseline.get("error"):
        failures.insert(0, baseline["error"])
    if suite["errors"]:
        failures.append(f"{len(suite['errors'])} case(s) errored: {_ids(suite['errors'])}")
    if suite["failed_cases"]:
        failures.append(f"{len(suite['failed_cases'])} case(s) failed: {_ids(suite['failed_cases'])}")
    if failures:
        lines += ["**What failed**", ""] + [f"- {_cell(f)}" for f in failures] + [""]
    notes = [n for n in suite["notes"] if not n.startswith(tuple(f"{m['name']}:" for m in suite["metrics"]))]
    notes += [f"{m['name']}: insufficient evidence for the regression test ({m['insufficient_evidence']}); "
              "the regression check passes, thresholds still apply"
              for m in suite["metrics"] if m.get("insufficient_evidence")]
    if notes:
        lines += ["**Notes**", ""] + [f"- {_cell(n)}" for n in notes] + [""]
    for m in suite["metrics"]:
        worst = _worst_cases(suite["cases"], m["name"])
        if m["regressed"] or (m["verdict"] == "fail" and worst):
            lines += [f"**Worst regressed cases: {m['name']}**", "", "| case | baseline | current |", "|---|---:|---:|"]
            lines += [f"| `{_cell(case_id)}` | {fmt(before)} | {fmt(after)} |" for case_id, before, after in worst] or ["| (none) | | |"]
            lines.append("")
    usage = suite.get("usage")
    if usage and usage["calls"]:
        lines.append(
            f"Cost ${fmt_money(usage['cost_total'] or 0.0)} (${fmt_money(usage['cost_mean'] or 0.0)}/case) · "
            f"tokens {usage['input_tokens']:,} in / {usage['output_tokens']:,} out · "
            f"latency p50 {_ms(usage['latency_p50_ms'])} / p95 {_ms(usage['latency_p95_ms'])} · "
            f"errors {100 * (usage['error_rate'] or 0):.1f}%"
            + (f" · {usage['cached_calls']} of {usage['calls']} calls from cache" if usage["cached_calls"] else "")
        )
        lines.append("")
    return lines


def _worst_cases(cases: list[Mapping[str, Any]], metric: str) -> list[tuple[str, float, float]]:
    """Cases whose score fell the most against the baseline (repeats averaged)."""
    current: dict[str, list[float]] = {}
    before: dict[str, float] = {}
    for case in cases:
        if metric in case["scores"] and case["baseline_scores"] and metric in case["baseline_scores"]:
            current.setdefault(case["case_id"], []).append(case["scores"][metric])
            before[case["case_id"]] = case["baseline_scores"][metric]
    drops = [(case_id, before[case_id], sum(v) / len(v)) for case_id, v in current.items()]
    drops = [d for d in drops if d[2] < d[1]]
    return sorted(drops, key=lambda d: (d[2] - d[1], d[0]))[:WORST_CASES]


def _num(value: float | None) -> str:
    return "" if value is None else fmt(value)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _ids(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(f"`{i}`" for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
