"""The ``llm_eval`` fixture's object: scores one case and remembers what it recorded.

It knows nothing of pytest. The glue creates one per case item, calls the target (when
the marker names one) and asks it at the end whether the case failed a per-case rule.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from typing import Any, Callable, Mapping, Sequence

from .errors import ScorerError
from .models import Case
from .scorers import BoundScorer

__all__ = ["AppError", "EvalRecorder"]

_UNSET: Any = object()


class AppError(Exception):
    """The app under test (the marker's ``target``) raised for this case."""


class EvalRecorder:
    """Records scores for the current case.

    ``score(output)`` runs the marker's scorers on an output; ``record(name, value)``
    records any other named number. With a ``target`` the plugin has already called the
    app and scored its output before the test body runs; ``output`` holds it.
    """

    def __init__(
        self,
        case: Case,
        scorers: Sequence[BoundScorer],
        case_thresholds: Mapping[str, float] | None = None,
    ) -> None:
        self.case = case
        self.scorers = tuple(scorers)
        self.case_thresholds = dict(case_thresholds or {})
        self.scores: dict[str, float] = {}
        self.error: str | None = None
        self._output: Any = _UNSET

    @property
    def output(self) -> Any:
        if self._output is _UNSET:
            raise AttributeError("llm_eval.output is only set when the marker has a target= or after llm_eval.score(output)")
        return self._output

    def run_target(self, target: Callable[..., Any]) -> Any:
        """Call the app with the case's inputs as keyword arguments and score its output."""
        try:
            result = target(**self.case.inputs)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
        except Exception as exc:
            self.error = f"app raised {type(exc).__name__}: {exc}"
            raise AppError(f"case {self.case.id!r}: {self.error}") from exc
        return self.score(result)

    def score(self, output: Any) -> dict[str, float]:
        """Score ``output`` with every scorer of the marker; returns the new scores."""
        self._output = output
        new: dict[str, float] = {}
        for scorer in self.scorers:
            try:
                new[scorer.metric] = scorer(output, self.case)
            except ScorerError as exc:
                self.error = f"case {self.case.id!r}: {exc}"
                raise ScorerError(self.error) from exc.__cause__
        self.scores.update(new)
        return new

    def record(self, name: str, value: float) -> None:
        """Record a named number for this case (aggregated and gated like a score)."""
        if not isinstance(name, str) or not name:
            raise ValueError("llm_eval.record: name must be a non-empty string")
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"llm_eval.record({name!r}, {value!r}): value must be a finite number")
        self.scores[name] = float(value)

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


async def _await(awaitable: Any) -> Any:
    return await awaitable
