"""What pytest prints per eval case while the cases run.

:class:`ScoreWords`: with ``-v``, a passed case's line carries its scores.

:class:`LiveProgress`: per suite, cases done of total, running mean per metric, errors
and spend so far, rewritten in place on a terminal while the cases run.

Registered on the controller (or the serial process) only when ``--llm-eval-progress``
is ``on``, or ``auto`` (the default) and stderr is a terminal outside CI (no ``CI``
environment variable) and pytest is not verbose. It writes to stderr with a carriage
return, so pytest's own progress tracking on stdout is untouched; eval items then print
no dot of their own (their outcome letter is empty unless they fail).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

import pytest

from ..models import Case

__all__ = ["LiveProgress", "ScoreWords", "progress_wanted"]


def progress_wanted(mode: str, verbosity: int, stream: TextIO | None = None) -> bool:
    """Whether to show the live line for ``--llm-eval-progress MODE``."""
    if mode != "auto":
        return mode == "on"
    stream = stream if stream is not None else sys.stderr
    return verbosity <= 0 and not os.environ.get("CI") and bool(getattr(stream, "isatty", lambda: False)())


class ScoreWords:
    """``PASSED (contains=0.000)`` on a passed eval case's ``-v`` line (controller or serial
    process). Only on that line: pytest's short summary (``-rA``) keeps its plain word."""

    def __init__(self) -> None:
        self._reporting: pytest.TestReport | None = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Any:
        self._reporting = report  # the terminal reporter asks for this report's word now
        try:
            return (yield)
        finally:
            self._reporting = None

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        data = getattr(report, "llm_eval", None)
        if report is not self._reporting or data is None or not report.passed or report.when != "call" or not data["scores"]:
            return None
        if hasattr(report, "wasxfail"):
            return None
        scores = " ".join(f"{metric}={value:.3f}" for metric, value in sorted(data["scores"].items()))
        return "passed", ".", f"PASSED ({scores})"


@dataclass
class _SuiteProgress:
    total: int
    done: int = 0
    errors: int = 0
    cost: float = 0.0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


class LiveProgress:
    """One live line per suite (the line of the suite whose case finished last)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.suites: dict[str, _SuiteProgress] = {}
        self.totals: dict[str, int] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Items per suite, where this process collected them (not an xdist controller)."""
        for item in session.items:
            case = getattr(item, "callspec", None) and item.callspec.params.get("llm_case")
            if isinstance(case, Case):
                suite_id = item.nodeid[: len(item.nodeid) - len(item.name)] + item.originalname  # type: ignore[attr-defined]
                self.totals[suite_id] = self.totals.get(suite_id, 0) + 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        """No dot for a passed eval case: the live line counts it (``-v`` keeps its line)."""
        if config.get_verbosity() <= 0 and getattr(report, "llm_eval", None) is not None and report.when == "call" and report.passed:
            return "passed", "", "PASSED"
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "llm_eval", None)
        if data is None:
            return
        spec = data["suite"]
        suite_id = spec["suite_id"]
        state = self.suites.get(suite_id)
        if state is None:
            state = self.suites[suite_id] = _SuiteProgress(self.totals.get(suite_id, spec["n_rows"] * spec["repeats"]))
        state.done += 1
        state.errors += data["outcome"] == "error"
        state.cost += sum(usage.get("cost", 0.0) for usage in data["usage"].values())
        for metric, value in data["scores"].items():
            state.sums[metric] = state.sums.get(metric, 0.0) + value
            state.counts[metric] = state.counts.get(metric, 0) + 1
        self.stream.write("\r" + line(suite_id, state) + "\x1b[K")
        if state.done >= state.total:
            self.stream.write("\n")
        self.stream.flush()


def line(suite_id: str, state: _SuiteProgress) -> str:
    """``llm-eval test_x.py::test_s 120/300 · contains 0.850 · errors 0 · $0.0123``."""
    means = " · ".join(f"{m} {state.sums[m] / state.counts[m]:.3f}" for m in sorted(state.sums))
    parts = [f"llm-eval {suite_id} {state.done}/{state.total}", *([means] if means else []), f"errors {state.errors}"]
    if state.cost:
        parts.append(f"${state.cost:.4f}")
    return " · ".join(parts)
