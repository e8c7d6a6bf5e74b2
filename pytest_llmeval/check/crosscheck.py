"""Cross-checks of a config against a pytest-llmeval JSON report, and of pinned prompts.

The report (already validated by :func:`pytest_llmeval.reporting.report.load_report`) says which
models were evaluated on which dataset, with which thresholds, how many cases, whether
anything regressed, and what each model cost and how slow it was. These checks ask
whether that evidence covers what the config is about to ship:

* the report is complete and judged (not an interrupted run, not a deferred shard);
* some suite ran on the configured golden dataset (same path; same fingerprint);
* every model that gets traffic, and the fallback, was evaluated there and passed;
* the gate that ran was at least as strict as the config's thresholds, on at least
  ``min_examples`` cases, and nothing regressed when ``block_on_regression`` is set;
* projected daily cost and per-model p95 latency stay under the monitoring alerts.

Pinned prompt versions are checked against the prompt folder, the prompt log and the
report. Every check returns findings located at the config key it is about.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import posixpath
from pathlib import Path
from typing import Any, Mapping

from .config import LoadedConfig
from .findings import Finding
from .rules import PROMPT_VERSION, Route, Routing, integer, number, routes_of

__all__ = [
    "DEFAULT_PROMPT_LOG",
    "dataset_matches",
    "file_fingerprint",
    "prompt_findings",
    "report_findings",
    "shadow_findings",
    "suite_failures",
]

DEFAULT_PROMPT_LOG = ".llm-eval/prompt-log.jsonl"


def _pct(share: float) -> str:
    return f"{round(share * 100, 6):g}%"


def _money(value: float) -> str:
    """Dollars: cents from $1 up, three significant digits below (never 1e-05 notation)."""
    if value >= 1 or value <= 0:
        return f"${value:,.2f}"
    digits = max(2, 2 - math.floor(math.log10(value)))
    return f"${value:.{digits}f}"


def _normal(path: str) -> str:
    text = posixpath.normpath(path.replace("\\", "/"))
    return text[2:] if text.startswith("./") else text


def dataset_matches(configured: str, recorded: str) -> bool:
    """Same dataset path: equal once normalised, or one is the other below a folder
    (the report records paths relative to pytest's rootdir, the config relative to its
    own folder)."""
    if "://" in configured or "://" in recorded:  # a URI (s3://, https://...) names one object: equal or not
        return configured.strip() == recorded.strip()
    a, b = _normal(configured), _normal(recorded)
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def file_fingerprint(path: Path) -> str:
    """``sha256:<hex>`` of the file's bytes, as :mod:`pytest_llmeval.core.datasets` computes it."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def suite_failures(suite: Mapping[str, Any], *, cases: bool = True) -> list[str]:
    """Why a suite did not pass its gate (empty when it passed); with ``cases`` also its
    failed and errored cases (which make pytest, and the report's verdict, fail)."""
    reasons: list[str] = []
    verdict = suite.get("verdict")
    if verdict is None:
        return ["the suite was not judged (interrupted run or deferred shard)"]
    for metric in suite.get("metrics", []):
        if metric.get("verdict") == "fail":
            reasons.extend(metric.get("reasons") or [f"{metric.get('name')}: failed"])
    for gate in suite.get("usage_gates", []):
        if gate.get("verdict") == "fail":
            reasons.append(gate.get("message") or f"{gate.get('name')}: failed")
    comparison = suite.get("comparison") or {}
    for gate in comparison.get("gates", []):
        if gate.get("verdict") == "fail":
            reasons.append(gate.get("message") or f"{gate.get('kind')} {gate.get('metric')}: failed")
    if verdict == "fail" and not reasons:
        baseline = suite.get("baseline") or {}
        reasons.append(baseline.get("error") or "the suite's verdict is fail")
    if cases and suite.get("failed_cases"):
        cases = suite["failed_cases"]
        reasons.append(f"{len(cases)} case(s) failed: {', '.join(cases[:5])}{' ...' if len(cases) > 5 else ''}")
    if cases and suite.get("errors"):
        cases = suite["errors"]
        reasons.append(f"{len(cases)} case(s) errored: {', '.join(cases[:5])}{' ...' if len(cases) > 5 else ''}")
    return reasons


