"""The plugin's exception family.

Hierarchy::

    LLMEvalError                 root: catch this to handle anything the plugin raises
    ├── DatasetError             a dataset file is missing, unparsable or has a bad row
    ├── ScorerError              an unknown scorer, bad scorer options, or a scorer that failed
    ├── ConfigError              a bad command-line option, ini value or marker argument
    └── BaselineError            a baseline file that exists but cannot be read or trusted

Every message names what the user has to fix: the file, the line and the field where
there is one.
"""

from __future__ import annotations

__all__ = ["BaselineError", "ConfigError", "DatasetError", "LLMEvalError", "ScorerError"]


class LLMEvalError(Exception):
    """Root of every error the plugin raises on purpose."""


class DatasetError(LLMEvalError):
    """A dataset that cannot be turned into cases.

    ``str(error)`` reads ``path:line: field: problem``; the parts are kept as attributes.
    """

    def __init__(self, path: str, line: int | None, field: str | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem
        where = path if line is None else f"{path}:{line}"
        what = problem if field is None else f"field {field!r}: {problem}"
        super().__init__(f"{where}: {what}")


class ScorerError(LLMEvalError):
    """An unknown or misconfigured scorer, or a scorer that raised while scoring."""


class ConfigError(LLMEvalError):
    """A bad option, ini value or ``llm_eval`` marker argument."""


class BaselineError(LLMEvalError):
    """A baseline file that exists but is corrupt, unreadable or of an unknown format."""
