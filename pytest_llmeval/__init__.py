"""pytest-llmeval: golden-dataset rows as pytest cases, scored and gated against a baseline.

This module only names the package's public surface; it imports nothing heavy, because
pytest loads the plugin on every run of a user's project.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
