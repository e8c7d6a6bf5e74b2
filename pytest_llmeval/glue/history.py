"""The run-history output: after a complete, judged run, record its report document in
the history database (``--llm-eval-history`` / ini ``llm_eval_history``).

Opened at configuration, on the controller only, so a missing ``history`` extra or an
unreachable database is a usage error before any model is paid for. A write that fails
after the gate is a warning, never a changed verdict.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

from ..monitoring.history import HistoryError, HistoryStore

__all__ = ["HistoryOutput", "HistoryWriteWarning"]


class HistoryWriteWarning(UserWarning):
    """The run was judged, but recording it in the run history failed."""


class HistoryOutput:
    def __init__(self, url: str, cases: bool) -> None:
        self.store = HistoryStore(url)  # HistoryError: the plugin turns it into a UsageError
        self.cases = cases
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
        self.line = f"history: recorded run {run_id} in {self.store.shown}"

    def close(self) -> None:
        self.store.close()
