"""The ``llm_eval`` fixture's object: scores one case and remembers what it recorded.

It knows nothing of pytest. With a target, the suite runner calls the app and scores its
output in the background, and the item re-raises any failure with
:meth:`EvalRecorder.raise_failure`; without one, the test body calls :meth:`score`.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from ..errors import CacheMissError, ProviderError, ScorerError
from ..models import Case
from ..providers.accounting import Ledger
from ..scorers import BoundScorer
from .variants import Variant
from .review import cut_text

__all__ = ["AppError", "EvalRecorder"]

_UNSET: Any = object()


class AppError(Exception):
    """The app under test (the marker's ``target``) raised for this case."""


class EvalRecorder:
    """Records scores, output, usage and latency for the current case.

    ``score(output)`` runs the marker's scorers on an output; ``record(name, value)``
    records any other named number. With a ``target`` the plugin has already called the
    app and scored its output before the test body runs; ``output`` holds it.
    """

    def __init__(self, case: Case, scorers: Sequence[BoundScorer], case_thresholds: Mapping[str, float] | None = None,
                 variant: Variant | None = None) -> None:
        self.case = case
        self.variant = variant  # the A/B variant this case runs under: .name, .settings, .kwargs, .prompt, .model
        self.scorers = tuple(scorers)
        self.case_thresholds = dict(case_thresholds or {})
        self.scores: dict[str, float] = {}
        self.reasons: dict[str, str] = {}
        self.error: str | None = None
        self.error_kind: str | None = None
        self.latency_ms: float | None = None
        self.ledger = Ledger(label=f"case {case.id!r}")
        self.review_notes: list[str] = []  # "reason: detail" (see pytest_llmeval.core.review)
        self.prompts: dict[str, str] = {}  # filled by pytest_llmeval.prompts while the case runs
        self._output: Any = _UNSET
        self._failure: BaseException | None = None

    @property
    def output(self) -> Any:
        if self._output is _UNSET:
            raise AttributeError("llm_eval.output is only set when the marker has a target= or after llm_eval.score(output)")
        return self._output

    def score(self, output: Any) -> dict[str, float]:
        """Score ``output`` with every scorer of the marker; returns the new scores."""
        self._output = output
        new: dict[str, float] = {}
        for scorer in self.scorers:
            try:
                score = scorer.evaluate(output, self.case)
                new[scorer.metric] = score.value
                if score.reason:
                    self.reasons[scorer.metric] = score.reason
                if score.review:
                    self.review_notes.append(score.review)
            except ScorerError as exc:
                self.error = f"case {self.case.id!r}: {exc}"
                self.error_kind = "scorer"
                raise ScorerError(self.error) from exc.__cause__
        self.scores.update(new)
        return new

    def flag_for_review(self, why: str) -> None:
        """Ask a person to look at this case (shown in the summary, report, Markdown and
        HTML with reason ``manual``); it does not change the case's outcome."""
        if not isinstance(why, str) or not why.strip():
            raise ValueError("llm_eval.flag_for_review(why): why must be a non-empty string")
        self.review_notes.append(f"manual: {why.strip()}")

    def row_text(self, limit: int) -> tuple[str | None, str | None]:
        """The case's inputs (as JSON) and expected value as text for the report, cut at
        ``limit`` characters; (None, None) when ``limit`` is 0."""
        if limit == 0:
            return None, None
        inputs = json.dumps(dict(self.case.inputs), ensure_ascii=False, sort_keys=True, default=str)
        expected = self.case.expected
        if expected is not None and not isinstance(expected, str):
            expected = json.dumps(expected, ensure_ascii=False, sort_keys=True, default=str)
        return cut_text(inputs, limit), None if expected is None else cut_text(expected, limit)

    def output_text(self, limit: int) -> str | None:
        """The output as text for the report, cut at ``limit`` characters (None if unset or 0)."""
        if self._output is _UNSET or limit == 0:
            return None
        text = self._output if isinstance(self._output, str) else repr(self._output)
        return cut_text(text, limit)

    def record(self, name: str, value: float) -> None:
        """Record a named number for this case (aggregated and gated like a score)."""
        if not isinstance(name, str) or not name:
            raise ValueError("llm_eval.record: name must be a non-empty string")
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(
                f"llm_eval.record({name!r}, {value!r}): a recorded score must be a number in [0, 1] "
                "(gate latency and cost with budgets= instead)"
            )
        self.scores[name] = float(value)

    # -- used by the suite runner -------------------------------------------------------

    def app_failed(self, exc: BaseException, latency_ms: float) -> None:
        """The app raised: keep the failure for the item to raise (KeyboardInterrupt and
        SystemExit as they are, so they stop the run from pytest's thread)."""
        self.latency_ms = latency_ms
        if not isinstance(exc, Exception):
            self._failure = exc
            return
        misses = self.ledger.misses
        if misses and not isinstance(exc, CacheMissError):  # the SDK's error for a strict miss: say what it was
            miss = CacheMissError(misses[0])
            miss.__cause__ = exc
            exc = miss
        self.error = f"app raised {type(exc).__name__}: {exc}"
        self.error_kind = exc.kind if isinstance(exc, ProviderError) else "cache_miss" if isinstance(exc, CacheMissError) else "app"
        failure = AppError(f"case {self.case.id!r}: {self.error}")
        failure.__cause__ = exc
        self._failure = failure

    def check_replay(self, latency_ms: float) -> bool:
        """After the app returned: a strict-replay miss it swallowed still fails the case
        (True when it did)."""
        misses = self.ledger.misses
        if misses:
            self.app_failed(CacheMissError(misses[0]), latency_ms)
        return bool(misses)

    def crashed(self, reason: str) -> None:
        """The app's call for this case killed its test process (an xdist worker): the case
        is an error of kind ``crash``, and the app is not called for it again."""
        self.error = f"the app's call for this case crashed the test process: {reason}"
        self.error_kind = "crash"
        self._failure = AppError(f"case {self.case.id!r}: {self.error}")

    def score_quietly(self, output: Any) -> None:
        """Score, keeping a scorer failure for the item to raise instead of raising here."""
        try:
            self.score(output)
        except ScorerError as exc:
            self._failure = exc

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def case_failures(self) -> list[str]:
        """Per-case rules this case broke: nothing recorded, ``must_pass``, ``case_thresholds``."""
        if not self.scores and self.scorers:
            return ["no scores recorded: call llm_eval.score(output) or give the marker a target="]
        problems = []
        if self.case.must_pass:
            problems += [f"must_pass case scored {metric} {value:.3g} < 1" for metric, value in self.scores.items() if value < 1.0]
        for metric, minimum in self.case_thresholds.items():
            value = self.scores.get(metric)
            if value is None:
                problems.append(f"case_thresholds names {metric!r}, which this case did not record")
            elif value < minimum:
                problems.append(f"{metric} {value:.3g} < case minimum {minimum:g}")
        return problems
