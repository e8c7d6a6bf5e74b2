"""The JSON report: one document per run, the contract with ``llm-eval-check``.

Built from a :class:`~pytest_llmeval.core.run.RunOutcome` (or, for an interrupted run, from
the case results so far, marked ``complete: false``; what is written while a run is in
progress is :mod:`~pytest_llmeval.reporting.progress`'s), validated against the JSON
Schema shipped in ``schemas/report.schema.json`` (through :mod:`pytest_llmeval.validation`)
and written atomically. A report holds every
case result, so shard reports can be merged and re-judged as if the run had been one.
"""

from __future__ import annotations

import json
import math
import platform
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from ..core.run import RunOutcome, SuiteOutcome, prompt_versions
from ..errors import LLMEvalError
from ..fileio import git_info, write_atomic
from ..gate.verdicts import MetricVerdict
from ..models import CaseResult, SuiteSpec

__all__ = ["SCHEMA_VERSION", "ReportError", "build_report", "json_safe", "load_report", "run_block",
           "schema", "validate", "write_json"]

SCHEMA_VERSION = 2  # 2: A/B variants (suite entries per variant, comparisons)


class ReportError(LLMEvalError):
    """A report that cannot be read, does not validate, or cannot be merged."""


def build_report(
    run: Mapping[str, Any],
    outcome: RunOutcome | None = None,
    partial: Mapping[str, list[CaseResult]] | None = None,
    *,
    incomplete: str | None = None,
    deferred: bool = False,
) -> dict[str, Any]:
    """The report document. ``run`` is the provenance block (see :func:`run_block`).

    With ``outcome`` the suites carry verdicts; otherwise (an interrupted run, or a shard
    whose gate is deferred to ``llm-eval merge``) only their case results."""
    if outcome is not None:
        suites = [_judged_suite(suite) for suite in outcome.suites]
        failed = not outcome.passed or any(s["failed_cases"] or s["errors"] for s in suites)
        verdict = "fail" if failed else "pass"
    else:
        suites = [_unjudged_suite(results) for results in (partial or {}).values()]
        verdict = "incomplete" if incomplete is not None else "deferred" if deferred else "pass"
    return {
        "schema_version": SCHEMA_VERSION,
        "complete": incomplete is None,
        "verdict": verdict,
        "run": {**run, "incomplete_reason": incomplete},
        "suites": suites,
    }


def run_block(started_at: str, options: Mapping[str, Any], root: Path, versions: Mapping[str, str],
              shard: tuple[int, int] | None, git: Mapping[str, str] | None = None,
              baseline_dir: Path | None = None) -> dict[str, Any]:
    """The report's ``run`` block; ``git`` as from :func:`~pytest_llmeval.fileio.git_info` (asked when None);
    ``baseline_dir``, recorded so that ``llm-eval merge`` finds the baselines from anywhere."""
    block = {
        "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "git": dict(git_info(root) if git is None else git),
        "versions": {"python": platform.python_version(), **versions},
        "options": dict(options),
        "shard": None if shard is None else {"index": shard[0], "count": shard[1]},
    }
    if baseline_dir is not None:
        block["baseline_dir"] = str(Path(baseline_dir).absolute())
    return block


def _spec_block(spec: SuiteSpec, results: list[CaseResult]) -> dict[str, Any]:
    return {
        "suite_id": spec.suite_id,
        "dataset": spec.dataset,
        "fingerprint": spec.fingerprint,
        "n_rows": spec.n_rows,
        "repeats": spec.repeats,
        "thresholds": dict(spec.thresholds),
        "default_thresholds": dict(spec.default_thresholds),
        "case_thresholds": dict(spec.case_thresholds),
        "max_drop": dict(spec.max_drop),
        "budgets": dict(spec.budgets),
        "metrics_declared": list(spec.metrics),
        "models": sorted({m for r in results for m in r.models}),
        "prompts": prompt_versions(results),
        "variants": spec.variants.to_dict() if spec.variants is not None else None,
        "variant": None,
        "variant_of": None,
        "summary": None,
        "comparison": None,
    }


def _unjudged_suite(results: list[CaseResult]) -> dict[str, Any]:
    return {
        **_spec_block(results[0].suite, results),
        "verdict": None,
        "cases_run": len({r.case_id for r in results}),
        "errors": sorted({r.case_id for r in results if r.outcome == "error"}),
        "failed_cases": sorted({r.case_id for r in results if r.outcome == "failed"}),
        "flaky_cases": [],
        "baseline": None,
        "metrics": [],
        "usage": None,
        "usage_gates": [],
        "notes": [],
        "review": [],
        "cases": [_case_entry(r, None) for r in results],
    }


