"""The baseline store: one committed JSON file per suite with per-case scores.

Files are deterministic and diff-friendly: sorted keys, numbers rounded to 6 decimals,
one case per line, so a reviewer reads a baseline change in a merge request. Writes are
atomic (temporary file + ``os.replace``) and keep the file's permissions, and a baseline
whose content did not change is not rewritten, so its bytes stay identical.

Reading goes through :mod:`pytest_llmeval.validation` (size, strict JSON, depth, and
``schemas/baseline.schema.json``: scores are lists of numbers in [0, 1], ...): a file that
exists but cannot be trusted is a :class:`~pytest_llmeval.errors.BaselineError` naming the
file, line, case and field ("corrupt baseline"), never "no baseline".

Writers hold the folder's lock (``<root>/.baselines.lock``) around read-merge-write
(:meth:`BaselineStore.update`), so two runs updating different cases of one suite both
keep theirs; the folder gets a ``.gitignore`` for temporary and lock files, and temporary
files of killed writes are removed by the next writer.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

from ..errors import BaselineError
from ..fileio import clean_stale_temps, ensure_gitignore, file_lock, git_info, write_atomic

__all__ = ["FORMAT", "Baseline", "BaselineCase", "BaselineStore", "provenance", "quantise"]

FORMAT = "pytest-llmeval-baseline/1"
_DIGITS = 6
LOCK_NAME = ".baselines.lock"
_FIX = "restore it from version control or delete it to start over"


class _Corrupt(BaselineError):
    def __init__(self, message: str) -> None:
        path, sep, problem = message.partition(": ")
        super().__init__(f"{path}: corrupt baseline ({problem}); {_FIX}" if sep else f"{message}; {_FIX}")


def quantise(value: float) -> float:
    """``value`` at the precision a baseline stores it: rounded to 6 decimals (idempotent).

    The one place that precision is defined: the baseline writer stores scores through it
    and the run passes its own scores through it before they are compared, so an identical
    rerun compares equal to its baseline (change 0, p = 1) whatever the scorer's float noise.
    """
    return round(float(value), _DIGITS)


@dataclass(frozen=True)
class BaselineCase:
    """One case's content hash and its scores per metric, one value per repeat."""

    content_hash: str
    scores: Mapping[str, tuple[float, ...]]
    usage: Mapping[str, float] = field(default_factory=dict)  # mean app input/output tokens
    output: str | None = None  # the first repeat's output, cut at ini llm_eval_baseline_output_chars

    @classmethod
    def of(cls, content_hash: str, scores: Mapping[str, Any], usage: Mapping[str, Any] | None = None,
           output: str | None = None) -> BaselineCase:
        """Build with values rounded as stored, so a reloaded case compares equal."""
        return cls(
            content_hash,
            {m: tuple(map(quantise, values)) for m, values in scores.items()},
            {k: quantise(v) for k, v in (usage or {}).items()},
            output,
        )

    def means(self) -> dict[str, float]:
        return {metric: sum(values) / len(values) for metric, values in self.scores.items() if values}

    @property
    def repeats(self) -> int:
        """How many repeats of the case the baseline holds (the most of any metric)."""
        return max((len(values) for values in self.scores.values()), default=0)

    @property
    def flaky(self) -> bool:
        """Whether the stored repeats of some metric disagree (``repeats="auto"`` with
        ``rerun = flaky`` re-runs these cases)."""
        return any(len(set(values)) > 1 for values in self.scores.values())


@dataclass(frozen=True)
class Baseline:
    suite_id: str
    dataset: str
    fingerprint: str
    cases: Mapping[str, BaselineCase]
    plugin_version: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)
    digest: str = field(default="", compare=False)  # sha256 of the file it was read from
    prompts: Mapping[str, list[str]] = field(default_factory=dict)  # prompt name -> versions

    def same_content(self, other: Baseline) -> bool:
        """Equal apart from when, by whom and with which plugin version it was written."""
        return replace(self, provenance={}, plugin_version="") == replace(other, provenance={}, plugin_version="")

    def merged(self, updates: Mapping[str, BaselineCase], keep: set[str] | None) -> dict[str, BaselineCase]:
        """This baseline's cases with ``updates`` applied; with ``keep`` given, cases not in
        it are pruned (only a full run knows which cases the dataset still has)."""
        cases = dict(self.cases)
        cases.update(updates)
        if keep is not None:
            cases = {case_id: case for case_id, case in cases.items() if case_id in keep}
        return cases

    def render(self) -> str:
        header = {
            "format": FORMAT,
            "suite": self.suite_id,
            "dataset": self.dataset,
            "fingerprint": self.fingerprint,
            "plugin_version": self.plugin_version,
            "prompts": {name: list(versions) for name, versions in sorted(self.prompts.items())},
            "provenance": dict(self.provenance),
        }
        lines = ["{"]
        for key, value in header.items():
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True, ensure_ascii=False)},")
        lines.append('  "cases": {')
        rows = []
        for case_id in sorted(self.cases):
            case = self.cases[case_id]
            entry: dict[str, Any] = {"hash": case.content_hash, "scores": {m: list(case.scores[m]) for m in sorted(case.scores)}}
            if case.usage:
                entry["usage"] = dict(case.usage)
            if case.output is not None:
                entry["output"] = case.output
            rows.append(f"    {json.dumps(case_id, ensure_ascii=False)}: {json.dumps(entry, sort_keys=True, ensure_ascii=False)}")
        if rows:
            lines.append(",\n".join(rows))
        lines.append("  }")
        lines.append("}")
        return "\n".join(lines) + "\n"