class _Model:
    """A routed model (or the fallback) and the suites that evaluated it."""

    def __init__(self, key: str, share: float, routes: list[Route], fallback: bool) -> None:
        self.key = key
        self.share = share
        self.routes = routes
        self.fallback = fallback
        self.suites: list[Mapping[str, Any]] = []

    @property
    def path(self) -> tuple:
        return self.routes[0].path

    def describe(self) -> str:
        labels = ", ".join(r.label for r in self.routes)
        if self.share > 0:
            extra = "; also the fallback" if self.fallback else ""
            return f"{labels}, {_pct(self.share)} of traffic{extra}"
        return f"{labels}, takes the traffic when failover triggers"

    def cost_suites(self) -> list[Mapping[str, Any]]:
        """Suites that evaluated only this model (their cost and latency are its own),
        or else every suite that evaluated it."""
        alone = [s for s in self.suites if list(s.get("models", [])) == [self.key]]
        return alone or self.suites


def _models(routing: Routing) -> list[_Model]:
    models: dict[str, _Model] = {}
    for key, (share, routes) in routing.traffic().items():
        models[key] = _Model(key, share, routes, False)
    fallback = routing.fallback
    if fallback is not None:
        if fallback.key in models:
            models[fallback.key].fallback = True
        else:
            models[fallback.key] = _Model(fallback.key, 0.0, [fallback], True)
    return list(models.values())


def _route_model(suite: Mapping[str, Any]) -> str | None:
    """The ``provider:model`` a route variant (``--llm-eval-routes``) was meant to run, else None."""
    routes = (suite.get("variants") or {}).get("routes") or {}
    route = routes.get(suite.get("variant") or "")
    return str(route["model"]) if isinstance(route, Mapping) and route.get("model") else None  # already provider:model


def _evaluates(suite: Mapping[str, Any], key: str) -> bool:
    """Whether ``suite`` is evidence about the routed model ``key``: a route variant about
    its route's model only (even when the setting did not reach the app and it called
    another model: its failure is that route's), any other suite about the models it called."""
    route = _route_model(suite)
    return route == key if route is not None else key in suite.get("models", [])


