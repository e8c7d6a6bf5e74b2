"""The HTML report: one self-contained page rendered from a JSON report document.

The page needs no network when it is viewed: styles, the script and the data are inline,
and the charts are SVG drawn here on the server side. :func:`build_page` turns the
validated report document (see :mod:`pytest_llmeval.reporting.report`) once into small
view dataclasses; the Jinja2 templates in ``templates/`` only lay those out, with
autoescaping on. The per-case table is rendered by the page's script from one embedded
JSON block, so each text is in the file once (the row shows an excerpt, the expanded
row the full text and a word diff against the baseline's output). A report with A/B
variants or routed models gets "Variants" and "Routes" tabs, built by
:mod:`pytest_llmeval.reporting.html_variants`; a run recorded in the run history gets a
"Trends" tab (:mod:`pytest_llmeval.reporting.html_trends`); without them the page has no tabs.

Jinja2 is an optional dependency (``pip install pytest-llmeval[html]``), imported by
:func:`render_html` only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import LLMEvalError
from ..fileio import write_atomic
from ..gate.verdicts import fmt, fmt_ci, fmt_money, fmt_p, fmt_signed
from .html_trends import TrendsView
from .html_variants import VariantGroup, variant_groups

__all__ = ["INSTALL_HINT", "HtmlPage", "build_page", "case_rows", "histogram", "page_assets", "render_html", "render_template",
           "require_jinja2", "write_html"]

INSTALL_HINT = "the HTML report needs Jinja2: pip install 'pytest-llmeval[html]'"
_TEXT_CHARS = 4000  # inputs/expected shown per case (outputs are already cut by the report)
_CHART_W, _CHART_H, _PAD = 300, 120, 22


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int  # 0: current, 1: baseline
    title: str


@dataclass(frozen=True)
class Chart:
    """A histogram as SVG geometry (viewBox ``0 0 _CHART_W _CHART_H+_PAD``)."""

    title: str
    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, str], ...]  # (x, label) under the axis
    legend: tuple[str, ...]  # series names, in series order
    note: str = ""
    width: int = _CHART_W
    height: int = _CHART_H
    pad: int = _PAD


@dataclass(frozen=True)
class MetricRow:
    name: str
    mean: str
    ci: str
    threshold: str
    baseline: str
    change: str
    p: str
    test: str
    mde: str
    verdict: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class SuiteView:
    anchor: str
    suite_id: str
    dataset: str
    verdict: str  # pass, fail, or "not judged"
    facts: tuple[str, ...]
    metrics: tuple[MetricRow, ...]
    usage_gates: tuple[tuple[str, str, str], ...]  # (name, verdict, message)
    notes: tuple[str, ...]
    charts: tuple[Chart, ...]
    review_count: int


@dataclass(frozen=True)
class HtmlPage:
    title: str
    verdict: str
    complete: bool
    incomplete_reason: str | None
    subtitle: str
    git: str
    totals: tuple[tuple[str, str], ...]  # (label, value)
    prompt_changes: tuple[str, ...]
    suites: tuple[SuiteView, ...]
    cases_json: str  # the per-case table's data, safe to inline in <script>
    case_count: int
    metrics: tuple[str, ...]
    review_count: int
    compared_with: str | None = None
    variant_groups: tuple[VariantGroup, ...] = ()  # the Variants tab (A/B variants), empty: no tab
    route_groups: tuple[VariantGroup, ...] = ()  # the Routes tab (--llm-eval-routes), empty: no tab
    trends: TrendsView | None = None  # the Trends tab (a run recorded with --llm-eval-history), None: no tab

    @property
    def tabs(self) -> tuple[tuple[str, str, str], ...]:
        """(panel id, label, count) of each tab; none when the report has only suites.
        The Trends tab counts its charts."""
        extra = [("variants", "Variants", self.variant_groups), ("routes", "Routes", self.route_groups)]
        tabs = [(key, label, str(sum(len(g.variants) for g in groups))) for key, label, groups in extra if groups]
        if self.trends is not None:
            tabs.append(("trends", "Trends", str(len(self.trends.charts))))
        return (("overview", "Suites and cases", str(self.case_count)), *tabs) if tabs else ()


def build_page(doc: Mapping[str, Any], *, title: str | None = None, compared_with: str | None = None,
               trends: TrendsView | None = None) -> HtmlPage:
    """The view of a validated report document (``compared_with``: the name of the report
    a ``llm-eval compare`` page judged against, shown in the header; ``trends``: the run
    history's trends of the run's suites, shown in a Trends tab)."""
    run = doc["run"]
    suites = doc["suites"]
    rows = case_rows(doc)
    groups = variant_groups(suites)
    git = run.get("git") or {}
    git_text = " on ".join(part for part in (git.get("commit", "")[:12], git.get("branch", "")) if part) or "not a git checkout"
    return HtmlPage(
        title=title or f"llm-eval: {doc['verdict'].upper()}",
        verdict=doc["verdict"],
        complete=doc["complete"],
        incomplete_reason=run.get("incomplete_reason"),
        subtitle=f"started {run['started_at']}, finished {run['finished_at']}",
        git=git_text,
        totals=_totals(suites, rows),
        prompt_changes=tuple(_prompt_changes(suites)),
        suites=tuple(_suite_view(i, suite, rows) for i, suite in enumerate(suites)),
        cases_json=_script_json({"suites": [s["suite_id"] for s in suites], "cases": [_compact(row) for row in rows]}),
        case_count=len(rows),
        metrics=tuple(sorted({m for row in rows for m in row["scores"]})),
        review_count=sum(1 for row in rows if row["flags"]),
        compared_with=compared_with,
        variant_groups=tuple(g for g in groups if not g.routes),
        route_groups=tuple(g for g in groups if g.routes),
        trends=trends,
    )


# -- per-case rows ---------------------------------------------------------------------

_RANK = {"regressed": 0, "error": 1, "failed": 2, "review": 3, "improved": 4, "same": 5, "new": 6}


def case_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (suite, case id), repeats averaged, sorted regressed first (largest drop
    first), then errored, failed, flagged for review, improved, unchanged and new cases.

    Each row: ``suite`` (index), ``id``, ``hash``, ``status``, ``delta`` (the most
    negative score change against the baseline, None without one), ``scores``,
    ``baseline`` (scores), ``outputs`` (one per repeat), ``baseline_output``, ``inputs``,
    ``same_output`` (the first output equals the baseline's), ``expected``, ``reasons``, ``error``, ``repeats``, ``calls``, ``retries``,
    ``latency_ms``, ``cost``, ``flags`` (reason, detail) and ``review`` (a human review).
    """
    rows = []
    for index, suite in enumerate(doc["suites"]):
        grouped: dict[str, list[Mapping[str, Any]]] = {}
        for case in suite["cases"]:
            grouped.setdefault(case["case_id"], []).append(case)
        review = {entry["case_id"]: entry for entry in suite.get("review") or []}
        for case_id, entries in grouped.items():
            rows.append(_case_row(index, case_id, sorted(entries, key=lambda c: c["repeat"]), review.get(case_id)))
    rows.sort(key=lambda r: (_RANK[r["status"]], r["delta"] if r["delta"] is not None else 0.0, r["suite"], r["id"]))
    return rows


