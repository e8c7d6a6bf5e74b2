"""The HTML report's "Trends" tab (and ``llm-eval history --html``): per (suite, metric)
the daily means from the run history, the 7-day moving average, the baseline and the
alert line, and per suite the daily p95 latency against its alert line, as inline SVG.

Plain geometry from plain numbers (:class:`TrendSeries`); :mod:`pytest_llmeval.monitoring.trends`
turns a trend report into series, so this layer knows nothing of the history database.
The page that shows it is rendered by :mod:`.html` (a tab) or :func:`render_trends_page`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Sequence

__all__ = ["TrendChart", "TrendSeries", "TrendsView", "render_trends_page", "trend_chart"]

_LEFT, _PLOT_W, _PLOT_H, _TOP, _BOTTOM, _RIGHT = 48, 560, 150, 8, 22, 96


@dataclass(frozen=True)
class TrendSeries:
    """One series to draw: ``days`` (oldest first) with the day's value (None: no value
    that day) and moving average (None: too few days in the window, or not averaged);
    ``baseline`` and ``alert_line`` are horizontal lines (None: not drawn); ``alerts``
    marks the days that alerted. ``digits``: decimals of the labels."""

    title: str
    caption: str
    days: Sequence[date]
    values: Sequence[float | None]
    averages: Sequence[float | None]
    alerts: Sequence[bool]
    baseline: float | None = None
    alert_line: float | None = None
    value_label: str = "daily mean"
    digits: int = 4


@dataclass(frozen=True)
class TrendChart:
    """A line chart as SVG geometry (viewBox ``0 0 width height``): the plot spans x in
    [left, left + plot_w] and y in [top, top + plot_h]."""

    title: str
    caption: str
    dots: tuple[tuple[float, float, str], ...]  # (x, y, tooltip) per day with a value
    lines: tuple[str, ...]  # SVG polyline points of the moving average, broken where it is undefined
    alerts: tuple[tuple[float, float, str], ...]  # (x, y, tooltip) per alerting day
    refs: tuple[tuple[float, str, str], ...]  # horizontal lines: (y, css class "baseline"/"alert", label)
    x_ticks: tuple[tuple[float, str], ...]
    y_ticks: tuple[tuple[float, str], ...]
    legend: tuple[tuple[str, str], ...]  # (css class, label)
    left: int = _LEFT
    top: int = _TOP
    plot_w: int = _PLOT_W
    plot_h: int = _PLOT_H

    @property
    def width(self) -> int:
        return self.left + self.plot_w + _RIGHT

    @property
    def height(self) -> int:
        return self.top + self.plot_h + _BOTTOM


@dataclass(frozen=True)
class TrendsView:
    """What the Trends tab shows: where the history came from, the charts, every alert
    line (as ``llm-eval history`` prints them) and the notes (what was not checked)."""

    source: str
    charts: tuple[TrendChart, ...]
    alerts: tuple[str, ...]
    notes: tuple[str, ...]


def _fmt(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def trend_chart(series: TrendSeries) -> TrendChart:
    """The geometry of one series. Days are placed by date (a gap of days is a gap on the
    axis); the y range covers every value, average and reference line with 5% margin."""
    days = list(series.days)
    numbers = [v for v in (*series.values, *series.averages, series.baseline, series.alert_line) if v is not None]
    low, high = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.01 * (abs(low) or 1), high + 0.01 * (abs(high) or 1)
    margin = (high - low) * 0.05
    low, high = low - margin, high + margin
    first = days[0] if days else date.today()
    span = max(1, (days[-1] - first).days) if days else 1

    def x(day: date) -> float:
        return round(_LEFT + (day - first).days / span * _PLOT_W if len(days) > 1 else _LEFT + _PLOT_W / 2, 2)

    def y(value: float) -> float:
        return round(_TOP + (high - value) / (high - low) * _PLOT_H, 2)

    d = series.digits
    dots = tuple((x(day), y(v), f"{day.isoformat()}: {series.value_label} {_fmt(v, d)}")
                 for day, v in zip(days, series.values) if v is not None)
    lines, run = [], []
    for day, average in zip(days, series.averages):
        if average is None:
            if len(run) > 1:
                lines.append(" ".join(run))
            run = []
            continue
        run.append(f"{x(day)},{y(average)}")
    if len(run) > 1:
        lines.append(" ".join(run))
    alerts = []
    for day, value, average, alert in zip(days, series.values, series.averages, series.alerts):
        point = average if average is not None else value
        if alert and point is not None:
            alerts.append((x(day), y(point), f"{day.isoformat()}: ALERT ({_fmt(point, d)})"))
    refs = []
    if series.baseline is not None:
        refs.append((y(series.baseline), "baseline", f"baseline {_fmt(series.baseline, d)}"))
    if series.alert_line is not None:
        refs.append((y(series.alert_line), "alert", f"alert {_fmt(series.alert_line, d)}"))
    x_ticks = tuple((x(day), day.isoformat()) for day in sorted({days[0], days[len(days) // 2], days[-1]})) if days else ()
    y_ticks = tuple((y(v), _fmt(v, min(d, 3))) for v in (low + margin, (low + high) / 2, high - margin))
    legend = [("dot", series.value_label)]
    if any(a is not None for a in series.averages):
        legend.append(("average", "7-day average"))
    legend += [(cls, label.split(" ")[0]) for _, cls, label in refs]
    if alerts:
        legend.append(("alert-mark", f"{len(alerts)} alert day(s)"))
    return TrendChart(series.title, series.caption, dots, tuple(lines), tuple(alerts), tuple(refs), x_ticks, y_ticks,
                      tuple(legend))


def render_trends_page(view: TrendsView, title: str) -> str:
    """A self-contained page holding only the trends (``llm-eval history --html``)."""
    from .html import page_assets, render_template

    return render_template("history.html.j2", view=view, title=title, css=page_assets()["report.css"])
