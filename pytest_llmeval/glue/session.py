"""The eval session: the one object behind every hook of a ``--llm-eval`` run.

Workers and the serial process plan suites, run cases (app calls concurrently, through
one :class:`~pytest_llmeval.core.runner.SuiteRunner` per suite) and attach each case's result
to its test report. The controller (or the serial process) aggregates those results from
``pytest_runtest_logreport``, so serial and xdist runs take one path, and after a complete
run it judges the suites and sends one synthetic test report per gate.
"""

from __future__ import annotations

import hashlib
import re
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Iterator

import pytest

from .. import __version__
from ..core.inflight import FlightLog, record_crash
from ..core.recorder import AppError, EvalRecorder
from ..core.review import ReviewFile
from ..core.run import EvalRun, RunOutcome, SuiteOutcome
from ..core.runner import SuiteRunner, case_context
from ..core.suite import SuitePlan, plan_suite
from ..errors import LLMEvalError
from ..gate.baseline import BaselineStore, provenance
from ..gate.comparison import PairComparison
from ..gate.verdicts import GatePolicy
from ..models import Case, CaseResult, SuiteSpec
from ..prompts import PromptLog, PromptRegistry, set_default_registry
from ..providers import runtime
from ..providers.redaction import redact, redact_json
from ..reporting.html import require_jinja2
from ..reporting.progress import RunProgress, refuse_unsafe_outputs
from ..reporting.report import build_report, run_block, suites_compared_before
from ..reporting.terminal import summary_lines
from ..scorers import default_registry
from .options import Settings
from .progress import LiveProgress, ScoreWords, progress_wanted
from .rounds import WORKEROUTPUT_KEY, AutoRounds

RECORDING_ERROR_KEY = "llm_eval_recording_error"  # workeroutput: a cache entry the worker could not write

__all__ = ["EvalSession"]

RECORDER_KEY = pytest.StashKey[EvalRecorder]()
ATTEMPTS_KEY = pytest.StashKey[int]()  # runs of an item so far (pytest-rerunfailures runs it again)
PROPERTIES_KEY = pytest.StashKey[list]()  # the user properties this plugin added to an item
PROPERTY_PREFIX = "llm_eval."
GATE_ID = re.compile(r"^(?P<suite>.+)::llm_eval_gate\[[^\]]*\]$")  # a gate's node id, as FAILED lines print it
REASON_CHARS = 200  # judge reasons in junit properties
REPORT_REASON_CHARS = 1000  # and in the report


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def one_message(exc: BaseException) -> str:
    """A case's failure in one message: what failed, and where the app raised it (when
    the app's own exception caused it); a provider or cache error says it all."""
    cause = exc.__cause__
    if cause is None or isinstance(cause, LLMEvalError) or cause.__traceback__ is None:
        return str(exc)
    frame = traceback.extract_tb(cause.__traceback__)[-1]
    return f"{exc}\n  raised at {frame.filename}:{frame.lineno} in {frame.name} (--tb=long shows the traceback)"


def gate_suite(node_id: str) -> str | None:
    """The suite node id of a gate node id (``f.py::test_x::llm_eval_gate[contains]`` ->
    ``f.py::test_x``); None for any other id."""
    match = GATE_ID.match(node_id)
    return match["suite"] if match else None


def shard_of(case_id: str, count: int) -> int:
    """Which shard (1..count) a case belongs to: stable across machines and runs."""
    return int(hashlib.sha256(case_id.encode("utf-8")).hexdigest()[:8], 16) % count + 1


def suite_id_of(item: pytest.Item) -> str:
    """The node id of the marked function an item was parametrized from."""
    return item.nodeid[: len(item.nodeid) - len(item.name)] + item.originalname  # type: ignore[attr-defined]


def case_of(item: pytest.Item) -> Case | None:
    """The eval case an item runs (its ``llm_case`` parameter), None for other tests."""
    case = getattr(item, "callspec", None) and item.callspec.params.get("llm_case")  # type: ignore[attr-defined]
    return case if isinstance(case, Case) else None


