"""The HTML report's "Variants" and "Routes" tabs: view dataclasses built from the variant
entries of a validated report document, and their interval plots (inline SVG geometry).

A suite with A/B variants has one report entry per variant (``variant_of`` names the
marked test function; see docs/variants.md). :func:`variant_groups` gathers them per
suite into a :class:`VariantGroup`: per variant its n, mean and 95% CI per metric,
latency p50/p95, cost per case mean/p95 and tokens (the entry's ``summary``); per
variant against the control the paired difference with its CI, p, Holm p, verdict, MDE
and cases needed (``comparison.metrics``), the cost/latency/token differences
(``comparison.resources``) and the gates that named the pair (``comparison.gates``).
A group whose ``variants.routes`` is set (``--llm-eval-routes``) goes to the Routes tab,
which adds per route its path in the config, model, traffic share and the
provider-parity verdicts. The numbers are the report's; nothing is recomputed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..gate.verdicts import fmt, fmt_ci, fmt_money, fmt_p, fmt_signed

__all__ = ["IntervalChart", "PairRow", "ResourceRow", "RouteRow", "VariantGroup", "VariantRow", "interval_chart",
           "variant_groups"]

_LABEL_W, _PLOT_W, _ROW_H, _AXIS_H = 150, 300, 18, 24
_RESOURCE_NAMES = {"cost": "cost per case", "latency_ms": "latency", "output_tokens": "output tokens", "input_tokens": "input tokens"}


@dataclass(frozen=True)
class Interval:
    label: str
    y: float
    low: float | None  # x of the CI's ends (None: no interval, the point only)
    high: float | None
    mid: float
    tone: str  # css class: "up", "down" or "muted"
    title: str


@dataclass(frozen=True)
class IntervalChart:
    """Points with 95% CI whiskers, one row each (a forest plot), as SVG geometry:
    labels in ``[0, label_w)``, the plot in ``[label_w, label_w + plot_w)``."""

    title: str
    rows: tuple[Interval, ...]
    ticks: tuple[tuple[float, str], ...]  # (x, label) under the axis
    refs: tuple[tuple[float, str, str], ...]  # vertical reference lines: (x, css class, label)
    note: str
    label_w: int = _LABEL_W
    plot_w: int = _PLOT_W

    @property
    def width(self) -> int:
        return self.label_w + self.plot_w

    @property
    def height(self) -> int:
        return len(self.rows) * _ROW_H + 4

    @property
    def total_height(self) -> int:
        return self.height + _AXIS_H


@dataclass(frozen=True)
class VariantRow:
    name: str
    anchor: str  # the variant's suite section on the overview tab
    verdict: str
    control: bool
    settings: str
    n: str
    means: tuple[str, ...]  # per group metric: "0.868 (0.83-0.90)"
    latency: str  # "p50 / p95 ms"
    cost: str  # "$mean / $p95" per case
    tokens: str  # "in / out" per case


@dataclass(frozen=True)
class PairRow:
    pair: str
    metric: str
    control_mean: str
    variant_mean: str
    change: str  # "-0.060 (-0.093..-0.027)"
    p: str
    p_holm: str
    test: str
    verdict: str  # better, worse, no detectable difference
    mde: str
    cases_needed: str
    message: str


@dataclass(frozen=True)
class ResourceRow:
    pair: str
    name: str
    control: str
    variant: str
    change: str  # "-37% (-40%..-35%)"
    verdict: str  # lower, higher, no detectable difference, unknown
    label: str


@dataclass(frozen=True)
class RouteRow:
    variant: str
    anchor: str
    route: str  # where the config routes it: routing.primary, routing.routes[0], ...
    model: str
    share: str
    fallback: bool
    control: bool
    verdict: str
    parity: tuple[tuple[str, str, str], ...]  # (metric, verdict, message)


@dataclass(frozen=True)
class VariantGroup:
    anchor: str
    suite_id: str
    control: str
    baseline_variant: str
    min_effect: str
    margins: str  # non-inferiority or parity margins, said once
    verdict: str  # fail when any variant's entry failed
    metrics: tuple[str, ...]
    variants: tuple[VariantRow, ...]
    pairs: tuple[PairRow, ...]
    resources: tuple[ResourceRow, ...]
    gates: tuple[tuple[str, str], ...]  # (verdict, message) of non-inferiority, "applied" (and, without routes, parity) gates
    routes: tuple[RouteRow, ...]  # empty for A/B variants
    notes: tuple[str, ...]
    charts: tuple[IntervalChart, ...]


def variant_groups(suites: Sequence[Mapping[str, Any]]) -> list[VariantGroup]:
    """One group per marked suite that ran variants (routes included), in report order.
    A suite's entry ``i`` is linked as ``#suite-i`` (the overview's anchors)."""
    grouped: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for index, suite in enumerate(suites):
        if suite.get("variant_of"):
            grouped.setdefault(suite["variant_of"], []).append((index, suite))
    return [_group(number, suite_id, entries) for number, (suite_id, entries) in enumerate(grouped.items())]


def _group(number: int, suite_id: str, entries: list[tuple[int, Mapping[str, Any]]]) -> VariantGroup:
    spec = entries[0][1].get("variants") or {}
    control = spec.get("control", "")
    routes = spec.get("routes") or {}
    metrics = tuple(dict.fromkeys(m for _, s in entries for m in ((s.get("summary") or {}).get("metrics") or {})))
    comparisons = [s["comparison"] for _, s in entries if s.get("comparison")]
    settings = {v["name"]: v["settings"] for v in spec.get("variants", [])}
    margins = [f"non-inferiority {m} within {v:g}" for m, v in sorted((spec.get("non_inferiority") or {}).items())]
    if routes and spec.get("parity_margin") is not None:
        margins.append(f"parity margin {spec['parity_margin']:g}")
    ran = {s["variant"] for _, s in entries}
    notes = []
    missing = [name for name in settings if name not in ran]
    if missing:  # as the terminal says it (core.run._compare)
        notes.append(f"variant(s) {', '.join(missing)} did not run (deselected?): not compared")
    if control not in ran:
        notes.append(f"the control variant {control} did not run: no variant was compared")
    return VariantGroup(
        anchor=f"{'routes' if routes else 'variants'}-{number}",
        suite_id=suite_id,
        control=control,
        baseline_variant=spec.get("baseline_variant", control),
        min_effect="" if spec.get("min_effect") is None else f"{spec['min_effect']:g}",
        margins=", ".join(margins),
        verdict="fail" if any(s["verdict"] == "fail" for _, s in entries) else
                "pass" if all(s["verdict"] == "pass" for _, s in entries) else "not judged",
        metrics=metrics,
        variants=tuple(_variant_row(i, s, metrics, control, settings.get(s["variant"], {})) for i, s in entries),
        pairs=tuple(_pair_row(c, m) for c in comparisons for m in c["metrics"]),
        resources=tuple(_resource_row(c, r) for c in comparisons for r in c["resources"]),
        # parity verdicts sit in the routes table, beside their route
        gates=tuple((g["verdict"], g["message"]) for c in comparisons for g in c["gates"] if not (routes and g["kind"] == "parity")),
        routes=tuple(_route_row(i, s, routes) for i, s in entries if s["variant"] in routes),
        notes=tuple(notes),
        charts=tuple(_charts(entries, comparisons, metrics, spec)),
    )


def _variant_row(index: int, suite: Mapping[str, Any], metrics: Sequence[str], control: str,
                 settings: Mapping[str, Any]) -> VariantRow:
    s = suite.get("summary") or {}
    means = []
    for metric in metrics:
        m = (s.get("metrics") or {}).get(metric)
        means.append("n/a" if m is None or m["mean"] is None else f"{fmt(m['mean'])} ({fmt_ci(_num(m['ci_low']), _num(m['ci_high']))})")
    return VariantRow(
        name=suite["variant"],
        anchor=f"suite-{index}",
        verdict=suite["verdict"] or "not judged",
        control=suite["variant"] == control,
        settings=", ".join(f"{k}={v}" for k, v in sorted(settings.items())),
        n=str(s["n"]) if s else "n/a",
        means=tuple(means),
        latency=f"{_ms(s.get('latency_p50_ms'))} / {_ms(s.get('latency_p95_ms'))} ms" if s.get("latency_p50_ms") is not None else "n/a",
        cost=f"${fmt_money(s['cost_mean'])} / ${fmt_money(s['cost_p95'])}" if s.get("cost_mean") is not None else "n/a",
        tokens=(f"{s['input_tokens_mean']:.0f} / {s['output_tokens_mean']:.0f}"
                if s.get("input_tokens_mean") is not None and s.get("output_tokens_mean") is not None else "n/a"),
    )


def _pair_row(c: Mapping[str, Any], m: Mapping[str, Any]) -> PairRow:
    return PairRow(
        pair=f"{c['variant']} vs {c['control']}",
        metric=m["name"],
        control_mean=fmt(m["control_mean"]),
        variant_mean=fmt(m["variant_mean"]),
        change=f"{fmt_signed(m['change'])} ({fmt_signed(m['change_ci_low'])}..{fmt_signed(m['change_ci_high'])})",
        p=fmt_p(m["p_value"]),
        p_holm=fmt_p(m["p_adjusted"]),
        test=m["test"],
        verdict=m["verdict"],
        mde=fmt(m["mde"]),
        cases_needed="n/a" if m["cases_needed"] is None else f"{m['cases_needed']:,} for {m['min_effect']:g}",
        message=m["message"],
    )


def _resource_row(c: Mapping[str, Any], r: Mapping[str, Any]) -> ResourceRow:
    name = r["name"]
    if r["change"] is None:
        change = "n/a"
    else:
        low, high = _relative(r, "change_ci_low"), _relative(r, "change_ci_high")
        interval = f" ({_pct(low)}..{_pct(high)})" if low is not None and high is not None else ""
        change = f"{_pct(r['relative'])}{interval}" if r["relative"] is not None else f"{_resource(name, r['change'], signed=True)}"
    return ResourceRow(
        pair=f"{c['variant']} vs {c['control']}",
        name=_RESOURCE_NAMES[name],
        control=_resource(name, r["control_mean"]),
        variant=_resource(name, r["variant_mean"]),
        change=change,
        verdict=r["verdict"],
        label=r["label"],
    )


def _route_row(index: int, suite: Mapping[str, Any], routes: Mapping[str, Mapping[str, Any]]) -> RouteRow:
    route = routes[suite["variant"]]
    gates = (suite.get("comparison") or {}).get("gates") or []
    return RouteRow(
        variant=suite["variant"],
        anchor=f"suite-{index}",
        route=route["route"],
        model=route["model"],
        share="failover" if route["fallback"] and not route["share"] else f"{100 * route['share']:.0f}%",
        fallback=route["fallback"],
        control=suite.get("comparison") is None,
        verdict=suite["verdict"] or "not judged",
        parity=tuple((g["metric"], g["verdict"], g["message"]) for g in gates if g["kind"] == "parity"),
    )


def _num(value: float | None) -> float:
    return float("nan") if value is None else value


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.0f}%"


def _relative(r: Mapping[str, Any], key: str) -> float | None:
    base = r["control_mean"]
    return None if r[key] is None or not base else r[key] / base


def _resource(name: str, value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if name == "cost":
        return ("-" if value < 0 else "+" if signed else "") + "$" + fmt_money(abs(value))
    if name == "latency_ms":
        return f"{value:+.0f} ms" if signed else f"{_ms(value)} ms"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


# -- plots -----------------------------------------------------------------------------

def _charts(entries: Sequence[tuple[int, Mapping[str, Any]]], comparisons: Sequence[Mapping[str, Any]],
            metrics: Sequence[str], spec: Mapping[str, Any]) -> list[IntervalChart]:
    charts = []
    for metric in metrics:
        points = []
        for _, suite in entries:
            m = ((suite.get("summary") or {}).get("metrics") or {}).get(metric)
            if m and m["mean"] is not None:
                points.append((suite["variant"], m["ci_low"], m["mean"], m["ci_high"], "muted"))
        if points:
            charts.append(interval_chart(f"{metric}: mean and 95% CI per variant", points, 0.0, 1.0,
                                         note=f"{len(points)} variant(s)"))
        changes = []
        for c in comparisons:
            m = next((m for m in c["metrics"] if m["name"] == metric and m["change"] is not None), None)
            if m is not None:
                tone = "up" if m["verdict"] == "better" else "down" if m["verdict"] == "worse" else "muted"
                changes.append((f"{c['variant']} vs {c['control']}", m["change_ci_low"], m["change"], m["change_ci_high"], tone))
        if changes:
            refs: list[tuple[float, str, str]] = []
            if spec.get("routes") and spec.get("parity_margin") is not None:
                refs.append((-spec["parity_margin"], "margin", f"parity margin -{spec['parity_margin']:g}"))
            elif spec.get("min_effect"):
                refs += [(-spec["min_effect"], "effect", f"min effect ±{spec['min_effect']:g}"), (spec["min_effect"], "effect", "")]
            margin = (spec.get("non_inferiority") or {}).get(metric)
            if margin is not None:
                refs.append((-margin, "margin", f"non-inferiority -{margin:g}"))
            charts.append(interval_chart(f"{metric}: paired change vs {comparisons[0]['control']} (95% CI)", changes,
                                         *_symmetric(changes, refs), refs=refs,
                                         note="; ".join(label for _, _, label in refs if label) or "zero: no change"))
    costs = []
    for c in comparisons:
        for r in c["resources"]:
            if r["name"] in ("cost", "latency_ms") and r["relative"] is not None:
                tone = "muted" if r["verdict"] in ("no detectable difference", "unknown") else "up" if r["verdict"] == "lower" else "down"
                costs.append((f"{c['variant']} {_RESOURCE_NAMES[r['name']]}", _relative(r, "change_ci_low"), r["relative"],
                              _relative(r, "change_ci_high"), tone))
    if costs:
        charts.append(interval_chart(f"cost and latency: paired change vs {comparisons[0]['control']} (%, 95% CI)", costs, *_symmetric(costs, []),
                                     percent=True, note="left of zero: cheaper / faster"))
    return charts


def _symmetric(points: Sequence[tuple[str, float | None, float, float | None, str]],
               refs: Sequence[tuple[float, str, str]]) -> tuple[float, float]:
    """An axis symmetric around zero that holds every point, whisker and reference line."""
    values = [abs(v) for _, low, mid, high, _ in points for v in (low, mid, high) if v is not None]
    values += [abs(x) for x, _, _ in refs]
    top = max(values, default=0.0) * 1.1 or 0.1
    return -top, top


def interval_chart(title: str, points: Sequence[tuple[str, float | None, float, float | None, str]], low: float, high: float,
                   *, refs: Sequence[tuple[float, str, str]] = (), percent: bool = False, note: str = "") -> IntervalChart:
    """A forest plot of ``points`` (label, CI low, estimate, CI high, tone) on an axis
    over [low, high] (values outside are drawn at the edge), with vertical reference
    lines at zero (when inside) and at each of ``refs``."""
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return round(_LABEL_W + _PLOT_W * min(1.0, max(0.0, (value - low) / span)), 2)

    def label(value: float) -> str:
        return f"{100 * value:+.0f}%" if percent else f"{value:.2g}" if abs(value) < 10 else f"{value:.0f}"

    rows = []
    for i, (name, ci_low, mid, ci_high, tone) in enumerate(points):
        interval = f" ({label(ci_low)} to {label(ci_high)})" if ci_low is not None and ci_high is not None else ""
        rows.append(Interval(name, i * _ROW_H + _ROW_H / 2 + 2, None if ci_low is None else x(ci_low), None if ci_high is None else x(ci_high),
                             x(mid), tone, f"{name}: {label(mid)}{interval}"))
    lines = [(x(value), cls, text) for value, cls, text in refs]
    if low < 0 < high:
        lines.insert(0, (x(0.0), "zero", "0"))
    ticks = tuple((x(low + i * span / 4), label(low + i * span / 4)) for i in range(5))
    return IntervalChart(title, tuple(rows), ticks, tuple(lines), note)
