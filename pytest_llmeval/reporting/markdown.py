"""A compact Markdown summary of a report, for a merge-request comment.

Rendered from the report document (not from live objects), so ``llm-eval merge`` can
write one for merged shards too. GitHub and GitLab both render it: plain pipe tables,
no HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..gate.verdicts import fmt, fmt_money, fmt_p, fmt_signed

__all__ = ["render_markdown"]

_MARK = {"pass": "✅ pass", "fail": "❌ fail", None: "—"}
WORST_CASES = 5
REVIEW_ROWS = 10


def render_markdown(report: Mapping[str, Any]) -> str:
    verdict = report["verdict"]
    lines = [f"## llm-eval: {verdict.upper()}", ""]
    if not report["complete"]:
        lines += [f"> Incomplete run: {report['run'].get('incomplete_reason')}. No verdict is final.", ""]
    compared = report["run"].get("compared_with")
    if compared:
        lines += [f"`{compared['head']}` judged against `{compared['base']}` (its case scores stand in for the baseline).", ""]
    git = report["run"].get("git") or {}
    if git:
        lines += [f"Commit `{git.get('commit', '?')[:12]}` on `{git.get('branch', '?')}`.", ""]
    for suite in report["suites"]:
        lines += _suite(suite)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for suite in report["suites"]:
        if suite.get("variant_of"):
            groups.setdefault(suite["variant_of"], []).append(suite)
    for suite_id, variants in groups.items():
        lines += _variants(suite_id, variants)
    return "\n".join(lines).rstrip() + "\n"


def _variants(suite_id: str, variants: list[Mapping[str, Any]]) -> list[str]:
    """The variants of one suite side by side, then control versus each other variant."""
    spec = variants[0]["variants"] or {}
    lines = [f"### Variants of `{suite_id}` (control `{spec.get('control')}`)", "",
             "| variant | n | metric means (95% CI) | latency mean / p95 | cost per case mean / p95 | tokens in / out per case |",
             "|---|---:|---|---:|---:|---:|"]
    for suite in variants:
        s = suite.get("summary")
        if not s:
            continue
        means = "; ".join(f"{name} {_num(m['mean'])} ({_num(m['ci_low'])}-{_num(m['ci_high'])})" for name, m in s["metrics"].items())
        cost = "n/a" if s["cost_mean"] is None else f"${fmt_money(s['cost_mean'])} / ${fmt_money(s['cost_p95'])}"
        tokens = "n/a" if s["output_tokens_mean"] is None else f"{s['input_tokens_mean']:.0f} / {s['output_tokens_mean']:.0f}"
        lines.append(f"| `{_cell(s['variant'])}` | {s['n']} | {_cell(means)} | {_ms(s['latency_mean_ms'])} / {_ms(s['latency_p95_ms'])} "
                     f"| {cost} | {tokens} |")
    compared = [suite["comparison"] for suite in variants if suite.get("comparison")]
    if compared:
        lines += ["", "| comparison | metric | change (95% CI) | Holm p | verdict |", "|---|---|---:|---:|---|"]
        for c in compared:
            for m in c["metrics"]:
                verdict = m["verdict"] if m["verdict"] != "no detectable difference" else (
                    f"no detectable difference (MDE {_num(m['mde'])} at n={m['n']}; "
                    + (f"{m['cases_needed']} paired cases needed to detect a change of {m['min_effect']:g})" if m["cases_needed"] else "too few pairs)"))
                change = f"{fmt_signed(m['change'])} ({fmt_signed(m['change_ci_low'])} to {fmt_signed(m['change_ci_high'])})"
                lines.append(f"| {_cell(c['variant'])} vs {_cell(c['control'])} | {_cell(m['name'])} | {change} | "
                             f"{'' if m['p_adjusted'] is None else fmt_p(m['p_adjusted'])} | {verdict} |")
        lines.append("")
        for c in compared:
            beside = [r["label"] for r in c["resources"] if r["verdict"] in ("lower", "higher")]
            if beside:
                lines.append(f"- `{_cell(c['variant'])}` vs `{_cell(c['control'])}`: {', '.join(beside)}")
            lines += [f"- {'❌' if g['verdict'] == 'fail' else '✅'} {_cell(g['message'])}" for g in c["gates"]]
    return lines + [""]


def _suite(suite: Mapping[str, Any]) -> list[str]:
    baseline = suite.get("baseline") or {}
    head = f"### `{suite['suite_id']}` {_MARK[suite['verdict']]}"
    partial = suite["verdict"] is not None and suite["cases_run"] < suite["n_rows"]
    cases = f"partial: {suite['cases_run']} of {suite['n_rows']} cases" if partial else f"{suite['cases_run']} cases"
    facts = [f"dataset `{suite['dataset']}`", cases]
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
    unjudged = [g["message"] for g in suite["usage_gates"] if g["verdict"] == "not judged"]
    if baseline.get("error"):
        failures.insert(0, baseline["error"])
    if suite["errors"]:
        failures.append(f"{len(suite['errors'])} case(s) errored: {_ids(suite['errors'])}")
    if suite["failed_cases"]:
        failures.append(f"{len(suite['failed_cases'])} case(s) failed: {_ids(suite['failed_cases'])}")
    if failures:
        lines += ["**What failed**", ""] + [f"- {_cell(f)}" for f in failures] + [""]
    if unjudged:
        lines += ["**Not judged**", ""] + [f"- {_cell(f)}" for f in unjudged] + [""]
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
    lines += _review(suite.get("review") or [])
    usage = suite.get("usage")
    if usage and usage["calls"]:
        lines.append(
            _cost(usage) + " · "
            f"tokens {usage['input_tokens']:,} in / {usage['output_tokens']:,} out · "
            f"latency p50 {_ms(usage['latency_p50_ms'])} / p95 {_ms(usage['latency_p95_ms'])} · "
            f"errors {100 * (usage['error_rate'] or 0):.1f}%"
            + (f" · {usage['cached_calls']} of {usage['calls']} calls from cache" if usage["cached_calls"] else "")
        )
        lines.append("")
    return lines


def _cost(usage: Mapping[str, Any]) -> str:
    """``Cost $x ($y/case)``; ``Cost unknown (N calls unpriced)`` when no paid call has a
    known cost; ``Cost at least ...`` when some have none."""
    unpriced, unknown = usage.get("unpriced_calls", 0), usage.get("usage_unknown_calls", 0)
    why = ", ".join(part for part in (f"{unpriced} call{'s' if unpriced != 1 else ''} unpriced" if unpriced else "",
                                      f"usage unknown for {unknown} of {usage['calls']} calls" if unknown else "") if part)
    if unpriced + unknown and unpriced + unknown >= usage["calls"] - usage["cached_calls"]:
        return f"Cost unknown ({why})"
    cost = f"${fmt_money(usage['cost_total'] or 0.0)} (${fmt_money(usage['cost_mean'] or 0.0)}/case)"
    return f"Cost at least {cost}, {why}" if why else f"Cost {cost}"


def _review(entries: list[Mapping[str, Any]]) -> list[str]:
    """Cases flagged for a person (count, reasons, the first few) and reviewers' decisions."""
    flagged = [e for e in entries if e["flags"]]
    reviewed = [e for e in entries if e["human"]]
    if not flagged and not reviewed:
        return []
    counts: dict[str, int] = {}
    for entry in flagged:
        for reason in dict.fromkeys(f["reason"] for f in entry["flags"]):
            counts[reason] = counts.get(reason, 0) + 1
    lines = [f"**Flagged for review: {len(flagged)} case(s)**" + (f" ({', '.join(f'{r} {n}' for r, n in sorted(counts.items()))})" if counts else "")
             + (f" · {len(reviewed)} reviewed by a person" if reviewed else ""), ""]
    lines += ["| case | why | reviewed |", "|---|---|---|"]
    for entry in (flagged + [e for e in reviewed if not e["flags"]])[:REVIEW_ROWS]:
        human = entry["human"]
        verdict = "" if human is None else f"{human['verdict']}{'' if human['applies'] else ' (stale)'}: {human['note']}"
        why = "; ".join(f"{f['reason']}: {f['detail']}" for f in entry["flags"])
        lines.append(f"| `{_cell(entry['case_id'])}` | {_cell(why)} | {_cell(verdict)} |")
    if len(entries) > REVIEW_ROWS:
        lines.append(f"| … | {len(entries) - REVIEW_ROWS} more in the JSON/HTML report | |")
    return lines + [""]


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
