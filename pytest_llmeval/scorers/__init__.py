"""Scorers: functions that turn an app's output for one case into a score in [0, 1].

``registry`` holds the scorer catalogue and binds the marker's ``scorers=[...]`` entries
to callables. The built-in offline scorers (documented in docs/scorers.md):

- ``text``: exact_match, contains, not_contains, regex, numeric (binary)
- ``structured``: json_valid, json_schema (binary)
- ``similarity``: token_f1, rouge_l, bleu, levenshtein (continuous)
- ``grounding``: context_overlap, question_overlap (continuous)

Submodules import their heavy libraries (sacrebleu, rapidfuzz, jsonschema) inside the
scorer, so importing this package stays cheap.
"""

from __future__ import annotations

from .registry import BoundScorer, Score, Scorer, ScorerRegistry, builtin_scorers, default_registry, scorer

__all__ = ["BoundScorer", "Score", "Scorer", "ScorerRegistry", "builtin_scorers", "default_registry", "scorer"]
