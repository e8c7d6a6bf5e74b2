"""Config rules of ``llm-eval-check``: what the schema cannot say about one config.

Each rule reads the loaded config (:class:`~pytest_llmeval.check.config.LoadedConfig`)
and returns findings with the line of the key concerned. Rules never trust types:
a value of the wrong type was already reported by the schema (LEC002) and is skipped
here, so every config, however broken, gives findings rather than a traceback.
:data:`RULES` names the section each rule reads (it runs only when that is a mapping);
single numbers with a range are rows of ``_RANGES``, checked by one rule.

The routing section is also turned into :class:`Route` records (``routes_of``), which
the report cross-checks use to ask "was every model that gets traffic evaluated?".
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from .config import LoadedConfig, dotted
from .findings import Finding

__all__ = [
    "PROMPT_VERSION",
    "Route",
    "Routing",
    "config_findings",
    "integer",
    "number",
    "routes_of",
]

PROMPT_VERSION = re.compile(r"^[0-9a-f]{12}$")
_FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{64}$")
WEIGHT_TOLERANCE = 1e-9


def number(value: Any) -> float | None:
    """``value`` as a float when it is a real number (not a bool); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float
        return math.inf if value > 0 else -math.inf


def integer(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (``500`` or ``500.0``, as JSON Schema
    counts integers); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Route:
    """One routed model: ``label`` names it in messages (``routing.primary``)."""

    label: str
    path: tuple
    provider: str
    model: str
    weight: float | None  # as configured; None when not given

    @property
    def key(self) -> str:
        """``provider:model``, as reports name models."""
        return f"{self.provider}:{self.model}"


@dataclass(frozen=True)
class Routing:
    routes: tuple[Route, ...]
    fallback: Route | None
    incomplete: int = 0  # route entries too broken to use (reported by the schema)

    def share(self, route: Route) -> float:
        """Traffic share of a route: its weight; 1 for a lone route without one."""
        if route.weight is None:
            return 1.0 if len(self.routes) == 1 else 0.0
        return route.weight if math.isfinite(route.weight) else 0.0

    @property
    def primary(self) -> Route | None:
        """The route with the largest share (the first among equals)."""
        best: Route | None = None
        for route in self.routes:
            if best is None or self.share(route) > self.share(best):
                best = route
        return best

    def traffic(self) -> dict[str, tuple[float, list[Route]]]:
        """provider:model -> (summed share, routes), for models with a share > 0."""
        out: dict[str, tuple[float, list[Route]]] = {}
        for route in self.routes:
            share = self.share(route)
            if share > 0:
                total, routes = out.get(route.key, (0.0, []))
                out[route.key] = (total + share, routes + [route])
        return out


def _route(config: LoadedConfig, path: tuple, label: str) -> Route | None:
    """The route at ``path``; None when it is not a usable route (no provider or model, or
    a weight that is not a number: the schema reports those)."""
    data = config.get(*path)
    if not isinstance(data, dict):
        return None
    provider, model = data.get("provider"), data.get("model")
    if not (isinstance(provider, str) and provider and isinstance(model, str) and model):
        return None
    weight = number(data.get("weight"))
    if "weight" in data and weight is None:
        return None
    return Route(label, path, provider, model, weight)


def routes_of(config: LoadedConfig) -> Routing:
    """The routes (named primary/secondary, or the routes list) and the fallback."""
    routing = config.get("routing")
    if not isinstance(routing, dict):
        return Routing((), None)
    routes: list[Route] = []
    incomplete = 0
    for name in ("primary", "secondary"):
        route = _route(config, ("routing", name), f"routing.{name}")
        if route is not None:
            routes.append(route)
        elif name in routing:
            incomplete += 1
    listed = routing.get("routes")
    if isinstance(listed, list):
        for index, item in enumerate(listed):
            name = item.get("name") if isinstance(item, dict) else None
            label = f"routing.routes[{index}]" + (f" ({name})" if isinstance(name, str) else "")
            route = _route(config, ("routing", "routes", index), label)
            if route is not None:
                routes.append(route)
            else:
                incomplete += 1
    fallback = None
    raw = routing.get("fallback")
    if isinstance(raw, dict):
        fallback = _route(config, ("routing", "fallback"), "routing.fallback")
    elif isinstance(raw, str):
        target = _named_route(routes, raw)
        if target is not None:
            fallback = Route(f"routing.fallback (= {target.label})", ("routing", "fallback"), target.provider,
                             target.model, None)
    return Routing(tuple(routes), fallback, incomplete)


def _route_names(routes: list[Route] | tuple[Route, ...]) -> dict[str, Route]:
    names: dict[str, Route] = {}
    for route in routes:
        if route.label in ("routing.primary", "routing.secondary"):
            names[route.label.split(".", 1)[1]] = route
        elif " (" in route.label:
            names[route.label.split(" (", 1)[1].rstrip(")")] = route
    return names


def _named_route(routes: list[Route] | tuple[Route, ...], name: str) -> Route | None:
    return _route_names(routes).get(name)


# --------------------------------------------------------------------------- rules


def config_findings(config: LoadedConfig) -> list[Finding]:
    """Every config rule (not the schema, not the report)."""
    findings: list[Finding] = []
    for path, rule in RULES:
        section = config.get(*path)
        if isinstance(section, dict):  # any other type is the schema's to report (LEC002)
            findings.extend(rule(config, section))
    return findings


def routing_rules(c: LoadedConfig, routing: dict) -> list[Finding]:
    out: list[Finding] = []
    named = [k for k in ("primary", "secondary") if k in routing]
    if named and "routes" in routing:
        out.append(c.finding("LEC110", "routing: give either primary/secondary or a routes list, not both "
                                       f"(found {', '.join(named)} and routes)", ("routing", "routes")))
    if not named and "routes" not in routing:
        out.append(c.finding("LEC111", "routing: no route: add primary (and secondary) or a routes list",
                             ("routing",)))
    if "secondary" in routing and "primary" not in routing:
        out.append(c.finding("LEC003", "routing: secondary is given without primary", ("routing", "secondary")))
    listed = routing.get("routes")
    if isinstance(listed, list) and not listed and not named:
        out.append(c.finding("LEC111", "routing.routes is empty: no model gets traffic", ("routing", "routes")))

    parsed = routes_of(c)
    routes = parsed.routes
    for route in routes:
        if route.weight is not None and not 0.0 <= route.weight <= 1.0:
            out.append(c.finding("LEC101", f"{route.label}.weight: {_fmt(route.weight)} is outside [0, 1] "
                                           "(a weight is a share of traffic)", route.path + ("weight",)))
    if len(routes) > 1:
        for route in routes:
            if route.weight is None and isinstance(c.get(*route.path), dict) and "weight" not in c.get(*route.path):
                out.append(c.finding("LEC113", f"{route.label} ({route.key}) has no weight; with several routes "
                                               "every route needs one", route.path))
    weighted = [r for r in routes if r.weight is not None]
    if weighted and not parsed.incomplete and all(math.isfinite(r.weight) for r in weighted):  # type: ignore[arg-type]
        total = math.fsum(r.weight for r in weighted)  # type: ignore[misc]
        if not abs(total - 1.0) <= WEIGHT_TOLERANCE:
            parts = " + ".join(f"{r.label.removeprefix('routing.')} {_fmt(r.weight)}" for r in weighted)  # type: ignore[arg-type]
            out.append(c.finding("LEC102", f"routing: weights sum to {total:.10g} ({parts}), not 1",
                                 weighted[0].path + ("weight",)))
    seen: dict[str, Route] = {}
    for route in routes:
        if route.key in seen:
            out.append(c.finding("LEC112", f"{route.label} routes to {route.key} like {seen[route.key].label}; "
                                           "merge them into one route", route.path))
        seen.setdefault(route.key, route)

    out.extend(_fallback_rules(c, routing, parsed))
    return out


def _fallback_rules(c: LoadedConfig, routing: dict, parsed: Routing) -> list[Finding]:
    out: list[Finding] = []
    raw = routing.get("fallback")
    routes = parsed.routes
    if raw is None and "fallback" not in routing:
        if routes:
            out.append(c.finding("LEC103", "routing: no fallback: when the routed models fail, requests have "
                                           "nowhere to go (add fallback: {provider, model})", ("routing",)))
    elif isinstance(raw, str):
        names = _route_names(routes)
        if raw not in names:
            close = difflib.get_close_matches(raw, list(names), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(names)) or "none"
            out.append(c.finding("LEC104", f"routing.fallback: {raw!r} is not a route{hint} (routes: {known}); "
                                           "name a route or give {provider, model}", ("routing", "fallback")))
    if parsed.incomplete:
        return out  # which route is primary, and who gets traffic, is unknown until the shape is fixed
    fallback, primary = parsed.fallback, parsed.primary
    traffic = parsed.traffic()
    if fallback is not None and primary is not None and fallback.key == primary.key:
        out.append(c.finding("LEC105", f"routing.fallback is {fallback.key}, the same model as {primary.label}: "
                                       "failing over to it changes nothing", ("routing", "fallback")))
    claims = fallback is not None or "failover_after_consecutive_failures" in routing
    providers = {key.split(":", 1)[0].lower() for key in traffic}
    if fallback is not None:
        providers.add(fallback.provider.lower())
    if claims and traffic and len(providers) < 2:
        where = ("routing", "fallback") if "fallback" in routing else ("routing", "failover_after_consecutive_failures")
        out.append(c.finding("LEC106", f"routing: failover is configured but every route"
                                       f"{' and the fallback' if fallback is not None else ''} use provider "
                                       f"{sorted(providers)[0]!r}: an outage of that provider leaves nothing to fail "
                                       "over to; route at least two providers", where))
    elif (fallback is not None and primary is not None and fallback.key != primary.key
          and fallback.provider.lower() == primary.provider.lower()):
        out.append(c.finding("LEC107", f"routing.fallback ({fallback.key}) uses the same provider as {primary.label} "
                                       f"({primary.key}): an outage of {primary.provider} takes both down",
                             ("routing", "fallback")))
    return out


def gate_rules(c: LoadedConfig, gates: dict) -> list[Finding]:
    out: list[Finding] = []
    thresholds = gates.get("thresholds")
    if isinstance(thresholds, dict):
        for metric, raw in thresholds.items():
            value = number(raw)
            if value is not None and not 0.0 <= value <= 1.0:
                out.append(c.finding("LEC201", f"eval_gates.thresholds.{metric}: {_fmt(value)} is outside [0, 1] "
                                               "(a threshold is a minimum mean score)",
                                     ("eval_gates", "thresholds", metric)))
        if not thresholds:
            out.append(c.finding("LEC203", "eval_gates.thresholds is empty: no minimum quality is required",
                                 ("eval_gates", "thresholds")))
    elif "thresholds" not in gates:
        out.append(c.finding("LEC203", "eval_gates: no thresholds: no minimum quality is required",
                             ("eval_gates",)))
    fingerprint = gates.get("golden_dataset_fingerprint")
    if isinstance(fingerprint, str) and not _FINGERPRINT.match(fingerprint):
        out.append(c.finding("LEC204", f"eval_gates.golden_dataset_fingerprint: {fingerprint!r} is not "
                                       "'sha256:' and 64 lowercase hex digits",
                             ("eval_gates", "golden_dataset_fingerprint")))
    return out


def canary_rules(c: LoadedConfig, canary: dict) -> list[Finding]:
    out: list[Finding] = []
    stages = canary.get("stages")
    if isinstance(stages, list) and stages:
        values = [number(s) for s in stages]
        for index, value in enumerate(values):
            if value is not None and not 0.0 < value <= 100.0:
                out.append(c.finding("LEC304", f"canary.stages[{index}]: {_fmt(value)} is outside (0, 100] "
                                               "(a stage is a percent of traffic)", ("canary", "stages", index)))
        for index in range(1, len(values)):
            before, value = values[index - 1], values[index]
            if before is not None and value is not None and not value > before:
                out.append(c.finding("LEC301", f"canary.stages[{index}]: {_fmt(value)} follows {_fmt(before)}; "
                                               "stages must increase strictly", ("canary", "stages", index)))
        last, first = values[-1], values[0]
        if last is not None and last < 100.0:
            out.append(c.finding("LEC302", f"canary.stages: the last stage is {_fmt(last)}%, not 100: the rollout "
                                           "never finishes", ("canary", "stages", len(values) - 1)))
        if first is not None and 10.0 < first <= 100.0:
            out.append(c.finding("LEC303", f"canary.stages[0]: the first stage sends {_fmt(first)}% of traffic to "
                                           "the candidate; start at 10% or less", ("canary", "stages", 0)))
    return out


def flag_rules(c: LoadedConfig, flags: dict) -> list[Finding]:
    out: list[Finding] = []
    for name, flag in flags.items():
        rules = flag.get("rules") if isinstance(flag, dict) else None
        if not isinstance(rules, list):
            continue
        seen: dict[str, int] = {}
        for index, rule in enumerate(rules):
            if not isinstance(rule, dict):
                continue
            path = ("feature_flags", name, "rules", index)
            percentage = number(rule.get("percentage"))
            if percentage is not None and not 0.0 <= percentage <= 100.0:
                out.append(c.finding("LEC401", f"feature_flags.{name}.rules[{index}].percentage: {_fmt(percentage)} "
                                               "is outside [0, 100]", path + ("percentage",)))
            segment = rule.get("segment")
            if isinstance(segment, str):
                if segment in seen:
                    out.append(c.finding("LEC402", f"feature_flags.{name}.rules[{index}]: segment {segment!r} is "
                                                   f"already used by rules[{seen[segment]}]; a segment gets one "
                                                   "percentage", path + ("segment",)))
                seen.setdefault(segment, index)
    return out


@dataclass(frozen=True)
class _Range:
    """A number the config may hold at ``path``, and the range it must be in: out of
    range it is finding ``code``: ``<path>: <value> <rule><hint(value)>``."""

    code: str
    path: tuple
    ok: Callable[[float], bool]
    rule: str
    read: Callable[[Any], float | int | None] = number
    hint: Callable[[float], str] = lambda value: ""


_RANGES = (
    _Range("LEC108", ("routing", "health_check_interval_seconds"), lambda v: v > 0,
           "must be a positive number of seconds"),
    _Range("LEC109", ("routing", "failover_after_consecutive_failures"), lambda v: v >= 1, "must be at least 1",
           read=integer),
    _Range("LEC202", ("eval_gates", "min_examples"), lambda v: v >= 1, "must be at least 1", read=integer),
    _Range("LEC305", ("canary", "min_stage_duration_minutes"), lambda v: v > 0, "must be positive"),
    _Range("LEC306", ("canary", "rollback", "max_quality_drop"), lambda v: 0.0 < v <= 1.0, "is outside (0, 1]",
           hint=lambda v: " (write the drop as a positive number, e.g. 0.05)" if v < 0 else ""),
    _Range("LEC307", ("canary", "rollback", "max_error_rate"), lambda v: 0.0 <= v <= 1.0,
           "is outside [0, 1] (a fraction of requests)"),
    _Range("LEC309", ("canary", "rollback", "max_latency_p95_ms"), lambda v: v > 0, "must be positive"),
    _Range("LEC308", ("canary", "alpha"), lambda v: 0.0 < v < 1.0, "must be strictly between 0 and 1"),
    _Range("LEC308", ("canary", "power"), lambda v: 0.0 < v < 1.0, "must be strictly between 0 and 1"),
    _Range("LEC501", ("monitoring", "daily_cost_budget"), lambda v: 0.0 < v < math.inf,
           "must be a positive amount (USD per day)"),
    _Range("LEC502", ("monitoring", "cost_alert_threshold"), lambda v: 0.0 < v <= 1.0, "is outside (0, 1]",
           hint=lambda v: " (a fraction of the daily budget: 0.8 means alert at 80%)" if v > 1 else ""),
    _Range("LEC503", ("monitoring", "latency_p95_alert_ms"), lambda v: v > 0, "must be positive"),
    _Range("LEC504", ("monitoring", "quality_alert_threshold"), lambda v: -1.0 <= v <= 0.0, "is outside [-1, 0]",
           hint=lambda v: " (it is a change of the quality score: alert on a drop of 5 points is -0.05)"
           if v > 0 else ""),
    _Range("LEC505", ("traffic", "requests_per_day"), lambda v: 0.0 < v < math.inf, "must be positive"),
)


def range_rules(c: LoadedConfig, top: dict) -> list[Finding]:
    """The single numbers of :data:`_RANGES` that are out of range (a value of the wrong
    type, or under a section that is not a mapping, is the schema's to report)."""
    out: list[Finding] = []
    for spec in _RANGES:
        value = spec.read(c.get(*spec.path))
        if value is not None and not spec.ok(value):
            out.append(c.finding(spec.code, f"{dotted(spec.path)}: {_fmt(value)} {spec.rule}{spec.hint(value)}",
                                 spec.path))
    return out


def prompt_pin_rules(c: LoadedConfig, pins: dict) -> list[Finding]:
    out = []
    for name, version in pins.items():
        if isinstance(version, str) and not PROMPT_VERSION.match(version):
            out.append(c.finding("LEC601", f"prompt_registry.prompts.{name}: {version!r} is not a prompt version "
                                           "(12 lowercase hex digits, as `llm-eval prompts` lists them)",
                                 ("prompt_registry", "prompts", name)))
    return out


# Each rule reads one section, given to it only when it is a mapping.
RULES: tuple[tuple[tuple[str, ...], Callable[[LoadedConfig, dict], list[Finding]]], ...] = (
    (("routing",), routing_rules),
    (("eval_gates",), gate_rules),
    (("canary",), canary_rules),
    (("feature_flags",), flag_rules),
    ((), range_rules),
    (("prompt_registry", "prompts"), prompt_pin_rules),
)