def report_findings(c: LoadedConfig, report: Mapping[str, Any], report_name: str) -> list[Finding]:
    """Everything the report says against shipping the config."""
    out: list[Finding] = []
    gates_path = ("eval_gates",)
    judged = bool(report.get("complete", False)) and report.get("verdict") != "deferred"
    if not report.get("complete", False):
        reason = (report.get("run") or {}).get("incomplete_reason") or "no reason recorded"
        out.append(c.finding("LEC701", f"the report {report_name} is incomplete ({reason}): its verdicts are not "
                                       "final; rerun the evals to the end", gates_path))
    elif report.get("verdict") == "deferred":
        out.append(c.finding("LEC702", f"the report {report_name} is a shard whose gate was deferred: merge the "
                                       "shards (llm-eval merge) and check the merged report", gates_path))

    suites = list(report.get("suites", []))
    golden = c.get("eval_gates", "golden_dataset")
    if isinstance(golden, str) and golden:
        gate_suites = [s for s in suites if dataset_matches(golden, s["dataset"])]
        if not gate_suites:
            ran = sorted({s["dataset"] for s in suites})
            out.append(c.finding("LEC706", f"eval_gates.golden_dataset: no suite in {report_name} ran on {golden} "
                                           f"(suites ran on: {', '.join(ran) or 'nothing: the report has no suite'})",
                                 ("eval_gates", "golden_dataset")))
        out.extend(_fingerprint_findings(c, golden, gate_suites))
    else:
        golden = None
        gate_suites = suites
    where = f"on {golden}" if golden else "in the report"

    routing = routes_of(c)
    models = _models(routing)
    for model in models:
        model.suites = [s for s in gate_suites if _evaluates(s, model.key)]
    modelless = [s for s in gate_suites if not s.get("models") and _route_model(s) is None]
    for suite in modelless:
        out.append(c.finding("LEC705", f"suite {suite['suite_id']} ({where}) used no model client: its target made no "
                                       "call through pytest_llmeval.providers, so the report cannot say which model it "
                                       "evaluated", ("routing",)))
    all_models = sorted({m for s in suites for m in s.get("models", [])})
    routed_keys = {m.key for m in models}
    for model in models:
        if model.suites:
            for suite in model.suites if judged else ():  # unjudged suites: LEC701/LEC702 say why
                reasons = suite_failures(suite)
                if reasons:
                    out.append(c.finding("LEC704", f"{model.key} ({model.describe()}) failed its gate in suite "
                                                   f"{suite['suite_id']}: {'; '.join(reasons)}", model.path))
            continue
        message = f"{model.key} ({model.describe()}) was not evaluated: no suite {where} called it"
        elsewhere = sorted({s["dataset"] for s in suites if model.key in s.get("models", [])})
        if elsewhere:
            message += f"; it was evaluated only on {', '.join(elsewhere)}"
        if modelless:
            message += (f"; {len(modelless)} suite(s) {where} used no model client "
                        f"({', '.join(s['suite_id'] for s in modelless[:3])}), so the report cannot tell what they ran")
        others = [m for m in all_models if m not in routed_keys]  # a routed model is no misspelling of another
        close = difflib.get_close_matches(model.key, others, n=1, cutoff=0.6)
        if close:
            message += f"; the report has {close[0]}: name the model exactly as it was evaluated"
        if not elsewhere and not close:
            message += f" (models evaluated: {', '.join(all_models) or 'none'})"
        out.append(c.finding("LEC703", message, model.path))

    for suite in gate_suites if judged else ():
        if any(_evaluates(suite, key) for key in routed_keys):
            continue  # reported per model above
        reasons = suite_failures(suite)
        if reasons:
            out.append(c.finding("LEC716", f"suite {suite['suite_id']} ({where}) failed its gate: {'; '.join(reasons)}",
                                 gates_path))

    evaluated = [m for m in models if m.suites]
    groups: list[tuple[str, list[Mapping[str, Any]]]]
    if evaluated:
        groups = [(f" for {m.key}", m.suites) for m in evaluated]
    else:
        groups = [("", gate_suites)] if gate_suites else []
    out.extend(_threshold_findings(c, report, groups))
    out.extend(_example_findings(c, gate_suites))
    out.extend(_regression_findings(c, gate_suites))
    out.extend(_cost_findings(c, models))
    out.extend(_latency_findings(c, models))
    return out


def _fingerprint_findings(c: LoadedConfig, golden: str, gate_suites: list[Mapping[str, Any]]) -> list[Finding]:
    configured = c.get("eval_gates", "golden_dataset_fingerprint")
    if isinstance(configured, str) and configured:
        expected, source, path = configured, "eval_gates.golden_dataset_fingerprint", (
            "eval_gates", "golden_dataset_fingerprint")
    elif "://" in golden:
        if not gate_suites:
            return []
        from ..core.datasets import remote_fingerprint
        from ..errors import DatasetError

        try:
            expected = remote_fingerprint(golden)
        except DatasetError as exc:
            return [c.finding("LEC717", f"eval_gates.golden_dataset: cannot read {golden} to verify the report's "
                                        f"fingerprint ({exc.problem}); set golden_dataset_fingerprint to pin it",
                              ("eval_gates", "golden_dataset"))]
        source, path = f"the object at {golden} now", ("eval_gates", "golden_dataset")
    else:
        file = c.folder / golden
        try:
            expected = file_fingerprint(file)
        except OSError:
            if gate_suites:
                return [c.finding("LEC717", f"eval_gates.golden_dataset: {golden} is not a readable file next to the "
                                            f"config ({file}): the report's dataset fingerprint is not verified; set "
                                            "golden_dataset_fingerprint to pin it", ("eval_gates", "golden_dataset"))]
            return []
        source, path = f"the file {file}", ("eval_gates", "golden_dataset")
    out = []
    for suite in gate_suites:
        if suite["fingerprint"] != expected:
            out.append(c.finding("LEC707", f"suite {suite['suite_id']} ran on {suite['dataset']} with fingerprint "
                                           f"{suite['fingerprint']}, but {source} is {expected}: the evals ran on "
                                           "another version of the golden dataset", path))
    return out


