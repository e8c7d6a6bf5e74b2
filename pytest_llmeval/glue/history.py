"""The run-history output: after a complete, judged run, record its report document in
the history database (``--llm-eval-history`` / ini ``llm_eval_history``), and read back
the trends of the run's suites for the HTML report's Trends tab.

Opened at configuration, on the controller only, so a missing ``history`` extra, an
unreachable database or an unusable ``llm_eval_history_alerts`` config is a usage error
before any model is paid for. A write (or trend read) that fails after the gate is a
warning, never a changed verdict.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from ..monitoring.history import HistoryError, HistoryStore
from ..monitoring.trends import AlertPolicy

__all__ = ["TREND_DAYS", "HistoryOutput", "HistoryWriteWarning"]

TREND_DAYS = 30  # the Trends tab shows the last 30 days, as `llm-eval history` does by default


class HistoryWriteWarning(UserWarning):
    """The run was judged, but recording it in the run history failed."""


class HistoryOutput:
    """``alerts``: an llmops-config.yaml whose ``monitoring`` block sets the Trends tab's
    alert lines (None: the tab draws none and says so)."""

    def __init__(self, url: str, cases: bool, alerts: Path | None = None) -> None:
        self.policy = AlertPolicy()
        if alerts is not None:
            from ..check import monitoring_block

            block = monitoring_block(alerts)  # ConfigError / ConfigLoadError: a usage error
            self.policy = AlertPolicy(block.get("quality_alert_threshold"), block.get("latency_p95_alert_ms"))
        self.store = HistoryStore(url)  # HistoryError: the plugin turns it into a UsageError
        self.cases = cases
        self.recorded = False
        self.line: str | None = None  # what the terminal summary says about it

    def write(self, doc: Mapping[str, Any]) -> None:
        """Record a judged run; say why an unjudged one (interrupted, deferred shard) is not."""
        if not doc.get("complete") or doc.get("verdict") not in ("pass", "fail"):
            self.line = f"history: run not recorded ({doc.get('verdict')} runs are not history)"
            return
        try:
            run_id = self.store.record(doc, cases=self.cases)
        except HistoryError as exc:
            self.line = f"history: NOT recorded: {exc}"
            warnings.warn(HistoryWriteWarning(str(exc)), stacklevel=1)
            return
        self.recorded = True
        self.line = f"history: recorded run {run_id} in {self.store.shown}"

    def trends(self, doc: Mapping[str, Any]) -> Any:
        """The run's suites' trends over the last :data:`TREND_DAYS` days (a
        :class:`~pytest_llmeval.reporting.html_trends.TrendsView`), once this run is
        recorded; None otherwise, or when the history cannot be read (a warning)."""
        if not self.recorded:
            return None
        from ..monitoring.trends import build_trends, html_view

        suites = {suite["suite_id"] for suite in doc.get("suites", [])}
        since = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=TREND_DAYS)
        try:
            metrics = [p for p in self.store.metric_points() if p.suite_id in suites]
            latency = [p for p in self.store.latency_points() if p.suite_id in suites]
        except HistoryError as exc:
            warnings.warn(HistoryWriteWarning(f"the HTML report has no Trends tab: {exc}"), stacklevel=1)
            return None
        return html_view(build_trends(metrics, latency, self.policy, since), self.store.shown)

    def close(self) -> None:
        self.store.close()
