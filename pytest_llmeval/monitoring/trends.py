"""Quality trends over the run history: the daily series per (suite, metric), its 7-day
moving average, the baseline it is held against, and the alerts of the article's
monitoring block.

* Daily value: the mean of the runs' means on that (UTC) day.
* Moving average on day d: the mean of the daily values of the days d-6 .. d that had
  runs (a calendar window, so a gap in the runs does not stretch it). A day whose window
  holds fewer than ``min_days`` days with runs has no moving average: too little data
  is said, never alerted on.
* Baseline: the baseline mean the gate compared with in the newest run that had one (the
  committed baseline file); when no run was compared with a baseline, the mean of the
  daily values of the first 7 days of history, and the output says so.
* Quality alert: the moving average is at or below ``baseline x (1 + quality_alert_threshold)``
  (``monitoring.quality_alert_threshold``, a relative change such as -0.05).
* Latency alert: a day's p95 latency (the mean over its runs' p95) is above
  ``monitoring.latency_p95_alert_ms``.

Plain Python; the plot (:func:`plot`) imports matplotlib (extra ``plot``) when called;
:func:`html_view` is the same trend as the HTML report's Trends tab (inline SVG, no matplotlib).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ConfigError
from .history import LatencyPoint, MetricPoint

__all__ = ["WINDOW_DAYS", "AlertPolicy", "DayPoint", "LatencyTrend", "MetricTrend", "TrendReport", "build_trends",
           "html_view", "parse_since", "plot", "render_text"]

WINDOW_DAYS = 7
MIN_DAYS = 3
BASELINE_DAYS = 7
_SINCE = re.compile(r"^(\d+)\s*([dhw])$")


def parse_since(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, ``2w`` or an ISO date -> the naive-UTC start of the window."""
    text = text.strip()
    match = _SINCE.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now - {"d": timedelta(days=amount), "h": timedelta(hours=amount), "w": timedelta(weeks=amount)}[unit]
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        raise ConfigError(f"--since: expected a duration like 30d, 12h, 2w or an ISO date, got {text!r}") from None


@dataclass(frozen=True)
class AlertPolicy:
    quality_alert_threshold: float | None = None  # relative change, e.g. -0.05
    latency_p95_alert_ms: float | None = None
    window_days: int = WINDOW_DAYS
    min_days: int = MIN_DAYS

    def __post_init__(self) -> None:
        q = self.quality_alert_threshold
        if q is not None and not -1.0 <= q <= 0.0:
            raise ConfigError(f"quality_alert_threshold must be a relative change in [-1, 0] (e.g. -0.05), got {q!r}")
        if self.latency_p95_alert_ms is not None and not self.latency_p95_alert_ms > 0:
            raise ConfigError(f"latency_p95_alert_ms must be > 0, got {self.latency_p95_alert_ms!r}")
        if not 1 <= self.min_days <= self.window_days:
            raise ConfigError(f"min_days must be in [1, {self.window_days}], got {self.min_days!r}")


@dataclass(frozen=True)
class DayPoint:
    day: date
    runs: int
    value: float | None  # the day's mean
    moving_average: float | None  # None: fewer than min_days days in the window
    change: float | None = None  # moving average relative to the baseline
    alert: bool = False


@dataclass
class MetricTrend:
    suite_id: str
    metric: str
    baseline: float | None
    baseline_source: str  # "committed baseline", "first 7 days of history" or "none"
    days: list[DayPoint] = field(default_factory=list)

    @property
    def alert_days(self) -> list[date]:
        return [p.day for p in self.days if p.alert]


@dataclass
class LatencyTrend:
    suite_id: str
    days: list[DayPoint] = field(default_factory=list)  # value: the day's p95 (ms)

    @property
    def alert_days(self) -> list[date]:
        return [p.day for p in self.days if p.alert]


@dataclass
class TrendReport:
    since: datetime | None
    policy: AlertPolicy
    metrics: list[MetricTrend]
    latency: list[LatencyTrend]
    notes: list[str] = field(default_factory=list)

    @property
    def alerts(self) -> list[str]:
        """One line per alerting (series, day) inside the window, oldest first."""
        out = []
        threshold = self.policy.quality_alert_threshold
        for trend in self.metrics:
            for p in trend.days:
                if p.alert:
                    out.append(f"{p.day}: {trend.suite_id} {trend.metric}: 7-day average {p.moving_average:.4f} is "
                               f"{p.change:+.1%} from the baseline {trend.baseline:.4f} (alert at {threshold:+.1%})")
        for trend in self.latency:
            for p in trend.days:
                if p.alert:
                    out.append(f"{p.day}: {trend.suite_id}: p95 latency {p.value:,.0f} ms is above "
                               f"{self.policy.latency_p95_alert_ms:,.0f} ms")
        return sorted(out)

    @property
    def exit_code(self) -> int:
        return 1 if self.alerts else 0

    def to_dict(self) -> dict[str, Any]:
        def day(p: DayPoint) -> dict[str, Any]:
            return {"day": p.day.isoformat(), "runs": p.runs, "value": p.value, "moving_average": p.moving_average,
                    "change": p.change, "alert": p.alert}

        return {
            "since": self.since.isoformat() if self.since else None,
            "window_days": self.policy.window_days,
            "quality_alert_threshold": self.policy.quality_alert_threshold,
            "latency_p95_alert_ms": self.policy.latency_p95_alert_ms,
            "metrics": [{"suite_id": t.suite_id, "metric": t.metric, "baseline": t.baseline,
                         "baseline_source": t.baseline_source, "alert_days": [d.isoformat() for d in t.alert_days],
                         "days": [day(p) for p in t.days]} for t in self.metrics],
            "latency": [{"suite_id": t.suite_id, "alert_days": [d.isoformat() for d in t.alert_days],
                         "days": [day(p) for p in t.days]} for t in self.latency],
            "alerts": self.alerts,
            "notes": list(self.notes),
            "exit_code": self.exit_code,
        }


