"""``repeats="auto"`` in a pytest run: the further rounds of a suite's cases.

Round 1 is the suite's test items, one per case, as usual. The further rounds are not test
items: the process that ran a suite's items (the serial process, or the one xdist worker
the suite scheduling keeps it on) runs them after its items and before the gate, through
the same concurrent runner, calling the marker's ``target`` and scorers for the cases the
design re-runs (there is no test body to run again). Their results go into the run like
any case result (the report lists them as repeats 1, 2, ...); from a worker they travel to
the controller in ``config.workeroutput``. The gate then judges every suite at the
nominal level of its last look, and the summary says how many rounds ran and why they
stopped. The statistics are in :mod:`pytest_llmeval.gate.sequential` and
:mod:`pytest_llmeval.core.rounds`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from ..core.recorder import EvalRecorder
from ..core.rounds import RoundsRecord, look, rerun_cases, result_of
from ..core.runner import SuiteRunner
from ..core.suite import SuitePlan
from ..gate.baseline import BaselineStore
from ..gate.sequential import SequentialDesign
from ..gate.verdicts import GatePolicy
from ..models import CaseResult

if TYPE_CHECKING:
    from .session import EvalSession

__all__ = ["AutoRounds", "WORKEROUTPUT_KEY"]

WORKEROUTPUT_KEY = "llm_eval_rounds"


class AutoRounds:
    """The round-1 results of this process's auto suites, and what their rounds did."""

    def __init__(self, session: EvalSession) -> None:
        self.session = session
        self.first: dict[str, list[CaseResult]] = {}
        self.records: dict[str, RoundsRecord] = {}
        self.extra: list[CaseResult] = []

    def keep(self, suite_id: str, result: CaseResult) -> None:
        if self.session.plans[suite_id].auto_repeats:
            self.first.setdefault(suite_id, []).append(result)

    def run(self, items: list[pytest.Item], policy: GatePolicy) -> list[CaseResult]:
        """Run the further rounds of every auto suite this process ran; returns their results."""
        settings = self.session.settings
        store = BaselineStore(settings.baseline_dir, self.session.config.rootpath)
        design = settings.sequential or SequentialDesign()
        from .session import case_of, suite_id_of  # session imports this module

        selected: dict[str, int] = {}
        for item in items:
            if case_of(item) is not None:
                selected[suite_id_of(item)] = selected.get(suite_id_of(item), 0) + 1
        new: list[CaseResult] = []
        for suite_id, first in sorted(self.first.items()):
            if settings.shard is not None:
                self.records[suite_id] = RoundsRecord(1, "a shard runs one round (the gate is deferred to llm-eval merge)", policy.alpha, design)
                continue
            if len(first) < selected.get(suite_id, 0):
                self.records[suite_id] = RoundsRecord(
                    1, "the suite's cases ran in more than one process, so none of them could judge it: one round, at the full alpha",
                    policy.alpha, design)
                continue
            record, results = self._rounds(self.session.plans[suite_id], first, store, policy)
            self.records[suite_id] = record
            new += results
        self.extra = new
        return new

    def _rounds(self, plan: SuitePlan, first: list[CaseResult], store: BaselineStore,
                policy: GatePolicy) -> tuple[RoundsRecord, list[CaseResult]]:
        settings = self.session.settings
        design = settings.sequential or SequentialDesign()
        results, new = list(first), []
        information: dict[str, list[float]] = {}
        round_number = 1
        while True:
            current = look(results, store, policy, design, round_number, information, update=settings.update)
            information = current.information
            reason = current.decision.reason
            if current.decision.stop:
                break
            ids = rerun_cases(first, store, design, round_number + 1, update=settings.update)
            if not ids:
                reason = "no case to run again (every case errored, or the baseline marks none as flaky)"
                break
            runs = Counter(r.case_id for r in results)
            batch = self._run_round(plan, {case_id: runs[case_id] for case_id in ids})
            results += batch
            new += batch
            round_number += 1
        return RoundsRecord(round_number, reason, current.nominal_alpha, design, information, len(new)), new

    def _run_round(self, plan: SuitePlan, repeats: dict[str, int]) -> list[CaseResult]:
        """Run each case of ``repeats`` (case id -> its repeat index: the runs it has so far)."""
        settings = self.session.settings
        by_id = {case.id: case for case in plan.cases}
        cases = [replace(by_id[case_id], repeat=repeat) for case_id, repeat in repeats.items() if case_id in by_id]
        runner = SuiteRunner(plan.target, lambda case: EvalRecorder(case, plan.scorers, plan.case_thresholds),  # type: ignore[arg-type]
                             settings.concurrency, cases, self.session._suite_config(plan.spec.suite_id))
        try:
            return [result_of(plan.spec, runner.result(case), settings.output_chars) for case in cases]
        finally:
            runner.close()

    # -- between processes and into the gate ----------------------------------------------

    def payload(self) -> dict[str, Any]:
        """What a worker sends the controller (JSON-safe)."""
        return {"results": [r.to_dict() for r in self.extra], "records": {s: r.to_dict() for s, r in self.records.items()}}

    def receive(self, payload: dict[str, Any] | None) -> list[dict[str, Any]]:
        """A worker's payload on the controller: keeps its records, returns its result dicts."""
        if not payload:
            return []
        for suite_id, record in payload["records"].items():
            self.records[suite_id] = RoundsRecord.from_dict(record)
        return list(payload["results"])

    def gate_levels(self, alpha: float) -> dict[str, tuple[float, str]]:
        """Suite id -> (nominal alpha of its last look, the summary's note)."""
        return {suite_id: (record.nominal_alpha, record.note(alpha)) for suite_id, record in self.records.items()}
