"""The prompt registry: prompt templates as files, versioned by content hash.

A prompt is ``<folder>/<name>.yaml`` (``template:`` plus optional ``label``,
``description`` and ``metadata``) or ``<folder>/<name>.txt`` (the template alone). Its
version is the first 12 hex digits of sha256 of the template, so any edit is a new
version. Templates use ``str.format`` fields that may only *name* variables: attribute
access, indexing and positional fields are refused when the file is loaded, because a
template is data, not code.

Every render during an eval case is recorded (a context variable the plugin sets per
case), so reports and baselines say which prompt versions produced the scores. Blessed
runs append each version's results to an append-only log (:class:`PromptLog`).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import string
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import LLMEvalError

__all__ = [
    "DEFAULT_PROMPTS_DIR",
    "Prompt",
    "PromptError",
    "PromptLog",
    "PromptRegistry",
    "prompt_version",
    "recording_prompts",
    "render",
]

DEFAULT_PROMPTS_DIR = "prompts"
_SUFFIXES = (".yaml", ".yml", ".txt")
_YAML_KEYS = ("template", "label", "description", "metadata")
_USED: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("llm_eval_prompts", default=None)


class PromptError(LLMEvalError):
    """A prompt file that cannot be loaded, a template that is not safe, or a bad render."""


def prompt_version(template: str) -> str:
    return hashlib.sha256(template.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Prompt:
    name: str
    template: str
    version: str
    label: str | None = None
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None
    fields: tuple[str, ...] = ()

    def render(self, /, **variables: Any) -> str:
        """Fill the template; records this prompt's version on the running case."""
        missing = [name for name in self.fields if name not in variables]
        if missing:
            raise PromptError(f"prompt {self.name!r} ({self.version}) needs {', '.join(missing)}")
        text = self.template.format(**variables)
        used = _USED.get()
        if used is not None:
            used[self.name] = self.version
        return text


def _check_template(template: str, where: str) -> tuple[str, ...]:
    """The variable names of a template; PromptError for anything but plain names."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise PromptError(f"{where}: template is not a valid format string: {exc}") from None
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            shown = "{" + name + "}" if name else "{}"
            raise PromptError(
                f"{where}: template field {shown} is not allowed: fields may only name a variable "
                "(no attribute access, indexing or positional fields; a template is not code)"
            )
        if spec and ("{" in spec or "}" in spec):
            raise PromptError(f"{where}: template field {{{name}:{spec}}} has a nested field in its format spec")
        if name not in names:
            names.append(name)
    return tuple(names)


class PromptRegistry:
    """The prompts in one folder, loaded on first use, once: the suite runner's threads
    render concurrently, and without the lock each of them would read the folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._prompts: dict[str, Prompt] | None = None
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Prompt]:
        if self._prompts is not None:
            return self._prompts
        with self._lock:
            if self._prompts is not None:  # another thread loaded it while this one waited
                return self._prompts
            prompts: dict[str, Prompt] = {}
            if self.folder.is_dir():
                for path in sorted(self.folder.iterdir()):
                    if path.suffix in _SUFFIXES and path.is_file():
                        prompt = load_prompt(path)
                        if prompt.name in prompts:
                            raise PromptError(f"{path}: prompt {prompt.name!r} is also defined by {prompts[prompt.name].path}")
                        prompts[prompt.name] = prompt
            self._prompts = prompts
            return prompts

    def names(self) -> list[str]:
        return sorted(self._load())

    def get(self, name: str) -> Prompt:
        prompts = self._load()
        if name not in prompts:
            known = ", ".join(sorted(prompts)) or f"none: no .yaml or .txt files in {self.folder}"
            raise PromptError(f"unknown prompt {name!r}; known prompts: {known}")
        return prompts[name]

    def render(self, name: str, /, **variables: Any) -> str:
        return self.get(name).render(**variables)


def load_prompt(path: Path) -> Prompt:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptError(f"{path}: cannot read prompt: {exc}") from None
    where = str(path)
    if path.suffix == ".txt":
        return Prompt(path.stem, text, prompt_version(text), path=path, fields=_check_template(text, where))
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise PromptError(f"{where}:{mark.line + 1 if mark else '?'}: invalid YAML: {exc.problem}") from None
    if not isinstance(data, dict) or not isinstance(data.get("template"), str):
        raise PromptError(f"{where}: a prompt file needs a 'template:' string (and optionally {', '.join(_YAML_KEYS[1:])})")
    unknown = sorted(set(data) - set(_YAML_KEYS))
    if unknown:
        raise PromptError(f"{where}: unknown keys {unknown}; known: {', '.join(_YAML_KEYS)}")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise PromptError(f"{where}: 'metadata' must be a mapping")
    template = data["template"]
    label = data.get("label")
    return Prompt(path.stem, template, prompt_version(template), None if label is None else str(label),
                  data.get("description"), metadata, path, _check_template(template, where))