def _case_row(suite: int, case_id: str, entries: list[Mapping[str, Any]], review: Mapping[str, Any] | None) -> dict[str, Any]:
    first = entries[0]
    values: dict[str, list[float]] = {}
    for entry in entries:
        for metric, value in entry["scores"].items():
            values.setdefault(metric, []).append(value)
    scores = {m: sum(v) / len(v) for m, v in sorted(values.items())}
    baseline = first.get("baseline_scores")
    deltas = [scores[m] - baseline[m] for m in scores if baseline and m in baseline]
    delta = min(deltas) if deltas else None
    outcomes = {e["outcome"] for e in entries}
    flags = list(review["flags"]) if review else []
    if delta is not None and delta < -1e-9:
        status = "regressed"
    elif "error" in outcomes:
        status = "error"
    elif "failed" in outcomes:
        status = "failed"
    elif flags:
        status = "review"
    elif delta is not None and max(deltas) > 1e-9:
        status = "improved"
    else:
        status = "same" if baseline is not None else "new"
    usage = [e.get("usage") or {} for e in entries]
    calls = sum(u.get(kind, {}).get("calls", 0) for u in usage for kind in ("app", "judge"))
    retries = sum(u.get(kind, {}).get("retries", 0) for u in usage for kind in ("app", "judge"))
    cost = sum(u.get(kind, {}).get("cost", 0.0) for u in usage for kind in ("app", "judge"))
    latencies = [e["latency_ms"] for e in entries if e.get("latency_ms") is not None]
    return {
        "suite": suite,
        "id": case_id,
        "hash": first["content_hash"],
        "status": status,
        "delta": delta,
        "scores": scores,
        "baseline": dict(baseline) if baseline else None,
        "outputs": [e.get("output") for e in entries],
        # an unchanged output is sent once (the page says it is the baseline's too)
        "baseline_output": None if first.get("baseline_output") == first.get("output") else first.get("baseline_output"),
        "same_output": first.get("baseline_output") is not None and first.get("baseline_output") == first.get("output"),
        "inputs": _clip(first.get("inputs")),
        "expected": _clip(first.get("expected")),
        "reasons": {m: r for e in entries for m, r in (e.get("reasons") or {}).items()},
        "error": next((e["error"] for e in entries if e.get("error")), None),
        "repeats": len(entries),
        "calls": calls,
        "retries": retries,
        "latency_ms": sum(latencies) / len(latencies) if latencies else None,
        "cost": cost if calls else None,
        "flags": flags,
        "review": review["human"] if review else None,
    }


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= _TEXT_CHARS:
        return text
    return text[:_TEXT_CHARS] + f"... [{len(text) - _TEXT_CHARS} more characters]"