def _threshold_findings(c: LoadedConfig, report: Mapping[str, Any],
                        groups: list[tuple[str, list[Mapping[str, Any]]]]) -> list[Finding]:
    thresholds = c.get("eval_gates", "thresholds")
    if not isinstance(thresholds, dict) or not groups:
        return []
    out: list[Finding] = []
    options = (report.get("run") or {}).get("options") or {}
    if thresholds and options.get("enforce_thresholds") is False:
        out.append(c.finding("LEC708", "eval_gates.thresholds: the run ignored thresholds "
                                       "(--llm-eval-ignore-thresholds): they were reported, not enforced",
                             ("eval_gates", "thresholds")))
    elif thresholds and not options.get("enforce_partial"):
        partial = {s["suite_id"]: s for _, suites in groups for s in suites
                   if s.get("verdict") is not None and s["cases_run"] < s["n_rows"]}  # unjudged: LEC701/LEC702 say why
        for suite_id, suite in sorted(partial.items()):
            out.append(c.finding("LEC708", f"eval_gates.thresholds: suite {suite_id} ran {suite['cases_run']} of its "
                                           f"{suite['n_rows']} cases (a -k, node id or --lf selection): its thresholds "
                                           "were reported, not enforced; run every case",
                                 ("eval_gates", "thresholds")))
    for metric, raw in thresholds.items():
        wanted = number(raw)
        if wanted is None or not 0.0 <= wanted <= 1.0:
            continue
        path = ("eval_gates", "thresholds", metric)
        for label, suites in groups:
            measured = [(s, m) for s in suites for m in s.get("metrics", []) if m.get("name") == metric]
            if not measured:
                have = sorted({m.get("name") for s in suites for m in s.get("metrics", [])})
                out.append(c.finding("LEC708", f"eval_gates.thresholds.{metric}: no suite{label} measured {metric} "
                                               f"(metrics measured: {', '.join(have) or 'none'})", path))
                continue
            if any(m.get("threshold") is not None and m["threshold"] >= wanted - 1e-12 for _, m in measured):
                continue
            used = "; ".join(
                f"{s['suite_id']}: " + (f"threshold {m['threshold']:g}" if m.get("threshold") is not None else "no threshold")
                + (f", mean {m['mean']:.3f}" if m.get("mean") is not None else "")
                for s, m in measured)
            out.append(c.finding("LEC708", f"eval_gates.thresholds.{metric} is {wanted:g} but the gate that ran{label} "
                                           f"was looser ({used}): set thresholds={{'{metric}': {wanted:g}}} (or higher) "
                                           "in the suite's marker or llm_eval_thresholds", path))
    return out