def _judged_suite(suite: SuiteOutcome) -> dict[str, Any]:
    baseline = suite.baseline
    paired = {c: baseline.cases[c].means() for c in suite.case_means if baseline is not None and c in baseline.cases
              and c not in suite.changed_cases}
    outputs = {c: baseline.cases[c].output for c in paired if baseline is not None and baseline.cases[c].output is not None}
    return {
        **_spec_block(suite.spec, suite.results),
        **_variant_block(suite),
        "verdict": "pass" if suite.passed else "fail",
        "cases_run": suite.n_cases,
        "errors": sorted(suite.errors),
        "failed_cases": list(suite.failed_cases),
        "flaky_cases": list(suite.flaky_cases),
        "baseline": {
            "path": suite.baseline_path,
            "found": baseline is not None,
            "digest": baseline.digest if baseline is not None else None,
            "fingerprint": baseline.fingerprint if baseline is not None else None,
            "prompts": {k: list(v) for k, v in baseline.prompts.items()} if baseline is not None else {},
            "error": suite.baseline_error,
            "paired_cases": suite.paired_cases,
            "new_cases": list(suite.new_cases),
            "missing_cases": list(suite.missing_cases),
            "changed_cases": list(suite.changed_cases),
            "fingerprint_changed": suite.fingerprint_changed,
            "written": suite.baseline_written,
        } if suite.compared_with_baseline else None,  # a variant the baseline gate does not apply to
        "metrics": [_metric_entry(v) for v in suite.verdicts],
        "usage": suite.usage.to_dict() if suite.usage is not None else None,
        "usage_gates": [{"name": u.name, "verdict": u.status, "message": u.message,
                         "properties": json_safe(dict(u.properties))} for u in suite.usage_verdicts],
        "notes": suite.notes(),
        "review": review_entries(suite),
        "cases": [_case_entry(r, paired.get(r.case_id), outputs.get(r.case_id)) for r in suite.results],
    }


def _variant_block(suite: SuiteOutcome) -> dict[str, Any]:
    """A variant's entry: ``suite_id`` is ``<suite>@<variant>`` (how llm-eval-check names it)."""
    if suite.variant is None:
        return {}
    return {
        "suite_id": suite.display_id,
        "variant": suite.variant,
        "variant_of": suite.spec.suite_id,
        "summary": json_safe(suite.summary.to_dict()) if suite.summary is not None else None,
        "comparison": json_safe(suite.comparison.to_dict()) if suite.comparison is not None else None,
    }


def review_entries(suite: SuiteOutcome) -> list[dict[str, Any]]:
    """One entry per case flagged for review or reviewed by a person, sorted by case id."""
    entries = []
    for case_id in sorted(set(suite.review) | set(suite.human_reviews)):
        human = suite.human_reviews.get(case_id)
        entries.append({
            "case_id": case_id,
            "content_hash": suite.content_hashes[case_id],
            "flags": [flag.to_dict() for flag in suite.review.get(case_id, [])],
            "human": human.to_dict(suite.content_hashes[case_id]) if human is not None else None,
        })
    return entries


def _metric_entry(v: MetricVerdict) -> dict[str, Any]:
    e, c = v.estimate, v.comparison
    compared = c is not None and c.n > 0
    return json_safe({
        "name": v.metric,
        "n": e.n,
        "mean": e.mean,
        "ci_low": e.ci_low,
        "ci_high": e.ci_high,
        "ci_method": e.method,
        "threshold": v.threshold,
        "threshold_failed": v.threshold_failed,
        "allowed_drop": v.allowed_drop,
        "baseline_mean": c.baseline_mean if compared else None,
        "change": c.change if compared else None,
        "change_ci_low": c.ci_low if compared else None,
        "change_ci_high": c.ci_high if compared else None,
        "p_value": c.p_value if compared else None,
        "p_adjusted": v.p_adjusted if compared else None,
        "test": c.test if compared else None,
        "n_paired": c.n if c is not None else 0,
        "mde": c.mde if compared else None,
        "insufficient_evidence": v.insufficient or None,
        "regressed": v.regressed,
        "verdict": v.status,
        "reasons": list(v.failures),
        "notes": list(v.notes),
    })


def _case_entry(result: CaseResult, baseline_means: Mapping[str, float] | None, baseline_output: str | None = None) -> dict[str, Any]:
    entry = json_safe(result.case_dict())
    entry["baseline_scores"] = dict(baseline_means) if baseline_means is not None else None
    entry["baseline_output"] = baseline_output
    return entry


def json_safe(value: Any) -> Any:
    """NaN and infinities become None: JSON has no such numbers."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def schema() -> dict[str, Any]:
    return json.loads(resources.files("pytest_llmeval").joinpath("schemas/report.schema.json").read_text(encoding="utf-8"))


def validate(doc: Any, source: str = "report") -> None:
    """Raise ReportError naming the first schema violation (its suite, case and field)."""
    from ..validation import check

    check(doc, "report", source, ReportError, what="not a valid pytest-llmeval report")


def load_report(path: Path) -> dict[str, Any]:
    """Read and validate a report (size, strict JSON, depth, schema); ReportError naming
    the file otherwise."""
    from ..validation import parse, read_text

    text = read_text(Path(path), "report", ReportError)
    doc = parse(str(text), str(path), ReportError)
    validate(doc, str(path))
    return doc


def suites_compared_before(text: str | None, path: Path) -> set[str]:
    """The suite ids a previous report (its text, read before this run replaced it) compared
    with a found baseline; empty when there was none or it cannot be trusted (it is about to
    be replaced, and only ever adds a warning)."""
    if not text:
        return set()
    from ..validation import parse

    try:
        doc = parse(text, str(path), ReportError)
        validate(doc, str(path))
    except ReportError:
        return set()
    return {suite["suite_id"] for suite in doc["suites"] if (suite.get("baseline") or {}).get("found")}


def write_json(path: Path, doc: Any) -> None:
    """Write atomically (see :func:`~pytest_llmeval.fileio.write_atomic`), redacted
    (:func:`~pytest_llmeval.providers.redaction.redact`: no API key leaves in a report)."""
    from ..providers.redaction import redact

    write_atomic(path, redact(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)) + "\n")