class BaselineStore:
    """Baseline files under ``root``: ``<root>/<test file path>/<function>.json``."""

    def __init__(self, root: Path, display_root: Path | None = None) -> None:
        self.root = Path(root)
        self.display_root = display_root
        self.written: list[Path] = []  # files written by this store, in order

    def display(self, suite_id: str) -> str:
        """The suite's baseline path as shown to users: relative to ``display_root`` if below it."""
        path = self.path_for(suite_id)
        if self.display_root is not None and path.is_relative_to(self.display_root):
            return path.relative_to(self.display_root).as_posix()
        return str(path)

    def path_for(self, suite_id: str) -> Path:
        file_part, _, function = suite_id.partition("::")
        safe = re.sub(r"[^\w.\-]", "_", function.replace("::", ".")) or "suite"
        return self.root / file_part / f"{safe}.json"

    def load(self, suite_id: str) -> Baseline | None:
        """The suite's baseline, ``None`` when there is no file; BaselineError naming the file,
        line, case and field when the file exists but cannot be trusted."""
        from ..validation import check, parse, read_text

        path = self.path_for(suite_id)
        text = read_text(path, "baseline", _Corrupt, missing_ok=True)
        if text is None:
            return None
        data = parse(text, str(path), _Corrupt)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise _Corrupt(f"{path}: unknown format {found!r}, expected {FORMAT!r}")
        check(data, "baseline", str(path), _Corrupt, what="not a valid baseline", locate=lambda p: _case_line(text, p))
        if data["suite"] != suite_id:
            raise _Corrupt(f"{path}: the file belongs to suite {data['suite']!r}, not {suite_id!r}")
        return replace(_parse(data), digest=hashlib.sha256(text.encode("utf-8")).hexdigest())

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock (waits for another writer); cleans up after killed writes."""
        with file_lock(self.root / LOCK_NAME, f"the baselines in {self.root}", BaselineError):
            ensure_gitignore(self.root)
            clean_stale_temps(self.root)
            yield

    def update(self, suite_id: str, build: Callable[[Baseline | None], Baseline]) -> bool:
        """Under the lock: read the suite's baseline as it is now, ``build`` the new one from
        it, write it unless its content is the same. True if written."""
        with self.locked():
            old = self.load(suite_id)
            baseline = build(old)
            if old is not None and old.same_content(baseline):
                return False
            path = self.path_for(suite_id)
            write_atomic(path, baseline.render())
            self.written.append(path)
            return True

    def write(self, baseline: Baseline) -> bool:
        """Write atomically unless the stored baseline has the same content; True if written."""
        return self.update(baseline.suite_id, lambda _old: baseline)


def _case_line(text: str, path: tuple[Any, ...]) -> int | None:
    """The line of the case a schema error is in (one case per line), when it is one."""
    if len(path) < 2 or path[0] != "cases" or not isinstance(path[1], str):
        return None
    at = text.find("\n    " + json.dumps(path[1], ensure_ascii=False) + ":")
    return None if at < 0 else text.count("\n", 0, at) + 2


def _parse(data: dict[str, Any]) -> Baseline:
    """A Baseline from a document that passed the schema."""
    return Baseline(
        suite_id=data["suite"],
        dataset=data["dataset"],
        fingerprint=data["fingerprint"],
        cases={case_id: BaselineCase.of(entry["hash"], entry["scores"], entry.get("usage"), entry.get("output"))
               for case_id, entry in data["cases"].items()},
        plugin_version=data.get("plugin_version", ""),
        provenance=dict(data.get("provenance") or {}),
        prompts={k: list(versions) for k, versions in (data.get("prompts") or {}).items()},
    )


def lost_baseline(path: Path, root: Path, suite_id: str, compared_before: set[str]) -> str | None:
    """Why a baseline file that is absent now existed before, or None for a suite that never
    had one (a first run). ``compared_before``: the suite ids the previous report compared with
    a baseline. Evidence: that report, else git history of ``path`` (deleted, moved or never
    checked out); a suite with evidence must not be skipped quietly."""
    from ..fileio import git_last_commit

    if suite_id in compared_before:
        return "the previous report compared this suite with it"
    commit = git_last_commit(root, path)
    return f"git has it (last commit {commit})" if commit else None


def provenance(root: Path) -> dict[str, Any]:
    """When and from which commit a baseline was written (the commit when git knows it)."""
    info: dict[str, Any] = {"written_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat()}
    commit = git_info(root).get("commit")
    if commit:
        info["git_commit"] = commit
    return info