def _example_findings(c: LoadedConfig, gate_suites: list[Mapping[str, Any]]) -> list[Finding]:
    minimum = integer(c.get("eval_gates", "min_examples"))
    if minimum is None or minimum < 1:
        return []
    thresholds = c.get("eval_gates", "thresholds")
    metric_names = set(thresholds) if isinstance(thresholds, dict) else set()
    out = []
    for suite in gate_suites:
        run = suite["cases_run"]
        scored = [(m["name"], m["n"]) for m in suite.get("metrics", []) if m.get("name") in metric_names]
        fewest = min(scored, key=lambda x: x[1], default=None)
        n = min(run, fewest[1]) if fewest is not None else run
        if n < minimum:
            detail = f"{run} case(s)"
            if fewest is not None and fewest[1] < run:
                detail += f", {fewest[1]} scored for {fewest[0]}"
            out.append(c.finding("LEC709", f"eval_gates.min_examples is {minimum} but suite {suite['suite_id']} ran "
                                           f"{detail}", ("eval_gates", "min_examples")))
    return out


def _regression_findings(c: LoadedConfig, gate_suites: list[Mapping[str, Any]]) -> list[Finding]:
    block = c.get("eval_gates", "block_on_regression") is True
    path = ("eval_gates", "block_on_regression") if "block_on_regression" in (c.get("eval_gates") or {}) else ("eval_gates",)
    out = []
    for suite in gate_suites:
        for metric in suite.get("metrics", []):
            if not metric.get("regressed"):
                continue
            p = metric.get("p_adjusted") if metric.get("p_adjusted") is not None else metric.get("p_value")
            what = (f"suite {suite['suite_id']}: {metric['name']} regressed against the baseline: "
                    f"{_num(metric.get('baseline_mean'))} -> {_num(metric.get('mean'))} "
                    f"(change {_signed(metric.get('change'))}, p={_num(p, '.3g')})")
            if block:
                out.append(c.finding("LEC710", what + "; eval_gates.block_on_regression is true", path))
            else:
                out.append(c.finding("LEC711", what + " (not blocking: block_on_regression is off)", path))
        baseline = suite.get("baseline")
        if suite.get("variant") is not None and baseline is None:
            continue  # a variant the baseline gate does not apply to: compared with the control instead
        if block and suite.get("verdict") is not None and not (baseline and baseline.get("found")):
            out.append(c.finding("LEC711", f"suite {suite['suite_id']} was compared with no baseline: block_on_regression "
                                           "could not be checked (bless one with pytest --llm-eval-update)", path))
    return out


def _num(value: Any, spec: str = ".3f") -> str:
    return "?" if value is None else format(value, spec)


def _signed(value: Any) -> str:
    return "?" if value is None else f"{value:+.3f}"


def _suite_cost(suite: Mapping[str, Any], model: str) -> tuple[float | None, str | None]:
    """Mean cost per case of a suite, or (None, why not)."""
    usage = suite.get("usage")
    if not usage:
        return None, f"suite {suite['suite_id']} has no usage data"
    name = model.split(":", 1)[1]
    if name in usage.get("unpriced_models", []) or model in usage.get("unpriced_models", []):
        return None, f"{name} is not in the price table (add it with llm_eval_prices)"
    if usage.get("calls") and usage.get("cached_calls") == usage.get("calls"):
        return None, f"every call of suite {suite['suite_id']} was replayed from the cache (cost 0)"
    if usage.get("cost_mean") is None:
        return None, f"suite {suite['suite_id']} recorded no cost"
    return float(usage["cost_mean"]), None


