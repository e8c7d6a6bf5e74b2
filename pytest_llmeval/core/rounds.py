"""Rounds of a ``repeats="auto"`` suite: the look after each round, the cases the next round
runs, and the results of cases run outside pytest items.

The statistics (alpha spending, boundaries, when to stop) are in
:mod:`pytest_llmeval.gate.sequential`; this module applies them to a suite's case results
and its baseline. The glue runs the rounds; nothing here imports pytest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from ..gate import sequential
from ..gate.baseline import BaselineStore
from ..gate.sequential import Decision, SequentialDesign
from ..gate.verdicts import GatePolicy
from ..models import Case, CaseResult, SuiteSpec
from .recorder import EvalRecorder
from .run import _collate, _judge

__all__ = ["Look", "RoundsRecord", "look", "rerun_cases", "result_of"]


@dataclass
class RoundsRecord:
    """What the rounds of one suite did: travels from an xdist worker to the controller."""

    rounds: int
    reason: str
    nominal_alpha: float
    design: SequentialDesign
    information: dict[str, list[float]] = field(default_factory=dict)  # metric -> 1/se^2 per look
    extra_cases: int = 0  # cases run after the items (rounds 2..)

    def note(self, alpha: float) -> str:
        d = self.design
        level = f"; the gate tests at nominal level {self.nominal_alpha:.4g} (alpha {alpha:g} spent across looks)" \
            if self.nominal_alpha != alpha else ""
        rerun = {"half": "half the cases a round", "all": "every case", "flaky": "baseline-flaky cases"}[d.rerun]
        return (f"repeats auto: {self.rounds} round(s) of at most {d.max_rounds} ({d.boundary} boundaries, re-running "
                f"{rerun}; {self.extra_cases} case run(s) after the first round); "
                f"stopped: {self.reason}{level}")

    def to_dict(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "reason": self.reason, "nominal_alpha": self.nominal_alpha,
                "design": {"max_rounds": self.design.max_rounds, "boundary": self.design.boundary, "rerun": self.design.rerun},
                "information": {m: list(v) for m, v in self.information.items()}, "extra_cases": self.extra_cases}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoundsRecord:
        return cls(int(data["rounds"]), str(data["reason"]), float(data["nominal_alpha"]), SequentialDesign(**data["design"]),
                   {m: [float(x) for x in v] for m, v in data["information"].items()}, int(data["extra_cases"]))


@dataclass(frozen=True)
class Look:
    decision: Decision
    nominal_alpha: float
    information: dict[str, list[float]]


def look(
    results: Sequence[CaseResult],
    store: BaselineStore,
    policy: GatePolicy,
    design: SequentialDesign,
    round_number: int,
    information: Mapping[str, Sequence[float]],
    *,
    update: bool = False,
) -> Look:
    """Judge the suite after round ``round_number`` (1-based) at this look's nominal level.

    ``information`` holds each metric's information at the earlier looks; the returned
    :class:`Look` extends it with this look's (see :func:`~pytest_llmeval.gate.sequential.next_level`).
    """
    outcome = _collate(list(results))
    _judge(outcome, store, policy, update)
    se = {v.metric: v.comparison.se for v in outcome.verdicts if v.comparison is not None}
    info, nominal = sequential.next_level(se, information, policy.alpha, design, round_number)
    outcome = _collate(list(results))
    _judge(outcome, store, replace(policy, alpha=nominal), update)
    drops = {v.metric: (-v.comparison.change, v.allowed_drop, v.comparison.se) for v in outcome.verdicts
             if v.comparison is not None and v.comparison.n and not math.isnan(v.comparison.change)}
    regressed = any(v.regressed for v in outcome.verdicts)
    return Look(sequential.decide(round_number, design, regressed=regressed, drops=drops, update=update), nominal, info)


def rerun_cases(results: Sequence[CaseResult], store: BaselineStore, design: SequentialDesign, round_number: int, *,
                update: bool = False) -> list[str]:
    """Ids of the cases round ``round_number`` (2, 3, ...) runs, among those with a scored,
    error-free first result: with ``rerun="half"`` the half :func:`~pytest_llmeval.gate.sequential.half_round`
    takes (blessing too: every case then ends with at least two repeats); with ``all`` every
    one; with ``flaky`` (and a baseline holding repeats) those the baseline marks flaky,
    every one when blessing a baseline."""
    ran = sorted({r.case_id for r in results if r.outcome != "error"} - {r.case_id for r in results if r.outcome == "error"})
    if design.rerun == "half":
        return sequential.half_round(ran, round_number) if ran else []
    if design.rerun == "all" or update:
        return ran
    try:
        baseline = store.load(results[0].suite.suite_id) if results else None
    except Exception:  # an unreadable baseline is reported by the gate; re-run everything meanwhile
        baseline = None
    if baseline is None or all(case.repeats < 2 for case in baseline.cases.values()):
        return ran  # nothing says which cases are flaky
    return [c for c in ran if c in baseline.cases and baseline.cases[c].flaky]


def result_of(spec: SuiteSpec, recorder: EvalRecorder, output_chars: int) -> CaseResult:
    """The :class:`CaseResult` of a case the runner ran outside any pytest item (no test
    body ran: the outcome comes from the app, the scorers and the per-case rules)."""
    case: Case = recorder.case
    try:
        recorder.raise_failure()
    except Exception:  # noqa: BLE001 - kept on the recorder as error and kind; KeyboardInterrupt propagates
        pass
    if recorder.error is not None:
        outcome = "error"
    else:
        outcome = "failed" if recorder.case_failures() else "passed"
    models = tuple(sorted({f"{r.provider}:{r.model}" for r in recorder.ledger.records if r.kind == "app"}))
    return CaseResult(spec, case.id, case.content_hash, case.repeat, outcome, dict(recorder.scores), recorder.error,
                      recorder.error_kind, recorder.latency_ms, recorder.ledger.summary(), models,
                      recorder.output_text(output_chars), dict(recorder.prompts), dict(recorder.reasons))
