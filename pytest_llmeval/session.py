"""The eval session: the one object behind every hook of a ``--llm-eval`` run.

Workers and the serial process plan suites, run cases and attach each case's result to
its test report. The controller (or the serial process) aggregates those results from
``pytest_runtest_logreport``, so serial and xdist runs take one path, and after a complete
run it judges the suites and sends one synthetic test report per (suite, metric) gate.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from . import __version__
from .baseline import BaselineStore, provenance
from .errors import LLMEvalError
from .gate import GatePolicy
from .models import Case, CaseResult
from .options import Settings
from .recorder import EvalRecorder
from .run import EvalRun, RunOutcome, SuiteOutcome
from .scorers import default_registry
from .suite import SuitePlan, plan_suite
from .terminal import summary_lines

__all__ = ["EvalSession"]

RECORDER_KEY = pytest.StashKey[EvalRecorder]()
PROPERTY_PREFIX = "llm_eval."


def suite_id_of(item: pytest.Item) -> str:
    """The node id of the marked function an item was parametrized from."""
    return item.nodeid[: len(item.nodeid) - len(item.name)] + item.originalname  # type: ignore[attr-defined]


class EvalSession:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.is_worker = hasattr(config, "workerinput")
        self.registry = default_registry()
        self.plans: dict[str, SuitePlan] = {}
        self.run = EvalRun()
        self.outcome: RunOutcome | None = None
        self.incomplete: str | None = None

    # -- collection -------------------------------------------------------------------

    def parametrize(self, metafunc: pytest.Metafunc, marker: pytest.Mark) -> None:
        suite_id = metafunc.definition.nodeid
        try:
            plan = plan_suite(
                suite_id, marker.args, marker.kwargs, metafunc.definition.path.parent, self.config.rootpath,
                self.registry, ini_thresholds=self.settings.thresholds, repeats_override=self.settings.repeats,
            )
        except LLMEvalError as exc:
            raise pytest.Collector.CollectError(str(exc)) from None
        self.plans[suite_id] = plan
        items = plan.items()
        metafunc.parametrize("llm_case", [case for _, case in items], ids=[item_id for item_id, _ in items])

    # -- running a case ---------------------------------------------------------------

    def recorder_for(self, item: pytest.Item, case: Case) -> EvalRecorder:
        plan = self.plans[suite_id_of(item)]
        recorder = EvalRecorder(case, plan.scorers, plan.case_thresholds)
        item.stash[RECORDER_KEY] = recorder
        if plan.target is not None:
            recorder.run_target(plan.target)
        return recorder

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        result = yield
        recorder = item.stash.get(RECORDER_KEY, None)
        if recorder is not None:
            problems = recorder.case_failures()
            if problems:
                pytest.fail("\n".join(problems), pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        report = yield
        recorder = item.stash.get(RECORDER_KEY, None)
        if recorder is not None and (report.when == "call" or (report.when == "setup" and report.failed)):
            result = self._case_result(item, recorder, report)
            report.llm_eval = result.to_dict()
            properties = [(PROPERTY_PREFIX + metric, value) for metric, value in result.scores.items()]
            if result.suite.repeats > 1:
                properties.append((PROPERTY_PREFIX + "repeat", result.repeat))
            if result.error:
                properties.append((PROPERTY_PREFIX + "error", result.error))
            item.user_properties.extend(properties)
            report.user_properties.extend(properties)
        return report

    def _case_result(self, item: pytest.Item, recorder: EvalRecorder, report: pytest.TestReport) -> CaseResult:
        if recorder.error is not None or report.when == "setup":
            outcome = "error"
        else:
            outcome = "failed" if report.failed else "passed"
        error = recorder.error
        if outcome == "error" and error is None:
            error = report.longreprtext.strip().splitlines()[-1] if report.longreprtext else "setup failed"
        case = recorder.case
        return CaseResult(self.plans[suite_id_of(item)].spec, case.id, case.content_hash, case.repeat, outcome, dict(recorder.scores), error)

    # -- aggregation and the gate (serial process or xdist controller) ------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        data = getattr(report, "llm_eval", None)
        if data is not None:
            self.run.add(CaseResult.from_dict(data))
        elif report.when not in ("setup", "call", "teardown") and report.failed:
            self.incomplete = f"a test process crashed ({report.nodeid})"  # xdist's report for a lost worker

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Iterator[None]:
        try:
            result = yield
        except BaseException as exc:  # -x / --maxfail (session.Failed), Ctrl-C, crashes
            self.incomplete = str(exc) or type(exc).__name__
            raise
        if self.is_worker or not self.run:
            return result
        if session.shouldfail or session.shouldstop:
            self.incomplete = str(session.shouldfail or session.shouldstop)
        if self.incomplete is not None:
            return result
        settings = self.settings
        policy = GatePolicy(settings.alpha, settings.max_drop, settings.max_drop_by_metric,
                            settings.non_inferiority, settings.enforce_thresholds)
        self.outcome = self.run.finish(
            BaselineStore(settings.baseline_dir, self.config.rootpath), policy, update=settings.update,
            plugin_version=__version__, provenance=lambda: provenance(self.config.rootpath),
        )
        reports = [report for suite in self.outcome.suites for report in gate_reports(suite)]
        session.testscollected += len(reports) // 3  # gates are test cases too: keeps progress at 100%
        for report in reports:
            self.config.hook.pytest_runtest_logreport(report=report)
        return result

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.incomplete is not None:
            terminalreporter.write_sep("=", "llm-eval: run incomplete", yellow=True)
            terminalreporter.write_line(f"{self.incomplete}: no gate was run and no baseline was written")
        elif self.outcome is not None:
            terminalreporter.write_sep("=", "llm-eval summary", bold=True)
            for line in summary_lines(self.outcome):
                terminalreporter.write_line(line)


def gate_reports(suite: SuiteOutcome) -> Iterator[pytest.TestReport]:
    """Synthetic setup/call/teardown reports, one test case per (suite, metric) verdict."""
    file_part = suite.spec.suite_id.partition("::")[0]
    base_props = [(PROPERTY_PREFIX + "dataset", suite.spec.dataset), (PROPERTY_PREFIX + "cases", suite.n_cases)]
    if suite.flaky_cases:
        base_props.append((PROPERTY_PREFIX + "flaky_cases", " ".join(suite.flaky_cases)))
    gates: list[tuple[str, bool, str, list[tuple[str, object]]]] = []
    if suite.baseline_error is not None:
        gates.append(("baseline", False, suite.baseline_error, []))
    for verdict in suite.verdicts:
        e, c = verdict.estimate, verdict.comparison
        props: list[tuple[str, object]] = [("mean", e.mean), ("ci_low", e.ci_low), ("ci_high", e.ci_high), ("n", e.n)]
        if verdict.threshold is not None:
            props.append(("threshold", verdict.threshold))
        if c is not None and c.n:
            props += [("baseline_mean", c.baseline_mean), ("change", c.change), ("change_ci_low", c.ci_low),
                      ("change_ci_high", c.ci_high), ("p_value", c.p_value), ("test", c.test), ("n_paired", c.n), ("mde", c.mde)]
            if verdict.p_adjusted is not None:
                props.append(("p_holm", verdict.p_adjusted))
        message = "\n".join([verdict.message(), *suite.notes()])
        gates.append((verdict.metric, verdict.passed, message, [(PROPERTY_PREFIX + k, v) for k, v in props]))

    for name, passed, message, props in gates:
        nodeid = f"{suite.spec.suite_id}::llm_eval_gate[{name}]"
        location = (file_part, None, f"{suite.spec.suite_id.partition('::')[2]}::llm_eval_gate[{name}]")
        properties = base_props + props
        yield pytest.TestReport(nodeid, location, {}, "passed", None, "setup", user_properties=properties)
        yield pytest.TestReport(nodeid, location, {}, "passed" if passed else "failed", None if passed else message, "call", user_properties=properties)
        yield pytest.TestReport(nodeid, location, {}, "passed", None, "teardown", user_properties=properties)
