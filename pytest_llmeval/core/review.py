"""Human review: which cases a person should look at, and what reviewers decided.

Two halves, no pytest:

* :func:`flag_cases` marks the cases of a judged suite that need a person, each with a
  reason: ``flaky`` (repeats disagree), ``judge_borderline`` (an LLM judge's score close
  to the threshold that decides the case), ``judge_retry`` or ``manual`` (a scorer or the
  test body asked, e.g. ``llm_eval.flag_for_review("why")``; they travel on the case
  result as notes), ``output_changed`` (the output differs a lot from the baseline's)
  and ``scorer_disagreement`` (an LLM judge passes the case and a check fails it, or
  the reverse).
* :class:`ReviewFile` reads the reviewers' decisions, committed in the repository as
  JSON lines (``suite``, ``case``, ``hash``, ``verdict`` ``pass``/``fail``, ``note``,
  optional ``reviewer`` and ``at``). A decision applies while the case's content hash
  is the one reviewed; after the row changes it is shown as stale.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from ..errors import LLMEvalError
from ..models import CaseResult
from ..validation import json_object

__all__ = [
    "JUDGE_MARGIN",
    "OUTPUT_SIMILARITY",
    "REASONS",
    "HumanReview",
    "ReviewError",
    "ReviewFile",
    "ReviewFlag",
    "cut_text",
    "flag_cases",
    "output_similarity",
]

REASONS = ("flaky", "judge_borderline", "judge_retry", "output_changed", "scorer_disagreement", "manual")
JUDGE_MARGIN = 0.1  # a judge score within this of its threshold is borderline (judge steps are 0.25 apart)
OUTPUT_SIMILARITY = 0.5  # outputs less similar than this to the baseline's are a large change
DEFAULT_PASS_MARK = 0.5  # what "passes" means for a binary metric without a threshold
MAX_REVIEW_FILE_BYTES = 10 * 1024 * 1024
VERDICTS = ("pass", "fail")
_CUT = re.compile(r"\.\.\. \[\d+ more characters\]$")


def cut_text(text: str, limit: int | None) -> str:
    """``text`` cut at ``limit`` characters (None: whole), saying how much was left out."""
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters]"


class ReviewError(LLMEvalError):
    """A review file that cannot be read or has a bad line."""


@dataclass(frozen=True)
class ReviewFlag:
    reason: str  # one of REASONS
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class HumanReview:
    """One reviewer decision from the review file (``line``: where it was read)."""

    suite: str
    case: str
    content_hash: str
    verdict: str  # "pass" or "fail"
    note: str = ""
    reviewer: str | None = None
    at: str | None = None
    line: int = 0

    def to_dict(self, current_hash: str) -> dict[str, Any]:
        """As reported for a case whose content hash is now ``current_hash``."""
        return {"verdict": self.verdict, "note": self.note, "reviewer": self.reviewer, "at": self.at,
                "content_hash": self.content_hash, "applies": self.content_hash == current_hash}


def output_similarity(before: str, after: str) -> float:
    """Similarity of two texts in [0, 1] (difflib's ratio over words: 2*matches/total).

    Texts cut by :func:`cut_text` are compared over the length both still have."""
    cut = bool(_CUT.search(before)) or bool(_CUT.search(after))
    before, after = _CUT.sub("", before), _CUT.sub("", after)
    if cut:
        shared = min(len(before), len(after))
        before, after = before[:shared], after[:shared]
    a, b = before.split(), after.split()
    if not a and not b:
        return 1.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def flag_cases(
    results: Sequence[CaseResult],
    thresholds: Mapping[str, float],
    case_thresholds: Mapping[str, float],
    baseline_outputs: Mapping[str, str],
) -> dict[str, list[ReviewFlag]]:
    """Case id -> its review flags (only flagged cases), for one suite's results.

    ``thresholds`` are the suite's mean thresholds in force, ``case_thresholds`` the
    marker's per-case minimums (they decide a case when both exist), and
    ``baseline_outputs`` the baseline's output per case id (paired cases only)."""
    by_case: dict[str, list[CaseResult]] = {}
    for result in results:
        by_case.setdefault(result.case_id, []).append(result)
    flagged = {}
    for case_id, runs in sorted(by_case.items()):
        runs = sorted(runs, key=lambda r: r.repeat)
        flags = [*_flaky(runs), *_judge_borderline(runs, thresholds, case_thresholds), *_notes(runs),
                 *_output_changed(runs[0], baseline_outputs.get(case_id)), *_disagreement(runs, thresholds, case_thresholds)]
        if flags:
            flagged[case_id] = flags
    return flagged


def _flaky(runs: list[CaseResult]) -> list[ReviewFlag]:
    if len(runs) < 2:
        return []
    values: dict[str, list[float]] = {}
    for run in runs:
        for metric, value in run.scores.items():
            values.setdefault(metric, []).append(value)
    split = [f"{m} {', '.join(f'{v:.2g}' for v in vs)}" for m, vs in sorted(values.items()) if len(set(vs)) > 1]
    return [ReviewFlag("flaky", f"repeats disagree: {'; '.join(split)}")] if split else []


def _judge_borderline(runs: list[CaseResult], thresholds: Mapping[str, float], case_thresholds: Mapping[str, float]) -> list[ReviewFlag]:
    flags = []
    for metric in sorted({m for run in runs for m in run.reasons if m in run.scores}):
        line = case_thresholds.get(metric, thresholds.get(metric))
        if line is None:
            continue
        values = [run.scores[metric] for run in runs if metric in run.scores]
        mean = sum(values) / len(values)
        if abs(mean - line) <= JUDGE_MARGIN:
            flags.append(ReviewFlag("judge_borderline", f"judge {metric} {mean:.2f} is within {JUDGE_MARGIN:g} of its threshold {line:g}"))
    return flags


def _notes(runs: list[CaseResult]) -> list[ReviewFlag]:
    """Flags a scorer or the test body raised while the case ran (``reason: detail``)."""
    seen = dict.fromkeys(note for run in runs for note in run.review_notes)
    flags = []
    for note in seen:
        reason, _, detail = note.partition(": ")
        flags.append(ReviewFlag(reason, detail) if reason in REASONS else ReviewFlag("manual", note))
    return flags


def _output_changed(run: CaseResult, before: str | None) -> list[ReviewFlag]:
    if before is None or run.output is None or run.outcome == "error":
        return []
    similarity = output_similarity(before, run.output)
    if similarity >= OUTPUT_SIMILARITY:
        return []
    return [ReviewFlag("output_changed", f"the output is {similarity:.0%} similar to the baseline's (flagged below {OUTPUT_SIMILARITY:.0%})")]


def _disagreement(runs: list[CaseResult], thresholds: Mapping[str, float], case_thresholds: Mapping[str, float]) -> list[ReviewFlag]:
    """A judge (a metric with a reason) and a check that is not one disagree on whether the
    case passes; metrics count when they have a threshold or binary scores. Two plain checks
    disagreeing (non_empty 1, contains 0) is a wrong answer, not a question for a person."""
    values: dict[str, list[float]] = {}
    for run in runs:
        for metric, value in run.scores.items():
            values.setdefault(metric, []).append(value)
    judged = {m for run in runs for m in run.reasons}
    verdicts: dict[str, tuple[bool, str]] = {}
    for metric, vs in sorted(values.items()):
        line = case_thresholds.get(metric, thresholds.get(metric))
        if line is None and not all(v in (0.0, 1.0) for v in vs):
            continue
        mean = sum(vs) / len(vs)
        verdicts[metric] = (mean >= (DEFAULT_PASS_MARK if line is None else line), f"{metric} {mean:.2f}")
    judges = {verdicts[m][0] for m in verdicts if m in judged}
    checks = {verdicts[m][0] for m in verdicts if m not in judged}
    if len(judges | checks) < 2 or not judges or not checks:
        return []
    passes = [text for ok, text in verdicts.values() if ok]
    fails = [text for ok, text in verdicts.values() if not ok]
    return [ReviewFlag("scorer_disagreement", f"passes on {', '.join(passes)} but fails on {', '.join(fails)}")]


class ReviewFile:
    """Reviewer decisions keyed by (suite id, case id); a later line for the same case wins.

    Raises :class:`ReviewError` naming the file, line and field for a bad line; a missing
    file is an empty one."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.reviews: dict[tuple[str, str], HumanReview] = {}
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ReviewError(f"{self.path}: cannot read the review file: {exc}") from None
        if size > MAX_REVIEW_FILE_BYTES:
            raise ReviewError(f"{self.path}: review file is {size} bytes, over the limit of {MAX_REVIEW_FILE_BYTES}")
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ReviewError(f"{self.path}: cannot read the review file: {exc}") from None
        for number, raw in enumerate(text.splitlines(), 1):
            if raw.strip() and not raw.lstrip().startswith("#"):
                review = self._parse(raw, number)
                self.reviews[(review.suite, review.case)] = review

    def _parse(self, raw: str, number: int) -> HumanReview:
        where = f"{self.path}:{number}"
        data = json_object(raw, where, ReviewError)
        unknown = sorted(set(data) - {"suite", "case", "hash", "verdict", "note", "reviewer", "at"})
        if unknown:
            raise ReviewError(f"{where}: field {unknown[0]!r}: unknown field (known: suite, case, hash, verdict, note, reviewer, at)")
        for name in ("suite", "case", "hash", "verdict"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise ReviewError(f"{where}: field {name!r}: required, a non-empty string")
        if data["verdict"] not in VERDICTS:
            raise ReviewError(f"{where}: field 'verdict': {data['verdict']!r} is not one of {', '.join(VERDICTS)}")
        for name in ("note", "reviewer", "at"):
            if name in data and not isinstance(data[name], str):
                raise ReviewError(f"{where}: field {name!r}: must be a string")
        return HumanReview(data["suite"], data["case"], data["hash"], data["verdict"], data.get("note", ""),
                           data.get("reviewer"), data.get("at"), number)

    def get(self, suite_id: str, case_id: str) -> HumanReview | None:
        return self.reviews.get((suite_id, case_id))

    def __len__(self) -> int:
        return len(self.reviews)