class EvalSession:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.is_worker = hasattr(config, "workerinput")
        self.registry = default_registry()
        # Historic: conftest files and plugins registered later are called too.
        config.hook.pytest_llmeval_register_scorers.call_historic(kwargs={"registry": self.registry})
        self.plans: dict[str, SuitePlan] = {}
        self.runners: dict[str, SuiteRunner] = {}
        self._selected: dict[str, list[Case]] | None = None
        self._specs: dict[str, tuple[dict[str, Any], SuiteSpec]] = {}
        self.run = EvalRun()
        self.outcome: RunOutcome | None = None
        self.incomplete: str | None = None
        self.started_at = datetime.now(UTC).replace(microsecond=0).isoformat()
        runtime.set_defaults(runtime.Defaults(settings.provider, self._cache(), self._prices(), settings.judge))
        if settings.capture:
            from ..providers import capture

            capture.enable()
        if settings.otel:
            from ..providers import otel

            try:
                otel.enable()
            except ImportError as exc:
                raise pytest.UsageError(f"ini llm_eval_otel: {exc}") from None
        self.prompt_registry = PromptRegistry(settings.prompts_dir)
        set_default_registry(self.prompt_registry)
        self._git: dict[str, str] | None = None
        self.file_warnings: list[str] = []  # e.g. a partial prompt-log line set aside
        self.recording_error: str | None = None  # a cache entry the writer thread could not write
        self.rootdir_mismatch: str | None = None  # an xdist worker whose rootdir is not the controller's
        self._previous_report: tuple[Path | None, str | None] = (None, None)
        self.progress = RunProgress(settings.report, settings.markdown, self._run_block, self._display, html=settings.html)
        if not self.is_worker:
            refuse_unsafe_outputs({"report": settings.report, "markdown": settings.markdown, "html": settings.html},
                                  inputs={"prompt log": settings.prompt_log, "price file": settings.price_file},
                                  folders={"cache": settings.cache_dir})
            # Read before it is replaced: which suites the previous report compared with a baseline.
            self._previous_report = _previous_report(settings.report) if not settings.update else (None, None)
            self.progress.enter("start")  # from now on the report path never shows an older run's report
        self.rounds = AutoRounds(self)  # repeats="auto": further rounds after the items
        self.reviews = ReviewFile(settings.review_file)
        if not self.is_worker:
            config.pluginmanager.register(ScoreWords(), "llmeval-score-words")
            if progress_wanted(settings.progress, config.get_verbosity()):
                config.pluginmanager.register(LiveProgress(), "llmeval-progress")
        if not self.is_worker and config.pluginmanager.hasplugin("html"):
            from .html_plugin import PytestHtmlSummary

            config.pluginmanager.register(PytestHtmlSummary(config, self._document, settings.html), "llmeval-pytest-html")
        if settings.html is not None:
            require_jinja2()  # before any model is paid for
        self.history = None
        if settings.history is not None and not self.is_worker:
            from .history import HistoryOutput

            self.history = HistoryOutput(settings.history, settings.history_cases, settings.history_alerts)
        # xdist: the controller names a folder where workers journal their app calls (.inflight).
        self._flight_dir: str | None = None
        self._node_errors: dict[str, str] = {}
        workerinput = getattr(config, "workerinput", {})
        self.flight = FlightLog(workerinput["llm_eval_flight_dir"], workerinput["workerid"]) if "llm_eval_flight_dir" in workerinput else None
        # A gate is judged on its whole suite: its node id selects the suite's cases.
        config.args[:] = [gate_suite(arg) or arg for arg in config.args]

    def _cache(self) -> Any:
        if self.settings.cache_mode == "off":
            return None
        from ..providers.cache import ResponseCache

        return ResponseCache(self.settings.cache_dir, self.settings.cache_mode)

    def _prices(self) -> Any:
        from ..providers.pricing import PriceTable, load_price_file, parse_price_lines

        overrides = parse_price_lines(self.settings.price_lines, "ini llm_eval_prices")
        if self.settings.price_file is not None:
            overrides = {**load_price_file(self.settings.price_file), **overrides}
        return PriceTable.default().with_overrides(overrides)

    # -- collection -------------------------------------------------------------------

    def parametrize(self, metafunc: pytest.Metafunc, marker: pytest.Mark) -> None:
        suite_id = metafunc.definition.nodeid
        if suite_id.startswith("::"):
            # pytest names a file outside its rootdir by nothing: two such files with the same
            # function would share one suite id and one baseline.
            raise pytest.Collector.CollectError(
                f"{metafunc.definition.path}: this eval's file lies outside pytest's rootdir {self.config.rootpath}, so "
                f"its node id {suite_id!r} names no file and cannot key a suite or its baseline; run pytest from the "
                "project that holds it, or pass --rootdir at a folder above it")
        try:
            plan = plan_suite(
                suite_id, marker.args, marker.kwargs, metafunc.definition.path.parent, self.config.rootpath,
                self.registry, ini_thresholds=self.settings.thresholds, repeats_override=self.settings.repeats, default_repeats=self.settings.default_repeats,
                ini_budgets=self.settings.budgets,
                run_variants=self.settings.variants, prompt_lookup=self._prompt_version, dataset_cache=self.settings.dataset_cache,
            )
        except LLMEvalError as exc:
            raise pytest.Collector.CollectError(str(exc)) from None
        if plan.target is not None and "llm_eval" not in metafunc.fixturenames:
            raise pytest.Collector.CollectError(
                f"{suite_id}: the marker has target=, so the test must request the llm_eval fixture "
                "(it calls the app and holds its output)"
            )
        self.plans[suite_id] = plan
        items = plan.items()
        metafunc.parametrize("llm_case", [case for _, case in items], ids=[item_id for item_id, _ in items])

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Iterator[None]:
        """--lf / --ff after a gate failed: its suite's cases count as failed too, so the
        gate is judged again on the whole suite (pytest's lfplugin, an outer wrapper,
        filters a module's items by its last-failed ids after this)."""
        report = yield
        lfplugin = self.config.pluginmanager.get_plugin("lfplugin")
        if lfplugin is None or not getattr(lfplugin, "active", False) or not report.result:
            return report
        suites = {gate_suite(str(node_id)) for node_id in lfplugin.lastfailed} - {None}
        for node in report.result:
            if isinstance(node, pytest.Item) and hasattr(node, "originalname") and suite_id_of(node) in suites:
                lfplugin.lastfailed[getattr(node, "id", node.nodeid)] = True  # pytest 9 keys by NodeId
        return report

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Refuse eval items parametrized on more than the case; then ``--llm-eval-shard I/N``
        keeps the eval cases whose id hashes to shard I."""
        backends: dict[str, set[Any]] = {}
        for item in items:
            params = getattr(item, "callspec", None) and item.callspec.params
            if not params or "llm_case" not in params:
                continue
            if "anyio_backend" in params:  # @pytest.mark.anyio: one backend per suite composes
                backends.setdefault(suite_id_of(item), set()).add(repr(params["anyio_backend"]))
            others = sorted(set(params) - {"llm_case", "anyio_backend"})
            if others:
                raise pytest.UsageError(
                    f"{suite_id_of(item)}: an llm_eval suite cannot also be parametrized ({', '.join(others)}): its cases "
                    "would share ids. Write one marked test per variant (or use repeats=)."
                )
        for suite_id, found in backends.items():
            if len(found) > 1:
                raise pytest.UsageError(
                    f"{suite_id}: an llm_eval suite runs each case once, but anyio_backend has {len(found)} values "
                    f"({', '.join(sorted(found))}): override the anyio_backend fixture to return one backend "
                    "(e.g. 'asyncio') for eval tests, or write one marked test per backend."
                )
        if self.settings.shard is None:
            return
        index, count = self.settings.shard
        keep, drop = [], []
        for item in items:
            case = case_of(item)
            if case is not None and shard_of(case.id, count) != index:
                drop.append(item)
            else:
                keep.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Keep each suite on one worker (its calls are made once, concurrently there)."""
        if config.getvalue("dist") not in ("load", "worksteal"):
            return None
        from .scheduling import SuiteScheduling

        return SuiteScheduling(config, log)

    # -- a worker crashed (xdist controller) ---------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self._flight_dir is None:
            import tempfile

            self._flight_dir = tempfile.mkdtemp(prefix="llm-eval-flight-")
        node.workerinput["llm_eval_flight_dir"] = self._flight_dir
        spec = node.gateway.spec
        if spec.popen and not spec.chdir:  # a local worker in this folder must choose the same rootdir
            node.workerinput["llm_eval_rootdir"] = str(self.config.rootpath)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """Blame a worker's crash on the case whose app call was running, not on the item
        pytest happened to be running (calls run ahead of items); see core/inflight.py."""
        worker = report.node.gateway.id  # type: ignore[attr-defined]
        reason = f"worker {worker!r} crashed ({self._node_errors.get(worker) or 'no exit reason given'})"
        flying = record_crash(self._flight_dir, worker, reason) if self._flight_dir else []
        blamed = ", ".join(f"{suite}[{case}]" for suite, case, _ in flying)
        self.incomplete = f"{reason}" + (f" while app calls were in flight for {blamed}" if flying else f" while running {crashitem}")
        from xdist.scheduler import LoadScopeScheduling

        if flying and isinstance(sched, LoadScopeScheduling):  # it requeues the unfinished item: run it again
            report.outcome = "rerun"  # type: ignore[assignment]

    # -- running a case ---------------------------------------------------------------

    def recorder_for(self, item: pytest.Item, case: Case) -> EvalRecorder:
        suite_id = suite_id_of(item)
        plan = self.plans[suite_id]
        attempt = item.stash[ATTEMPTS_KEY] = item.stash.get(ATTEMPTS_KEY, 0) + 1
        if self.rootdir_mismatch is not None:  # every case errors, unrun: the run fails, naming the cause
            pytest.fail(self.rootdir_mismatch, pytrace=False)
        if plan.target is None:
            recorder = plan.new_recorder(case)
            item.stash[RECORDER_KEY] = recorder
            return recorder
        # A rerun (pytest-rerunfailures) calls the app again: a flaky call gets a new chance.
        recorder = self._runner(item, suite_id, plan).result(case, again=attempt > 1)
        item.stash[RECORDER_KEY] = recorder
        try:
            recorder.raise_failure()
        except (AppError, LLMEvalError) as exc:
            # One message per case; the exception chain (the app's traceback) with --tb=long.
            if self.config.option.tbstyle == "long":
                raise
            message = one_message(exc)
        else:
            return recorder
        pytest.fail(message, pytrace=False)  # outside the except: no "during handling" chain

    def _runner(self, item: pytest.Item, suite_id: str, plan: SuitePlan) -> SuiteRunner:
        runner = self.runners.get(suite_id)
        if runner is None:
            if self._selected is None:  # one pass over the session: each suite's cases in item order
                self._selected = {}
                for selected in item.session.items:
                    case = case_of(selected)
                    if case is not None:
                        self._selected.setdefault(suite_id_of(selected), []).append(case)
            runner = SuiteRunner(plan.target, plan.new_recorder,
                                 self.settings.concurrency, self._selected.get(suite_id, []), self._suite_config(suite_id),
                                 self.flight, suite_id)
            self.runners[suite_id] = runner
        return runner

    def _prompt_version(self, name: str) -> tuple[str, str | None]:
        """(version, label) of a registry prompt, for a variant's ``prompt`` setting."""
        prompt = self.prompt_registry.get(name)
        return prompt.version, prompt.label

    def _suite_config(self, suite_id: str) -> Any:
        """The suite's marker provider={...} over the run's provider settings (None: none)."""
        overrides = self.plans[suite_id].provider
        return runtime.current_config().with_overrides(overrides) if overrides else None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        recorder = item.stash.get(RECORDER_KEY, None)
        if recorder is None:
            return (yield)
        # Calls the body makes through our clients count against this case.
        with case_context(recorder, self._suite_config(suite_id_of(item))):
            result = yield
        problems = recorder.case_failures()
        review = self.reviews.get(suite_id_of(item), recorder.case.id) if self.settings.review_override else None
        if review is not None and review.content_hash == recorder.case.content_hash:
            if review.verdict == "fail":
                pytest.fail(f"a reviewer marked this case fail ({self.reviews.path.name}:{review.line}): {review.note}", pytrace=False)
            problems = []  # a reviewer passed it: the per-case minimums give way
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        report = yield
        recorder = item.stash.get(RECORDER_KEY, None)
        if recorder is None and report.when == "setup" and report.failed:
            recorder = self._unrun_case(item)  # a fixture failed before the case ran: an errored case, not none
        if recorder is not None and (report.when == "call" or (report.when == "setup" and report.failed)):
            result = self._case_result(item, recorder, report)
            self.rounds.keep(suite_id_of(item), result)
            report.llm_eval = redact_json(result.to_dict())
            properties = [(name, redact(value) if isinstance(value, str) else value) for name, value in _case_properties(result)]
            earlier = item.stash.get(PROPERTIES_KEY, [])  # an earlier attempt's: junit keeps one set
            item.user_properties[:] = [p for p in item.user_properties if not any(p is e for e in earlier)]
            report.user_properties[:] = [p for p in report.user_properties if not any(p is e for e in earlier)]
            item.stash[PROPERTIES_KEY] = properties
            item.user_properties.extend(properties)
            report.user_properties.extend(properties)
        if report.longrepr is not None and not isinstance(report.longrepr, tuple):  # failure text: terminal and junit
            text = report.longreprtext
            if redact(text) != text:
                report.longrepr = redact(text)
        return report

    def _unrun_case(self, item: pytest.Item) -> EvalRecorder | None:
        """An empty recorder for an eval case that never ran (None for other tests), so it
        counts as errored: a run whose cases all failed in set-up is no passing run."""
        case = case_of(item)
        plan = self.plans.get(suite_id_of(item)) if case is not None else None
        if plan is None:
            return None
        recorder = item.stash[RECORDER_KEY] = plan.new_recorder(case)
        return recorder

    def _case_result(self, item: pytest.Item, recorder: EvalRecorder, report: pytest.TestReport) -> CaseResult:
        if recorder.error is not None or report.when == "setup":
            outcome = "error"
        else:
            outcome = "failed" if report.failed else "passed"
        error, kind = recorder.error, recorder.error_kind
        if outcome == "error" and error is None:
            crash = getattr(report.longrepr, "reprcrash", None)  # "RuntimeError: database down", not the file:line
            error = crash.message if crash is not None else (report.longreprtext.strip().splitlines() or ["setup failed"])[-1]
            kind = "setup"
        case = recorder.case
        models = tuple(sorted({f"{r.provider}:{r.model}" for r in recorder.ledger.records if r.kind == "app"}))
        inputs, expected = recorder.row_text(self.settings.output_chars)
        return CaseResult(self.plans[suite_id_of(item)].spec, case.id, case.content_hash, case.repeat, outcome,
                          dict(recorder.scores), error, kind, recorder.latency_ms, recorder.ledger.summary(),
                          models, recorder.output_text(self.settings.output_chars), dict(recorder.prompts),
                          {m: _truncate(r, REPORT_REASON_CHARS) for m, r in recorder.reasons.items()},
                          review_notes=tuple(_truncate(n, REPORT_REASON_CHARS) for n in recorder.review_notes),
                          inputs=inputs, expected=expected, variant=case.variant,
                          attempts=item.stash.get(ATTEMPTS_KEY, 1))

    # -- aggregation and the gate (serial process or xdist controller) ------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        data = getattr(report, "llm_eval", None)
        if report.outcome == "rerun":  # rerunfailures (or a crash's requeue) runs it again: the last attempt counts
            return
        if data is not None:
            if self.progress.phase == "start":
                self.progress.enter("cases")
            self.run.add(CaseResult.from_dict(data, suite=self._spec(data["suite"])))
        elif report.when not in ("setup", "call", "teardown") and report.failed:
            self.incomplete = f"a test process crashed ({report.nodeid})"  # xdist's report for a lost worker

    def _spec(self, data: dict[str, Any]) -> SuiteSpec:
        """The suite spec of a case result, parsed once per suite rather than per case."""
        known = self._specs.get(data["suite_id"])
        if known is None or known[0] != data:
            known = self._specs[data["suite_id"]] = (data, SuiteSpec.from_dict(data))
        return known[1]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Iterator[None]:
        try:
            result = yield
        except BaseException as exc:  # -x / --maxfail (session.Failed), Ctrl-C, crashes
            self.incomplete = self.progress.stopped_reason(str(exc) or type(exc).__name__)
            raise
        finally:
            self._close_runners()
        self._run_auto_rounds(session)
        if self.is_worker:
            return result
        if session.shouldfail or session.shouldstop:
            self.incomplete = self.progress.stopped_reason(str(session.shouldfail or session.shouldstop))
        if self.run and self.incomplete is None and self.settings.shard is None:
            try:
                self._judge_and_write(session)
            except BaseException as exc:  # Ctrl-C during the gate or a write: the report must say so
                self.outcome = None
                self.incomplete = self.progress.stopped_reason(f"interrupted ({type(exc).__name__}: {exc})" if str(exc)
                                                               else f"interrupted ({type(exc).__name__})")
                raise
        self.progress.finished = self.incomplete is None
        return result

    def _flag_lost_baselines(self, outcome: RunOutcome, store: BaselineStore) -> None:
        """A suite without its baseline that had one before (previous report, git) is warned
        about loudly: a deleted or moved baseline must not turn into a quiet skip."""
        path, text = self._previous_report
        compared_before = (lambda: suites_compared_before(text, path)) if path else set
        self.file_warnings += outcome.flag_lost_baselines(store, self.config.rootpath, compared_before)

    def _judge_and_write(self, session: pytest.Session) -> None:
        """The gate, then the baseline and prompt-log writes of an update run, each a phase."""
        settings = self.settings
        policy = self._policy()
        store = BaselineStore(settings.baseline_dir, self.config.rootpath)
        self.progress.enter("gate")
        outcome = self.run.judge(store, policy, update=settings.update, sequential=self.rounds.gate_levels(policy.alpha),
                                 reviews=self.reviews)
        if not settings.update:
            self._flag_lost_baselines(outcome, store)
        if settings.update:
            self.progress.enter("baseline write")
            try:
                self.run.write_baselines(outcome, store, plugin_version=__version__,
                                         provenance=lambda: provenance(self.config.rootpath),
                                         baseline_output_chars=settings.baseline_output_chars)
            finally:
                for path in store.written:
                    self.progress.wrote(path)
            self.progress.enter("prompt log")
            entries = prompt_log_entries(outcome, self.config.rootpath, self.prompt_registry)
            if entries:
                log = PromptLog(settings.prompt_log)
                log.append(entries)
                self.progress.wrote(settings.prompt_log)
                self.file_warnings += log.warnings
        self.outcome = outcome
        reports = [report for suite in outcome.suites for report in gate_reports(suite)]
        session.testscollected += len(reports) // 3  # gates are test cases too: keeps progress at 100%
        for report in reports:
            self.config.hook.pytest_runtest_logreport(report=report)

    def _policy(self) -> GatePolicy:
        settings = self.settings
        return GatePolicy(settings.alpha, settings.max_drop, settings.max_drop_by_metric,
                          settings.non_inferiority, settings.enforce_thresholds, settings.enforce_partial)

    def _run_auto_rounds(self, session: pytest.Session) -> None:
        """repeats="auto": the further rounds of the suites this process ran (see glue/rounds.py)."""
        if not self.rounds.first or session.shouldfail or session.shouldstop:
            return
        try:
            extra = self.rounds.run(session.items, self._policy())
        except BaseException as exc:  # Ctrl-C during a round: the run is incomplete
            self.incomplete = self.progress.stopped_reason(str(exc) or type(exc).__name__)
            raise
        if self.is_worker:
            self.config.workeroutput[WORKEROUTPUT_KEY] = self.rounds.payload()  # type: ignore[attr-defined]
        else:
            for case_result in extra:
                self.run.add(case_result)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: a worker's further rounds of repeats="auto" suites; a crashed
        worker's exit reason, for the case blamed in pytest_handlecrashitem; a recording
        the worker could not write."""
        if error:
            self._node_errors[node.gateway.id] = str(error).strip()
        workeroutput = getattr(node, "workeroutput", {})
        self.recording_error = self.recording_error or workeroutput.get(RECORDING_ERROR_KEY)
        for data in self.rounds.receive(workeroutput.get(WORKEROUTPUT_KEY)):
            self.run.add(CaseResult.from_dict(data, suite=self._spec(data["suite"])))

    def _close_runners(self) -> None:
        for runner in self.runners.values():
            runner.close()
        self.runners.clear()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Replace the in-progress report with the finished one, complete only if every
        phase ran to its end."""
        self._save_recordings(session)
        if self.is_worker or (self.settings.report is None and self.settings.markdown is None and self.settings.html is None
                               and self.history is None):
            return
        try:
            self.progress.enter("report")
            doc = self._final_report(session)
            trends = None
            if self.history is not None:
                self.history.write(doc)  # records complete runs only
                if self.settings.html is not None:
                    trends = self.history.trends(doc)  # the HTML report's Trends tab, this run included
            self.progress.write_final(doc, trends=trends)
        except KeyboardInterrupt:  # Ctrl-C while writing: the report says so rather than the run crashing here
            self.incomplete = self.progress.stopped_reason("interrupted (KeyboardInterrupt)")
            self.progress.finished = False
            self.progress.write_final(self._final_report(session))
            session.exitstatus = pytest.ExitCode.INTERRUPTED

    def _save_recordings(self, session: pytest.Session) -> None:
        """Every recorded response on disk before the run ends (the cache's writer thread
        stopped). A recording that could not be written fails the run, named in the
        summary; an xdist worker hands it to the controller (``pytest_testnodedown``)."""
        cache = runtime.defaults().cache
        if cache is not None:
            from ..errors import CacheError

            try:
                cache.close()
            except CacheError as exc:
                self.recording_error = self.recording_error or redact(str(exc))
        if self.recording_error is None:
            return
        if self.is_worker:
            self.config.workeroutput[RECORDING_ERROR_KEY] = self.recording_error  # type: ignore[attr-defined]
        elif session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _document(self) -> dict[str, Any]:
        """The report document of the run as it stands (for pytest-html's summary)."""
        return self._final_report(None)

    def _final_report(self, session: pytest.Session | None) -> dict[str, Any]:
        if self.outcome is not None and self.progress.finished:
            return build_report(self.progress.run_block(), self.outcome)
        incomplete = self.incomplete
        if not self.progress.finished and incomplete is None:
            status = f"exit status {int(session.exitstatus)}" if session is not None else "still running"
            incomplete = self.progress.stopped_reason(f"the run ended early ({status})")
        return build_report(self.progress.run_block(), partial=self.run.results(), incomplete=incomplete,
                            deferred=self.settings.shard is not None)

    def _run_block(self) -> dict[str, Any]:
        versions = {"pytest": pytest.__version__, "pytest_llmeval": __version__}
        if self._git is None:
            from ..fileio import git_info

            self._git = git_info(self.config.rootpath)
        block = run_block(self.started_at, self.settings.result_options(), self.config.rootpath, versions, self.settings.shard,
                          git=self._git, baseline_dir=self.settings.baseline_dir)
        from ..providers.pricing import price_source

        block["prices"] = {**price_source(), "overrides": len(runtime.defaults().prices or ())}
        return block

    def _display(self, path: Path) -> str:
        root = Path(self.config.rootpath)
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.recording_error is not None:
            terminalreporter.write_line(f"llm-eval: error: a recording was not saved: {self.recording_error}", red=True)
        if self.settings.shard is not None and self.incomplete is None:
            index, count = self.settings.shard
            terminalreporter.write_sep("=", f"llm-eval: shard {index}/{count}", bold=True)
            terminalreporter.write_line("the gate is deferred: merge the shard reports with `llm-eval merge`")
            if self.history is not None and self.history.line:
                terminalreporter.write_line(f"{self.history.line}; record the merge: llm-eval merge --history")
            return
        for warning in self.file_warnings:
            terminalreporter.write_line(f"llm-eval: warning: {warning}", yellow=True)
        if self.incomplete is not None:
            terminalreporter.write_sep("=", "llm-eval: run incomplete", yellow=True)
            terminalreporter.write_line(f"{self.incomplete}: no verdict is final")
        elif self.outcome is not None:
            terminalreporter.write_sep("=", "llm-eval summary", bold=True)
            for line in summary_lines(self.outcome, verbose=self.config.get_verbosity() > 0):
                terminalreporter.write_line(redact(line))
        if self.settings.html is not None:
            terminalreporter.write_line(f"llm-eval HTML report: {self.settings.html}")
        if self.history is not None and self.history.line:
            terminalreporter.write_line(self.history.line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._close_runners()
        from ..providers import capture

        capture.disable()
        from ..providers import otel

        otel.disable()
        if self.history is not None:
            self.history.close()
        for name in ("llmeval-score-words", "llmeval-progress", "llmeval-pytest-html"):
            plugin = config.pluginmanager.get_plugin(name)
            if plugin is not None:
                config.pluginmanager.unregister(plugin)
        if self.flight is not None:
            self.flight.close()
        if self._flight_dir is not None:
            import shutil

            shutil.rmtree(self._flight_dir, ignore_errors=True)
        runtime.set_defaults(runtime.Defaults())
        set_default_registry(None)


def _previous_report(path: Path | None) -> tuple[Path | None, str | None]:
    """The report file's text from before this run (None: none, or too big to trust)."""
    from ..validation import read_text

    if path is None:
        return None, None
    try:
        return path, read_text(path, "report", LLMEvalError, missing_ok=True)
    except (LLMEvalError, OSError):
        return path, None


def prompt_log_entries(outcome: RunOutcome, root: Any, registry: PromptRegistry) -> list[dict[str, Any]]:
    """One log line per (suite, prompt version) of a blessed run, with the suite's results."""
    from ..fileio import git_info

    at, commit = PromptLog.now(), git_info(root).get("commit")
    entries = []
    for suite in outcome.suites:
        metrics = {v.metric: v.estimate.mean for v in suite.verdicts if v.estimate.n}
        for name, versions in sorted(suite.prompts.items()):
            for version in versions:
                entries.append({"name": name, "version": version, "label": _label(registry, name, version), "suite": suite.display_id,
                                "verdict": "pass" if suite.passed else "fail", "metrics": metrics, "at": at, "commit": commit})
    return entries


def _label(registry: PromptRegistry, name: str, version: str) -> str | None:
    """The label of the prompt file when it still has this version."""
    try:
        prompt = registry.get(name)
    except LLMEvalError:
        return None
    return prompt.label if prompt.version == version else None


def _case_properties(result: CaseResult) -> list[tuple[str, object]]:
    properties: list[tuple[str, object]] = [(PROPERTY_PREFIX + metric, value) for metric, value in result.scores.items()]
    if result.suite.repeats > 1:
        properties.append((PROPERTY_PREFIX + "repeat", result.repeat))
    if result.attempts > 1:
        properties.append((PROPERTY_PREFIX + "attempts", result.attempts))
    if result.latency_ms is not None:
        properties.append((PROPERTY_PREFIX + "latency_ms", round(result.latency_ms, 1)))
    for kind, usage in sorted(result.usage.items()):
        if usage.get("calls"):
            prefix = f"{PROPERTY_PREFIX}{kind}."
            properties += [(prefix + "input_tokens", usage["input_tokens"]), (prefix + "output_tokens", usage["output_tokens"]),
                           (prefix + "cost", "unknown" if usage.get("unpriced_calls") or usage.get("usage_unknown_calls") else usage["cost"])]
            if usage.get("cached_calls"):
                properties.append((prefix + "cached_calls", usage["cached_calls"]))
    for metric, reason in sorted(result.reasons.items()):
        properties.append((f"{PROPERTY_PREFIX}{metric}.reason", _truncate(reason, REASON_CHARS)))
    for name, version in sorted(result.prompts.items()):
        properties.append((f"{PROPERTY_PREFIX}prompt.{name}", version))
    if result.error:
        properties.append((PROPERTY_PREFIX + "error", result.error))
    return properties


def gate_reports(suite: SuiteOutcome) -> Iterator[pytest.TestReport]:
    """Synthetic setup/call/teardown reports: one test case per (suite, gate)."""
    file_part, _, function = suite.spec.suite_id.partition("::")
    base_props = [(PROPERTY_PREFIX + "dataset", suite.spec.dataset), (PROPERTY_PREFIX + "cases", suite.n_cases)]
    if suite.partial:
        base_props.append((PROPERTY_PREFIX + "partial", suite.partial))
    if suite.flaky_cases:
        base_props.append((PROPERTY_PREFIX + "flaky_cases", " ".join(suite.flaky_cases)))
    if suite.compared_with_baseline and suite.baseline is None and suite.baseline_error is None and suite.baseline_written is None:
        base_props.append((PROPERTY_PREFIX + "baseline", f"MISSING, existed before ({suite.baseline_lost})" if suite.baseline_lost
                           else "none: regression check skipped"))
    gates: list[tuple[str, bool | None, str, list[tuple[str, object]]]] = []  # passed None: not judged
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
            if verdict.insufficient:
                props.append(("evidence", f"insufficient: {verdict.insufficient}"))
        message = "\n".join([verdict.message(), *suite.notes()])
        gates.append((verdict.metric, verdict.passed, message, [(PROPERTY_PREFIX + k, v) for k, v in props]))
    for usage in suite.usage_verdicts:
        gates.append((usage.name, usage.passed if usage.judged else None, usage.message,
                      [(PROPERTY_PREFIX + k, v) for k, v in usage.properties.items()]))
    if suite.variant is not None:
        base_props.append((PROPERTY_PREFIX + "variant", suite.variant))
        gates = [(f"{suite.variant}:{name}", passed, message, props) for name, passed, message, props in gates]
    if suite.comparison is not None:
        gates.append(_comparison_gate(suite.comparison))

    for name, passed, message, props in gates:
        message = redact(message)
        nodeid = f"{suite.spec.suite_id}::llm_eval_gate[{name}]"
        location = (file_part, None, f"{function}::llm_eval_gate[{name}]")
        properties = base_props + props
        yield pytest.TestReport(nodeid, location, {}, "passed", None, "setup", user_properties=properties)
        if passed is None:  # not judged: a skip carrying the reason, neither a pass nor a failure
            yield pytest.TestReport(nodeid, location, {}, "skipped", (file_part, 0, message), "call", user_properties=properties)
        else:
            yield pytest.TestReport(nodeid, location, {}, "passed" if passed else "failed", None if passed else message, "call", user_properties=properties)
        yield pytest.TestReport(nodeid, location, {}, "passed", None, "teardown", user_properties=properties)


def _comparison_gate(pair: PairComparison) -> tuple[str, bool, str, list[tuple[str, object]]]:
    """One gate item per variant comparison: its verdicts in the properties, failing only
    when a non-inferiority or parity gate fails (or the variant's settings did not apply)."""
    props: list[tuple[str, object]] = [(PROPERTY_PREFIX + "control", pair.control), (PROPERTY_PREFIX + "n_paired", pair.n_paired)]
    for m in pair.metrics:
        prefix = f"{PROPERTY_PREFIX}{m.metric}."
        props += [(prefix + "verdict", m.verdict), (prefix + "change", m.change), (prefix + "change_ci_low", m.ci_low),
                  (prefix + "change_ci_high", m.ci_high), (prefix + "p_value", m.p_value), (prefix + "p_holm", m.p_adjusted),
                  (prefix + "mde", m.mde), (prefix + "cases_needed", m.cases_needed if m.cases_needed is not None else "")]
    for r in pair.resources:
        if r.difference.n:
            props += [(f"{PROPERTY_PREFIX}{r.name}.change", r.difference.change), (f"{PROPERTY_PREFIX}{r.name}.verdict", r.verdict)]
    for g in pair.gates:
        props.append((f"{PROPERTY_PREFIX}{g.kind}.{g.metric or 'settings'}", "pass" if g.passed else "fail"))
    failed = [g.message for g in pair.gates if not g.passed]
    lines = failed + [pair.headline()] + [m.describe() for m in pair.metrics] + [r.describe() for r in pair.resources if r.difference.n]
    lines += [g.message for g in pair.gates if g.passed]
    return f"{pair.variant}-vs-{pair.control}", pair.passed, "\n".join(lines), props
