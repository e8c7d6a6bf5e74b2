"""Scorers: functions that turn an app's output for one case into a score in [0, 1].

``registry`` holds the scorer catalogue and binds the marker's ``scorers=[...]`` entries
to callables; ``text`` holds the built-in offline scorers.
"""

from __future__ import annotations

from .registry import BoundScorer, Scorer, ScorerRegistry, default_registry

__all__ = ["BoundScorer", "Scorer", "ScorerRegistry", "default_registry"]
