"""The baseline store: one committed JSON file per suite with per-case scores.

Files are deterministic and diff-friendly: sorted keys, numbers rounded to 6 decimals,
one case per line, so a reviewer reads a baseline change in a merge request. Writes are
atomic (temporary file + ``os.replace``), and a baseline whose content did not change is
not rewritten, so its bytes stay identical. A file that exists but cannot be read is a
:class:`~pytest_llmeval.errors.BaselineError`, never "no baseline".
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from ..errors import BaselineError
from ..fileio import git_info, write_atomic

__all__ = ["FORMAT", "Baseline", "BaselineCase", "BaselineStore", "provenance"]

FORMAT = "pytest-llmeval-baseline/1"
_DIGITS = 6


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
            {m: tuple(round(float(v), _DIGITS) for v in values) for m, values in scores.items()},
            {k: round(float(v), _DIGITS) for k, v in (usage or {}).items()},
            output,
        )

    def means(self) -> dict[str, float]:
        return {metric: sum(values) / len(values) for metric, values in self.scores.items() if values}


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
        """The suite's baseline, ``None`` when there is no file; BaselineError when the
        file exists but cannot be trusted."""
        path = self.path_for(suite_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise BaselineError(f"{path}: cannot read baseline: {exc}") from None
        try:
            return replace(_parse(text, suite_id), digest=hashlib.sha256(text.encode("utf-8")).hexdigest())
        except json.JSONDecodeError as exc:
            raise BaselineError(f"{path}:{exc.lineno}: corrupt baseline (invalid JSON: {exc.msg}); restore it from version control or delete it to start over") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineError(f"{path}: corrupt baseline ({exc}); restore it from version control or delete it to start over") from None

    def write(self, baseline: Baseline) -> bool:
        """Write atomically unless the stored baseline has the same content; True if written."""
        path = self.path_for(baseline.suite_id)
        old = self.load(baseline.suite_id)
        if old is not None and old.same_content(baseline):
            return False
        write_atomic(path, baseline.render())
        return True


def _parse(text: str, suite_id: str) -> Baseline:
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"unknown format {data.get('format') if isinstance(data, dict) else None!r}, expected {FORMAT!r}")
    if data["suite"] != suite_id:
        raise ValueError(f"file belongs to suite {data['suite']!r}, not {suite_id!r}")
    cases = {}
    for case_id, entry in data["cases"].items():
        output = entry.get("output")
        if output is not None and not isinstance(output, str):
            raise ValueError(f"case {case_id!r}: output must be a string")
        case = BaselineCase.of(str(entry["hash"]), entry["scores"], entry.get("usage"), output)
        if any(not values for values in case.scores.values()):
            raise ValueError(f"case {case_id!r} has a metric with no values")
        cases[case_id] = case
    return Baseline(
        suite_id=data["suite"],
        dataset=str(data["dataset"]),
        fingerprint=str(data["fingerprint"]),
        cases=cases,
        plugin_version=str(data.get("plugin_version", "")),
        provenance=dict(data.get("provenance") or {}),
        prompts={str(k): [str(v) for v in versions] for k, versions in (data.get("prompts") or {}).items()},
    )


def provenance(root: Path) -> dict[str, Any]:
    """When and from which commit a baseline was written (the commit when git knows it)."""
    info: dict[str, Any] = {"written_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat()}
    commit = git_info(root).get("commit")
    if commit:
        info["git_commit"] = commit
    return info