_DEFAULT: PromptRegistry | None = None


def default_registry() -> PromptRegistry:
    """The registry of the run (ini ``llm_eval_prompts_dir``), or ./prompts outside one."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = PromptRegistry(Path(DEFAULT_PROMPTS_DIR))
    return _DEFAULT


def set_default_registry(registry: PromptRegistry | None) -> None:
    global _DEFAULT
    _DEFAULT = registry


def render(name: str, /, **variables: Any) -> str:
    """Render prompt ``name`` from the run's registry: ``render("support", question=q)``."""
    return default_registry().render(name, **variables)


@contextmanager
def recording_prompts(used: dict[str, str]) -> Iterator[None]:
    """Collect ``{name: version}`` of the prompts rendered in the block (one case)."""
    token = _USED.set(used)
    try:
        yield
    finally:
        _USED.reset(token)


class _CorruptLine(PromptError):
    def __init__(self, message: str) -> None:
        where, sep, problem = message.partition(": ")
        super().__init__(f"{where}: corrupt prompt log line ({problem})" if sep else message)


class PromptLog:
    """The append-only log of prompt versions and their blessed results (JSON lines).

    Each line: ``{"name", "version", "label", "suite", "verdict", "metrics": {metric:
    mean}, "at", "commit"}`` (``schemas/prompt-log-entry.schema.json``). A version's first
    line is when it was first seen.

    Appends are whole lines, written under a lock (``.<log name>.lock`` beside the log), so
    two runs never interleave or lose entries. A write killed midway leaves a partial last
    line: the next append moves it to ``<log>.partial`` (and says so in
    :attr:`set_aside`) rather than gluing the new entry onto it; reading skips it and says
    so in :attr:`warnings`. Any other bad line is a PromptError naming the line and field.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []
        self.set_aside: Path | None = None

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")

    def append(self, entries: list[Mapping[str, Any]]) -> None:
        if not entries:
            return
        from .fileio import file_lock

        lines = "".join(json.dumps(dict(entry), sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n" for entry in entries)
        with file_lock(self.lock_path, f"the prompt log {self.path}", PromptError):
            self._set_aside_partial_line()
            # One write of whole lines in append mode, under the lock.
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())

    def _set_aside_partial_line(self) -> None:
        """Move a last line without its newline (a killed write) to ``<log>.partial``."""
        try:
            handle = open(self.path, "r+b")
        except FileNotFoundError:
            return
        with handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return
            handle.seek(max(0, size - 1))
            if handle.read(1) == b"\n":
                return
            handle.seek(0)
            data = handle.read()
            cut = data.rfind(b"\n") + 1
            aside = self.path.with_name(self.path.name + ".partial")
            with open(aside, "ab") as out:
                out.write(data[cut:] + b"\n")
                out.flush()
                os.fsync(out.fileno())
            handle.truncate(cut)
            handle.flush()
            os.fsync(handle.fileno())
        self.set_aside = aside
        line = data.count(b"\n") + 1
        self.warnings.append(f"{self.path}:{line}: a partial last line ({size - cut} bytes, from an "
                             f"interrupted write) was moved to {aside}")

    def entries(self) -> list[dict[str, Any]]:
        """The log's entries; a partial last line is skipped (see :attr:`warnings`)."""
        from .validation import check, parse, read_text

        text = read_text(self.path, "prompt-log", PromptError, missing_ok=True)
        if text is None:
            return []
        lines = text.split("\n")
        entries = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if number == len(lines):  # no newline after it: a write that never finished
                self.warnings.append(f"{self.path}:{number}: partial last line (an interrupted write) skipped")
                continue
            entry = parse(line, str(self.path), _CorruptLine, line=number)
            check(entry, "prompt-log", f"{self.path}:{number}", _CorruptLine, what="not a valid entry")
            entries.append(entry)
        return entries

    @staticmethod
    def now() -> str:
        return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
