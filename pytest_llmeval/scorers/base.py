"""What a scorer is: :class:`Scorer` (a named function), :class:`Score` (a value with its
reason) and :class:`BoundScorer` (a scorer with the options a marker gave it).

The built-in scorer modules and the registry both import these; this module imports no
scorer module, so the registry can load the built-ins lazily without an import cycle.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import ScorerError
from ..models import Case

__all__ = ["BoundScorer", "Score", "Scorer", "ScorerFn"]

ScorerFn = Callable[..., float]


@dataclass(frozen=True)
class Scorer:
    name: str
    fn: ScorerFn
    binary: bool = False


@dataclass(frozen=True)
class Score:
    """A score with the reason for it (shown in junit properties and the report).

    ``review``: ask a person to look at the case, as ``"reason: detail"`` with a reason of
    :data:`pytest_llmeval.core.review.REASONS` (e.g. ``"judge_retry: ..."``) or free text."""

    value: float
    reason: str | None = None
    review: str | None = None


@dataclass(frozen=True)
class BoundScorer:
    """A scorer with its options, producing the metric ``metric``."""

    metric: str
    scorer: Scorer
    options: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, output: Any, case: Case) -> float:
        return self.evaluate(output, case).value

    def evaluate(self, output: Any, case: Case) -> Score:
        """Run the scorer (awaiting an async one) and check its result."""
        try:
            result = self.scorer.fn(output, case, **self.options)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
        except ScorerError:
            raise
        except Exception as exc:
            raise ScorerError(f"scorer {self.metric!r} raised {type(exc).__name__}: {exc}") from exc
        value, reason, review = (result.value, result.reason, result.review) if isinstance(result, Score) else (result, None, None)
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0 or math.isnan(value):
            raise ScorerError(f"scorer {self.metric!r} returned {value!r}; a score must be a number in [0, 1]")
        if self.scorer.binary and value not in (0.0, 1.0):
            raise ScorerError(f"scorer {self.metric!r} is declared binary but returned {value!r}")
        return Score(float(value), reason, review)


async def _await(awaitable: Any) -> Any:
    return await awaitable