def _cost_findings(c: LoadedConfig, models: list[_Model]) -> list[Finding]:
    budget = number(c.get("monitoring", "daily_cost_budget"))
    if budget is None or not 0 < budget < math.inf:
        return []
    fraction = number(c.get("monitoring", "cost_alert_threshold"))
    if fraction is None or not 0 < fraction <= 1:
        fraction = 1.0
    budget_path = ("monitoring", "daily_cost_budget")
    requests = number(c.get("traffic", "requests_per_day"))
    if requests is None or not 0 < requests < math.inf:
        return [c.finding("LEC713", "monitoring.daily_cost_budget is set but traffic.requests_per_day is not: the "
                                    "daily cost cannot be projected", budget_path)]
    parts: list[str] = []
    unknown: list[str] = []
    total = 0.0
    for model in models:
        if model.share <= 0:
            continue
        costs, why = [], None
        for suite in model.cost_suites():
            cost, reason = _suite_cost(suite, model.key)
            if cost is None:
                why = why or reason
            else:
                costs.append((cost, suite["cases_run"]))
        if not costs:
            unknown.append(f"{model.key} ({why or 'not evaluated'})")
            continue
        per_case = sum(cost * max(n, 1) for cost, n in costs) / sum(max(n, 1) for _, n in costs)
        total += model.share * per_case
        parts.append(f"{model.share:g} x {_money(per_case)} {model.key}")
    projected = requests * total
    line = fraction * budget
    out = []
    if unknown:
        out.append(c.finding("LEC713", f"monitoring.daily_cost_budget: cost per request unknown for "
                                       f"{'; '.join(unknown)}: the projection leaves it out", budget_path))
    if projected > line:
        out.append(c.finding("LEC712", f"projected daily cost {_money(projected)} = {requests:,.0f} requests/day x "
                                       f"({' + '.join(parts)}) exceeds the alert line {_money(line)} "
                                       f"(cost_alert_threshold {fraction:g} x daily_cost_budget {_money(budget)})",
                             budget_path))
    return out


def _app_calls_replayed(usage: Mapping[str, Any]) -> bool:
    """Whether some app calls of a suite were replayed from the cache, so its latency is not
    the provider's (reports before ``app_cached_calls``: when every call was replayed)."""
    if "app_cached_calls" in usage:
        return bool(usage["app_cached_calls"])
    return bool(usage.get("calls")) and usage.get("cached_calls") == usage.get("calls")


def _latency_findings(c: LoadedConfig, models: list[_Model]) -> list[Finding]:
    alert = number(c.get("monitoring", "latency_p95_alert_ms"))
    if alert is None or not alert > 0:
        return []
    path = ("monitoring", "latency_p95_alert_ms")
    out = []
    for model in models:
        if not model.suites:
            continue  # LEC703 already
        measured = []
        for suite in model.cost_suites():
            usage = suite.get("usage") or {}
            p95 = usage.get("latency_p95_ms")
            if p95 is not None and (not _app_calls_replayed(usage) or p95 > alert):  # over even with replays: a fact
                measured.append((p95, suite["suite_id"]))
        if not measured:
            out.append(c.finding("LEC715", f"{model.key} ({model.describe()}): no measured latency in the report "
                                           "(no usage data, or app calls replayed from the cache): p95 not checked",
                                 path))
            continue
        worst, suite_id = max(measured)
        if worst > alert:
            out.append(c.finding("LEC714", f"{model.key} ({model.describe()}): p95 latency {worst:,.0f} ms in suite "
                                           f"{suite_id} is above monitoring.latency_p95_alert_ms {alert:,.0f} ms",
                                 path))
    return out


# --------------------------------------------------------------------------- shadow


def shadow_findings(c: LoadedConfig, shadow: Mapping[str, Any], shadow_name: str) -> list[Finding]:
    """A shadow comparison (``llm-eval shadow -o``) allows the cutover only with decision
    ``allow``; its green models should be what the config routes."""
    out = []
    path = ("routing",)
    if shadow["decision"] == "block":
        out.append(c.finding("LEC801", f"shadow comparison {shadow_name} blocks the cutover: "
                                       f"{'; '.join(shadow.get('reasons') or ['green is worse than blue'])}", path))
    elif shadow["decision"] == "insufficient":
        out.append(c.finding("LEC802", f"shadow comparison {shadow_name} could not decide: "
                                       f"{'; '.join(shadow.get('reasons') or ['too little data'])}", path))
    green = [m for m in ((shadow.get("cost") or {}).get("green") or {}).get("models", []) if m != "(no model logged)"]
    routed = {key.split(":", 1)[1] for key in routes_of(c).traffic()}
    stray = sorted(m for m in green if m not in routed and m.split(":", 1)[-1] not in routed)
    if stray and routed:
        out.append(c.finding("LEC803", f"shadow comparison {shadow_name}: green ran {', '.join(stray)}, which the "
                                       f"config does not route (routed: {', '.join(sorted(routed))})", path))
    return out