def _daily(points: Iterable[tuple[datetime, float | None]]) -> dict[date, tuple[int, float | None]]:
    by_day: dict[date, list[float]] = {}
    runs: dict[date, int] = {}
    for at, value in points:
        runs[at.date()] = runs.get(at.date(), 0) + 1
        if value is not None and not math.isnan(value):
            by_day.setdefault(at.date(), []).append(value)
    return {d: (runs[d], (math.fsum(by_day[d]) / len(by_day[d])) if d in by_day else None) for d in sorted(runs)}


def _moving(daily: Mapping[date, tuple[int, float | None]], policy: AlertPolicy) -> dict[date, float | None]:
    out: dict[date, float | None] = {}
    valued = {d: v for d, (_, v) in daily.items() if v is not None}
    for d in daily:
        window = [v for day, v in valued.items() if d - timedelta(days=policy.window_days - 1) <= day <= d]
        out[d] = math.fsum(window) / len(window) if len(window) >= policy.min_days else None
    return out


def build_trends(metric_points: Sequence[MetricPoint], latency_points: Sequence[LatencyPoint], policy: AlertPolicy,
                 since: datetime | None = None) -> TrendReport:
    """Trends from the whole history (so the first days of the window have a full moving
    average); only days at or after ``since`` are shown and alerted on."""
    shown = (lambda d: True) if since is None else (lambda d: d >= since.date())
    series: dict[tuple[str, str], list[MetricPoint]] = {}
    for point in metric_points:
        series.setdefault((point.suite_id, point.metric), []).append(point)
    metrics = []
    notes = []
    for (suite_id, metric), points in sorted(series.items()):
        daily = _daily((p.at, p.mean) for p in points)
        committed = [p.baseline_mean for p in points if p.baseline_mean is not None]
        if committed:
            baseline, source = committed[-1], "committed baseline"
        else:
            first = min(daily)
            early = [v for d, (_, v) in daily.items() if v is not None and d < first + timedelta(days=BASELINE_DAYS)]
            baseline = math.fsum(early) / len(early) if early else None
            source = f"first {BASELINE_DAYS} days of history" if early else "none"
        moving = _moving(daily, policy)
        trend = MetricTrend(suite_id, metric, baseline, source)
        for d, (runs, value) in daily.items():
            if not shown(d):
                continue
            ma = moving[d]
            change = (ma - baseline) / baseline if ma is not None and baseline else None
            alert = (policy.quality_alert_threshold is not None and change is not None
                     and change <= policy.quality_alert_threshold + 1e-12)
            trend.days.append(DayPoint(d, runs, value, ma, change, alert))
        if trend.days and all(p.moving_average is None for p in trend.days):
            notes.append(f"{suite_id} {metric}: fewer than {policy.min_days} days with runs in any {policy.window_days}-day "
                         "window: no moving average, no quality alert checked")
        if baseline is None:
            notes.append(f"{suite_id} {metric}: no baseline (no run was compared with one and no early history): "
                         "no quality alert checked")
        metrics.append(trend)
    if policy.quality_alert_threshold is None and metrics:
        notes.append("no quality_alert_threshold (monitoring.quality_alert_threshold or --quality-alert): "
                     "quality alerts not checked")

    latency = []
    by_suite: dict[str, list[LatencyPoint]] = {}
    for lp in latency_points:
        by_suite.setdefault(lp.suite_id, []).append(lp)
    for suite_id, lps in sorted(by_suite.items()):
        daily = _daily((p.at, p.latency_p95_ms) for p in lps)
        if all(v is None for _, v in daily.values()):
            continue
        lt = LatencyTrend(suite_id)
        for d, (runs, value) in daily.items():
            if shown(d):
                alert = policy.latency_p95_alert_ms is not None and value is not None and value > policy.latency_p95_alert_ms
                lt.days.append(DayPoint(d, runs, value, None, None, alert))
        latency.append(lt)
    if not metrics:
        notes.append("the history holds no run for this selection")
    return TrendReport(since, policy, metrics, latency, notes)


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def render_text(report: TrendReport) -> str:
    lines = []
    for trend in report.metrics:
        base = "-" if trend.baseline is None else f"{trend.baseline:.4f}"
        lines.append(f"{trend.suite_id}  {trend.metric}  baseline {base} ({trend.baseline_source})")
        lines.append(f"  {'day':<10}  {'runs':>4}  {'mean':>7}  {'7d avg':>7}  {'change':>7}")
        for p in trend.days:
            change = "-" if p.change is None else f"{p.change:+.1%}"
            lines.append(f"  {p.day.isoformat():<10}  {p.runs:>4}  {_fmt(p.value):>7}  {_fmt(p.moving_average):>7}  "
                         f"{change:>7}{'  ALERT' if p.alert else ''}")
    for lt in report.latency:
        lines.append(f"{lt.suite_id}  p95 latency (ms)")
        for p in lt.days:
            lines.append(f"  {p.day.isoformat():<10}  {p.runs:>4}  {_fmt(p.value, ',.0f'):>7}{'  ALERT' if p.alert else ''}")
    lines += [f"note: {n}" for n in report.notes]
    alerts = report.alerts
    if alerts:
        lines.append(f"{len(alerts)} alert(s):")
        lines += [f"  {a}" for a in alerts]
    else:
        lines.append("no alert")
    return "\n".join(lines) + "\n"


