"""Cost monitoring from request logs: daily spend by feature, model and user segment, mean
and p95 cost per request, and the article's budget alert.

Each record (see :mod:`.logs`) needs ``timestamp`` and ``model`` and either token usage
(priced with the price table) or a logged ``cost``; ``feature`` and ``segment`` group the
spend (``(none)`` when absent). A model the price table does not know is never guessed:
its requests are counted, listed, and left out of the spend, and the output says the
spend is a lower bound.

Alert: a (UTC) day whose spend is above ``cost_alert_threshold x daily_cost_budget``
(``monitoring`` block of the config). The alert is attributed to the (feature, model)
whose spend rose most that day against its median over the other days of the log.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable, Mapping

from ..errors import ConfigError
from .logs import LogRecord, tokens_of

__all__ = ["CostPolicy", "analyse_costs", "percentile", "render_text"]

NONE = "(none)"


@dataclass(frozen=True)
class CostPolicy:
    daily_cost_budget: float | None = None  # USD per day
    cost_alert_threshold: float = 1.0  # fraction of the budget that alerts

    def __post_init__(self) -> None:
        budget = self.daily_cost_budget
        if budget is not None and not (budget > 0 and math.isfinite(budget)):
            raise ConfigError(f"daily_cost_budget must be a positive number of USD, got {budget!r}")
        if not 0 < self.cost_alert_threshold <= 1:
            raise ConfigError(f"cost_alert_threshold must be a fraction in (0, 1], got {self.cost_alert_threshold!r}")

    @property
    def alert_line(self) -> float | None:
        return None if self.daily_cost_budget is None else self.cost_alert_threshold * self.daily_cost_budget


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks (the
    same as numpy.percentile's default); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"


def analyse_costs(records: Iterable[LogRecord], prices: Any, policy: CostPolicy) -> dict[str, Any]:
    """The JSON-safe cost document: per day the spend, its breakdowns (``by_feature``,
    ``by_model``, ``by_segment``: USD), mean and p95 cost per request overall and per group
    (``per_request.feature|model|segment.<name>: {requests, mean, p95}``), and the alert with
    its attribution. LogError (file:line:field) for a record
    without a timestamp or model, or with neither usage nor cost."""
    days: dict[date, dict[str, Any]] = {}
    unpriced: dict[str, int] = {}
    for record in records:
        day = record.timestamp().date()  # type: ignore[union-attr]
        model = record.text("model", required=True)
        feature = record.text("feature", default=NONE)
        segment = record.text("segment", default=NONE)
        cost = record.number("cost")
        tokens = tokens_of(record)
        if cost is None:
            if tokens is None:
                raise record.error("usage", "missing: log token usage (usage.input_tokens / output_tokens) or a cost")
            cost = prices.cost(model, *tokens)
        entry = days.setdefault(day, {"costs": [], "feature": {}, "model": {}, "segment": {}, "feature_model": {},
                                      "requests": 0, "unpriced_requests": 0})
        entry["requests"] += 1
        if cost is None:
            entry["unpriced_requests"] += 1
            unpriced[model] = unpriced.get(model, 0) + 1
            continue
        entry["costs"].append(cost)
        for key, value in (("feature", feature), ("model", model), ("segment", segment), ("feature_model", (feature, model))):
            entry[key].setdefault(value, []).append(cost)

    line = policy.alert_line
    out_days = []
    for day in sorted(days):
        entry = days[day]
        costs = entry["costs"]
        spend = math.fsum(costs)
        item: dict[str, Any] = {
            "day": day.isoformat(),
            "requests": entry["requests"],
            "unpriced_requests": entry["unpriced_requests"],
            "spend": spend,
            "mean_cost": spend / len(costs) if costs else None,
            "p95_cost": percentile(costs, 95) if costs else None,
            "by_feature": _sorted(entry["feature"]),
            "by_model": _sorted(entry["model"]),
            "by_segment": _sorted(entry["segment"]),
            "per_request": {key: _per_request(entry[key]) for key in ("feature", "model", "segment")},
            "alert": line is not None and spend > line,
            "attribution": None,
        }
        if item["alert"]:
            item["attribution"] = _attribute(day, days)
        out_days.append(item)
    alerts = []
    for item in out_days:
        if not item["alert"]:
            continue
        text = (f"{item['day']}: spend {_money(item['spend'])} is above the alert line {_money(line)} "  # type: ignore[arg-type]
                f"({policy.cost_alert_threshold:g} x daily_cost_budget {_money(policy.daily_cost_budget)})")  # type: ignore[arg-type]
        a = item["attribution"]
        if a is not None:
            text += (f": most of the rise is feature {a['feature']} on {a['model']} ({_money(a['spend'])}, "
                     f"{'+' if a['increase'] >= 0 else '-'}{_money(abs(a['increase']))} against its median day "
                     f"{_money(a['median_other_days'])})")
        alerts.append(text)
    notes = []
    if unpriced:
        notes.append("spend is a lower bound: requests of models not in the price table are left out ("
                     + ", ".join(f"{m}: {n}" for m, n in sorted(unpriced.items())) + "); add them with llm_eval_prices")
    if line is None:
        notes.append("no daily_cost_budget: no alert checked")
    return {
        "daily_cost_budget": policy.daily_cost_budget,
        "cost_alert_threshold": policy.cost_alert_threshold,
        "alert_line": line,
        "days": out_days,
        "alerts": alerts,
        "unpriced_models": dict(sorted(unpriced.items())),
        "notes": notes,
    }


def _order(costs: Mapping[Any, list[float]]) -> list[Any]:
    """The groups, largest spend first."""
    return sorted(costs, key=lambda k: (-math.fsum(costs[k]), str(k)))


def _sorted(costs: Mapping[Any, list[float]]) -> dict[str, float]:
    """Spend per group, largest first."""
    return {str(k): math.fsum(costs[k]) for k in _order(costs)}


def _per_request(costs: Mapping[Any, list[float]]) -> dict[str, dict[str, Any]]:
    """Per group, largest spend first: priced requests, mean and p95 cost per request (USD)."""
    return {str(k): {"requests": len(costs[k]), "mean": math.fsum(costs[k]) / len(costs[k]), "p95": percentile(costs[k], 95)}
            for k in _order(costs)}


def _attribute(day: date, days: Mapping[date, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The (feature, model) whose spend on ``day`` rose most above its median on the other days."""
    best = None
    for (feature, model), costs in days[day]["feature_model"].items():
        spend = math.fsum(costs)
        others = [math.fsum(d["feature_model"].get((feature, model), ())) for other, d in days.items() if other != day]
        typical = statistics.median(others) if others else 0.0
        rise = spend - typical
        if best is None or rise > best["increase"]:
            best = {"feature": feature, "model": model, "spend": spend, "median_other_days": typical, "increase": rise}
    return best