# --------------------------------------------------------------------------- prompts


def prompt_findings(c: LoadedConfig, report: Mapping[str, Any] | None, prompt_log: Path | None) -> list[Finding]:
    """Pinned prompt versions exist (the file's current version, or one in the prompt log)
    and passed their gates (a report suite that rendered the version passed, or the log's
    latest entry for it is a pass)."""
    pins = c.get("prompt_registry", "prompts")
    if not isinstance(pins, dict):
        return []
    pinned = {name: v for name, v in pins.items() if isinstance(v, str) and PROMPT_VERSION.match(v)}
    if not pinned:
        return []
    from ..prompts import PromptError, PromptLog, PromptRegistry

    storage_raw = c.get("prompt_registry", "storage")
    storage = c.folder / (storage_raw if isinstance(storage_raw, str) and storage_raw else "prompts")
    log_path = prompt_log if prompt_log is not None else c.folder / DEFAULT_PROMPT_LOG
    out: list[Finding] = []
    try:
        entries = PromptLog(log_path).entries()
    except (PromptError, OSError, UnicodeDecodeError) as exc:
        out.append(c.finding("LEC605", f"prompt log {log_path}: {exc}", ("prompt_registry",)))
        entries = []
    try:
        registry = PromptRegistry(storage)
        names = set(registry.names())
        current = {name: registry.get(name).version for name in names & set(pinned)}
    except (PromptError, OSError) as exc:
        out.append(c.finding("LEC605", f"prompt_registry.storage: {exc}",
                             ("prompt_registry", "storage") if storage_raw is not None else ("prompt_registry",)))
        names, current = set(), {}
    suites = list((report or {}).get("suites", []))
    for name, version in pinned.items():
        path = ("prompt_registry", "prompts", name)
        logged = [e for e in entries if e.get("name") == name and e.get("version") == version]
        now = current.get(name)
        if version != now and not logged:
            if now is not None:
                where = f"{storage}/{name} is at version {now}"
            elif storage.is_dir():
                where = f"{storage} has no prompt {name!r}"
            else:
                where = f"the prompt folder {storage} does not exist"
            out.append(c.finding("LEC602", f"prompt_registry.prompts.{name}: version {version} does not exist: {where}, "
                                           f"and the prompt log {log_path} has no line for it", path))
            continue
        if now is not None and version != now:
            out.append(c.finding("LEC604", f"prompt_registry.prompts.{name}: pinned {version}, but {storage}/{name} is "
                                           f"now at {now}: the pin ships an older prompt", path))
        rendered = [s for s in suites if version in (s.get("prompts") or {}).get(name, [])]
        if any(not suite_failures(s) for s in rendered):
            continue
        latest = logged[-1] if logged else None
        if latest is not None and latest.get("verdict") == "pass":
            continue
        reasons = []
        if rendered:
            reasons.append("the report's suites that rendered it failed (" + ", ".join(s["suite_id"] for s in rendered) + ")")
        elif report is not None:
            reasons.append("no suite in the report rendered it")
        if latest is not None:
            reasons.append(f"its latest prompt-log entry ({latest.get('suite', '?')} at {latest.get('at', '?')}) "
                           f"is {latest.get('verdict', 'without a verdict')}")
        else:
            reasons.append("the prompt log has no blessed result for it")
        out.append(c.finding("LEC603", f"prompt_registry.prompts.{name}: version {version} has no passing eval: "
                                       f"{'; '.join(reasons)}", path))
    return out