_DIGITS = {"delta": 6, "latency_ms": 1, "cost": 10}  # scores: 6, the precision baselines store them at


def _compact(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row for the page's data: without its empty fields (None, [], {}), which the
    script reads as absent, and numbers no more precise than the page can use (the
    digits of a float are most of a case's bytes once outputs are short)."""
    compact = {key: value for key, value in row.items() if value is not None and value != [] and value != {} and value is not False}
    for key, digits in _DIGITS.items():
        if key in compact:
            compact[key] = round(compact[key], digits)
    for key in ("scores", "baseline"):
        if key in compact:
            compact[key] = {metric: round(value, 6) for metric, value in compact[key].items()}
    return compact


def _script_json(data: Any) -> str:
    """JSON that can sit inside ``<script type="application/json">``: no ``<``, ``>`` or
    ``&`` that could close the element or start markup."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


# -- header ----------------------------------------------------------------------------

def _totals(suites: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    usages = [s["usage"] for s in suites if s.get("usage")]
    latencies = sorted(r["latency_ms"] for r in rows if r["latency_ms"] is not None)
    errors = sum(len(s["errors"]) for s in suites)
    totals = [("suites", str(len(suites))), ("cases", str(len(rows))), ("errors", str(errors))]
    totals.append(("failed cases", str(sum(len(s["failed_cases"]) for s in suites))))
    if any(u["calls"] for u in usages):
        unknown = sum(u.get("unpriced_calls", 0) + u.get("usage_unknown_calls", 0) for u in usages)
        paid = sum(u["calls"] - u["cached_calls"] for u in usages)
        cost = "$" + fmt_money(sum(u["cost_total"] or 0.0 for u in usages))
        totals.append(("cost", f"unknown ({unknown} calls unpriced or without usage)" if unknown and unknown >= paid
                       else f"at least {cost} ({unknown} calls unpriced or without usage)" if unknown else cost))
        totals.append(("tokens in / out", f"{sum(u['input_tokens'] for u in usages):,} / {sum(u['output_tokens'] for u in usages):,}"))
    if latencies:
        totals.append(("latency p50 / p95", f"{_ms(_quantile(latencies, 0.5))} / {_ms(_quantile(latencies, 0.95))} ms"))
    return tuple(totals)


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _prompt_changes(suites: Sequence[Mapping[str, Any]]) -> list[str]:
    changes = []
    for suite in suites:
        before = (suite.get("baseline") or {}).get("prompts") or {}
        after = suite["prompts"]
        if not suite.get("baseline") or not suite["baseline"].get("found"):
            changes += [f"{name} {', '.join(v)} (no baseline)" for name, v in sorted(after.items())]
            continue
        for name in sorted(set(before) | set(after)):
            old, new = before.get(name, []), after.get(name, [])
            if old != new:
                changes.append(f"{name} {', '.join(old) or '(none)'} → {', '.join(new) or '(none)'}")
            else:
                changes.append(f"{name} {', '.join(new)} (unchanged)")
    return list(dict.fromkeys(changes))


# -- suites ----------------------------------------------------------------------------

def _suite_view(index: int, suite: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> SuiteView:
    baseline = suite.get("baseline") or {}
    facts = [f"dataset {suite['dataset']}", f"{suite['cases_run']} case(s)"]
    if suite["repeats"] > 1:
        facts.append(f"x {suite['repeats']} repeats")
    if baseline.get("paired_cases"):
        facts.append(f"{baseline['paired_cases']} paired with the baseline")
    elif suite["verdict"] is not None:
        facts.append("no baseline" if not baseline.get("found") else "no case paired with the baseline")
    if suite["models"]:
        facts.append("models " + ", ".join(suite["models"]))
    mine = [r for r in rows if r["suite"] == index]
    return SuiteView(
        anchor=f"suite-{index}",
        suite_id=suite["suite_id"],
        dataset=suite["dataset"],
        verdict=suite["verdict"] or "not judged",
        facts=tuple(facts),
        metrics=tuple(_metric_row(m) for m in suite["metrics"]),
        usage_gates=tuple((g["name"], g["verdict"], g["message"]) for g in suite["usage_gates"]),
        notes=tuple(suite["notes"]),
        charts=tuple(_charts(suite, mine)),
        review_count=sum(1 for r in mine if r["flags"]),
    )


def _metric_row(m: Mapping[str, Any]) -> MetricRow:
    compared = m["change"] is not None
    p = m["p_adjusted"] if m["p_adjusted"] is not None else m["p_value"]
    return MetricRow(
        name=m["name"],
        mean=fmt(m["mean"]),
        ci=fmt_ci(_nan(m["ci_low"]), _nan(m["ci_high"])),
        threshold="" if m["threshold"] is None else f">= {m['threshold']:g}",
        baseline=fmt(m["baseline_mean"]) if compared else "",
        change=f"{fmt_signed(m['change'])} ({fmt_signed(m['change_ci_low'])}..{fmt_signed(m['change_ci_high'])})" if compared else "",
        p=fmt_p(p) if compared else "",
        test=m["test"] or "",
        mde=fmt(m["mde"]) if compared else "",
        verdict=m["verdict"],
        reasons=tuple(m["reasons"]),
    )


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _charts(suite: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[Chart]:
    charts = []
    for metric in sorted({m for r in rows for m in r["scores"]}):
        current = [r["scores"][metric] for r in rows if metric in r["scores"]]
        before = [r["baseline"][metric] for r in rows if r["baseline"] and metric in r["baseline"]]
        series = [current, before] if before else [current]
        charts.append(histogram(f"{metric}: score distribution", series, 0.0, 1.0, 10,
                                legend=("current", "baseline")[: len(series)]))
        changes = [r["scores"][metric] - r["baseline"][metric] for r in rows
                   if r["baseline"] and metric in r["baseline"] and metric in r["scores"]]
        if changes:
            down, up = sum(1 for c in changes if c < -1e-9), sum(1 for c in changes if c > 1e-9)
            charts.append(histogram(f"{metric}: paired change per case", [changes], -1.0, 1.0, 20, legend=("current - baseline",),
                                    note=f"{down} down, {up} up, {len(changes) - down - up} unchanged of {len(changes)} paired"))
    costs = [r["cost"] for r in rows if r["cost"] is not None]
    if costs and max(costs) > 0:
        charts.append(histogram("cost per case (USD)", [costs], 0.0, max(costs), 12, legend=("cases",), money=True))
    latencies = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
    if latencies:
        charts.append(histogram("latency per case (ms)", [latencies], 0.0, max(max(latencies), 1e-9), 12, legend=("cases",)))
    return charts


def histogram(title: str, series: Sequence[Sequence[float]], low: float, high: float, bins: int, *,
              legend: Sequence[str], note: str = "", money: bool = False) -> Chart:
    """Counts of each series in ``bins`` equal bins over [low, high] (values outside are
    put in the end bins), as bars side by side within each bin."""
    width = (high - low) / bins if high > low else 1.0
    counts = []
    for values in series:
        row = [0] * bins
        for value in values:
            row[min(bins - 1, max(0, int((value - low) / width)))] += 1
        counts.append(row)
    top = max((c for row in counts for c in row), default=0) or 1
    slot = _CHART_W / bins
    bar_w = (slot - 2) / len(series)
    bars = []
    for s, row in enumerate(counts):
        for b, count in enumerate(row):
            if count:
                h = (_CHART_H - 14) * count / top
                lo = low + b * width
                label = f"{_tick(lo, money)} to {_tick(lo + width, money)}: {count} ({legend[s]})"
                bars.append(Bar(round(b * slot + 1 + s * bar_w, 2), round(_CHART_H - h, 2), round(bar_w, 2), round(h, 2), s, label))
    ticks = tuple((round(i * _CHART_W / 4, 1), _tick(low + i * (high - low) / 4, money)) for i in range(5))
    return Chart(title, tuple(bars), ticks, tuple(legend), note or f"tallest bar: {top} case(s)")


def _tick(value: float, money: bool) -> str:
    if money:
        return fmt_money(value)
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2g}"


# -- rendering -------------------------------------------------------------------------

def require_jinja2() -> None:
    """Raise LLMEvalError naming the extra when Jinja2 is not installed."""
    try:
        import jinja2  # noqa: F401
    except ImportError:
        raise LLMEvalError(INSTALL_HINT) from None


def render_template(name: str, **context: Any) -> str:
    """A template of ``templates/`` rendered with Jinja2 (autoescaped)."""
    require_jinja2()
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_llmeval.reporting", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template(name).render(**context)


def page_assets() -> dict[str, str]:
    """The page's style and script (``report.css``, ``report.js``), to inline."""
    folder = resources.files("pytest_llmeval.reporting").joinpath("templates")
    # indentation is for reading the sources, not the page (neither file has multi-line strings)
    return {name: re.sub(r"(?m)^[ \t]+", "", folder.joinpath(name).read_text(encoding="utf-8")) for name in ("report.css", "report.js")}


def render_html(page: HtmlPage) -> str:
    """The page as one HTML document, its style and script inline."""
    assets = page_assets()
    return render_template("report.html.j2", page=page, css=assets["report.css"], script=assets["report.js"])


def write_html(path: Path, doc: Mapping[str, Any], **kwargs: Any) -> None:
    """Render a report document and write it atomically."""
    write_atomic(Path(path), render_html(build_page(doc, **kwargs)))
