"""The scorer catalogue: names to scorer functions, and binding marker entries to them.

A scorer is a function ``fn(output, case, **options)`` returning a score in [0, 1], or a
:class:`Score` (value and a short reason, e.g. an LLM judge's); it may be ``async``.
``binary=True`` declares it only ever returns 0 or 1 (checked on every score). The gate
picks its test from the values: exact McNemar when every per-case value is 0 or 1, so
binary scores averaged over repeats are tested as continuous ones.
User scorers come from the :func:`scorer` decorator (in conftest.py or a test module) and
from the ``pytest_llmeval_register_scorers(registry)`` hook. In the marker a scorer is given as ``"name"`` or ``("name", {option: value})``; the
option ``name`` renames the metric, so one scorer can be used twice.

Options are checked when the marker is bound (at collection): their names against the
scorer's signature, their values by the scorer's optional ``prepare_options(**options)``
attribute, which returns the options to call it with (compiled patterns, schemas) and
raises ScorerError for a bad value. The built-ins live in ``text`` (exact_match,
contains, not_contains, regex, numeric), ``structured`` (json_valid, json_schema),
``similarity`` (token_f1, rouge_l, bleu, levenshtein) and ``grounding``
(context_overlap, question_overlap).
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Iterable, Mapping

from ..errors import ScorerError
from .base import BoundScorer, Score, Scorer, ScorerFn

__all__ = ["BoundScorer", "Score", "Scorer", "ScorerRegistry", "builtin_scorers", "default_registry", "scorer"]

_USER_SCORERS: dict[str, Scorer] = {}


def scorer(name: str | None = None, *, binary: bool = False) -> Callable[[ScorerFn], ScorerFn]:
    """Register a scorer for every suite: ``@scorer("polite", binary=True)`` on a function
    ``fn(output, case, **options)`` in conftest.py or a test module (sync or async)."""

    def decorate(fn: ScorerFn) -> ScorerFn:
        key = name or fn.__name__
        known = _USER_SCORERS.get(key)
        if known is not None and _qualname(known.fn) != _qualname(fn):
            raise ScorerError(f"a scorer named {key!r} is already registered by {_qualname(known.fn)}")
        _USER_SCORERS[key] = Scorer(key, fn, binary)
        return fn

    return decorate


def clear_user_scorers() -> None:
    """Forget @scorer registrations (the plugin calls this when a run ends)."""
    _USER_SCORERS.clear()


def _qualname(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class ScorerRegistry:
    """Scorers by name. ``bind`` turns marker entries into :class:`BoundScorer` objects."""

    def __init__(self, scorers: Iterable[Scorer] = ()) -> None:
        self._scorers: dict[str, Scorer] = {}
        for scorer in scorers:
            self.add(scorer)

    def add(self, scorer: Scorer) -> None:
        if scorer.name in self._scorers and self._scorers[scorer.name].fn is not scorer.fn:
            raise ScorerError(f"a scorer named {scorer.name!r} is already registered")
        self._scorers[scorer.name] = scorer

    def register(self, name: str | None = None, *, binary: bool = False) -> Callable[[ScorerFn], ScorerFn]:
        """Decorator: ``@registry.register("my_metric", binary=True)``."""

        def decorate(fn: ScorerFn) -> ScorerFn:
            self.add(Scorer(name or fn.__name__, fn, binary))
            return fn

        return decorate

    def names(self) -> list[str]:
        return sorted(set(self._scorers) | set(_USER_SCORERS))

    def get(self, name: str) -> Scorer:
        if name.startswith("ragas:") and name not in self._scorers and name not in _USER_SCORERS:
            from .ragas_metrics import make_scorer  # ragas is imported only for these names

            return make_scorer(name)
        try:
            return self._scorers.get(name) or _USER_SCORERS[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ScorerError(f"unknown scorer {name!r}{hint} Known scorers: {', '.join(self.names())}") from None

    def bind(self, entries: Iterable[Any]) -> list[BoundScorer]:
        """Resolve the marker's ``scorers=[...]``; fail on unknown names or bad options."""
        bound: list[BoundScorer] = []
        for entry in entries:
            if isinstance(entry, str):
                name, options = entry, {}
            elif isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], Mapping):
                name, options = entry[0], dict(entry[1])
            else:
                raise ScorerError(f"bad scorer entry {entry!r}: use 'name' or ('name', {{option: value}})")
            scorer = self.get(name)
            metric = options.pop("name", name)
            try:
                inspect.signature(scorer.fn).bind(None, None, **options)
            except TypeError as exc:
                raise ScorerError(f"scorer {name!r}: bad options {sorted(options)}: {exc}") from None
            prepare = getattr(scorer.fn, "prepare_options", None)
            if prepare is not None:
                try:
                    options = prepare(**options)
                except ScorerError:
                    raise
                except Exception as exc:
                    raise ScorerError(f"scorer {name!r}: bad options {sorted(options)}: {type(exc).__name__}: {exc}") from None
            bound.append(BoundScorer(metric, scorer, options))
        metrics = [b.metric for b in bound]
        duplicate = next((m for m in metrics if metrics.count(m) > 1), None)
        if duplicate is not None:
            raise ScorerError(f"metric {duplicate!r} is produced twice; give one entry the option 'name'")
        return bound


def builtin_scorers() -> tuple[Scorer, ...]:
    """Every built-in scorer (see docs/scorers.md)."""
    from . import grounding, judge, similarity, structured, text

    return (text.BUILTIN_SCORERS + structured.BUILTIN_SCORERS + similarity.BUILTIN_SCORERS + grounding.BUILTIN_SCORERS
            + judge.BUILTIN_SCORERS)


def default_registry() -> ScorerRegistry:
    """A fresh registry holding the built-in scorers."""
    return ScorerRegistry(builtin_scorers())