def render_text(doc: Mapping[str, Any]) -> str:
    lines = []
    for item in doc["days"]:
        mean = "-" if item["mean_cost"] is None else _money(item["mean_cost"])
        p95 = "-" if item["p95_cost"] is None else _money(item["p95_cost"])
        lines.append(f"{item['day']}  {item['requests']:,} requests  spend {_money(item['spend'])}  mean/request {mean}  "
                     f"p95/request {p95}{'  ALERT' if item['alert'] else ''}")
        width = 2 + max((len(name) for key in ("feature", "model", "segment") for name in item[f"by_{key}"]), default=5)
        for key in ("feature", "model", "segment"):
            lines.append(f"  {key:<{width}}  {'spend':>9}  {'requests':>8}  {'mean/request':>12}  {'p95/request':>11}")
            for name, value in item[f"by_{key}"].items():
                per = item["per_request"][key][name]
                lines.append(f"    {name:<{width - 2}}  {_money(value):>9}  {per['requests']:>8,}  {_money(per['mean']):>12}  "
                             f"{_money(per['p95']):>11}")
    lines += [f"note: {n}" for n in doc["notes"]]
    if doc["alerts"]:
        lines.append(f"{len(doc['alerts'])} alert(s):")
        lines += [f"  {a}" for a in doc["alerts"]]
    elif doc["alert_line"] is not None:
        lines.append(f"no alert (alert line {_money(doc['alert_line'])} per day)")
    return "\n".join(lines) + "\n"