def plot(report: TrendReport, path: Path) -> None:
    """Write the trend as SVG or PNG (by the file suffix): per (suite, metric) the daily
    means, the 7-day average, the baseline and the alert line; alert days marked."""
    suffix = path.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise ConfigError(f"--plot {path}: use a .svg or .png file")
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'pytest-llmeval[plot]'") from None
    trends = [t for t in report.metrics if t.days] or []
    figure, axes = pyplot.subplots(max(1, len(trends)), 1, figsize=(9, 3.2 * max(1, len(trends))), squeeze=False)
    try:
        for ax, trend in zip(axes[:, 0], trends):
            days = [p.day for p in trend.days]
            ax.plot(days, [p.value for p in trend.days], "o", ms=3, color="#888888", label="daily mean")
            ax.plot(days, [p.moving_average for p in trend.days], "-", color="#1f77b4", label="7-day average")
            if trend.baseline is not None:
                ax.axhline(trend.baseline, color="#2ca02c", ls="--", lw=1, label=f"baseline ({trend.baseline_source})")
                q = report.policy.quality_alert_threshold
                if q is not None:
                    ax.axhline(trend.baseline * (1 + q), color="#d62728", ls=":", lw=1, label=f"alert ({q:+.0%})")
            alert = [p for p in trend.days if p.alert]
            if alert:
                ax.plot([p.day for p in alert], [p.moving_average for p in alert], "x", color="#d62728", label="alert")
            ax.set_title(f"{trend.suite_id}  {trend.metric}", fontsize=9)
            ax.legend(fontsize=7, loc="lower left")
            ax.tick_params(labelsize=7)
        figure.autofmt_xdate()
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format=suffix[1:], metadata={"Date": None} if suffix == ".svg" else None)
    finally:
        pyplot.close(figure)


def html_view(report: TrendReport, source: str) -> Any:
    """The trend as the HTML Trends tab shows it (a
    :class:`~pytest_llmeval.reporting.html_trends.TrendsView`): per (suite, metric) the
    daily means, the 7-day average, the baseline and the alert line; per suite the daily
    p95 latency and its alert line; the alerts and notes as :func:`render_text` words
    them. ``source``: where the history was read (shown; a URL with its password masked)."""
    from ..reporting.html_trends import TrendSeries, TrendsView, trend_chart

    charts = []
    q = report.policy.quality_alert_threshold
    for t in report.metrics:
        if not t.days:
            continue
        line = t.baseline * (1 + q) if t.baseline is not None and q is not None else None
        caption = (f"baseline {_fmt(t.baseline)} ({t.baseline_source})" if t.baseline is not None else "no baseline") + (
            f" · alert at {q:+.1%}" if line is not None else " · no quality alert checked")
        charts.append(trend_chart(TrendSeries(
            f"{t.suite_id}  {t.metric}", caption, [p.day for p in t.days], [p.value for p in t.days],
            [p.moving_average for p in t.days], [p.alert for p in t.days], t.baseline, line)))
    limit = report.policy.latency_p95_alert_ms
    for lt in report.latency:
        if not lt.days:
            continue
        caption = f"alert above {limit:,.0f} ms" if limit is not None else "no latency alert checked"
        charts.append(trend_chart(TrendSeries(
            f"{lt.suite_id}  p95 latency (ms)", caption, [p.day for p in lt.days], [p.value for p in lt.days],
            [None] * len(lt.days), [p.alert for p in lt.days], None, limit, value_label="daily p95", digits=0)))
    return TrendsView(source, tuple(charts), tuple(report.alerts), tuple(report.notes))
