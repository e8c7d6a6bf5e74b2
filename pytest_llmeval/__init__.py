"""pytest-llmeval: golden-dataset rows as pytest cases, scored and gated against a baseline.

This module only names the package's public surface; it imports nothing heavy, because
pytest loads the plugin on every run of a user's project.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Score", "__version__", "scorer"]


def __getattr__(name: str) -> Any:
    # ``from pytest_llmeval import scorer, Score`` without loading the scorer modules at start-up.
    if name in ("scorer", "Score"):
        from .scorers import registry

        return getattr(registry, name)
    raise AttributeError(name)
