"""The JSON report: one document per run, the contract with ``llm-eval-check``.

Built from a :class:`~pytest_llmeval.core.run.RunOutcome` (or, for an interrupted run, from
the case results so far, marked ``complete: false``), validated against the JSON Schema
shipped in ``schemas/report.schema.json`` and written atomically. A report holds every
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

__all__ = ["SCHEMA_VERSION", "ReportError", "build_report", "json_safe", "load_report", "placeholder_report", "run_block",
           "schema", "validate", "write_json"]

SCHEMA_VERSION = 1


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


def placeholder_report(run: Mapping[str, Any]) -> dict[str, Any]:
    """Written at the start of a run, so a run killed outright leaves no stale report."""
    return build_report(run, incomplete="the run has not finished (still running, or killed)")


def run_block(started_at: str, options: Mapping[str, Any], root: Path, versions: Mapping[str, str],
              shard: tuple[int, int] | None) -> dict[str, Any]:
    return {
        "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "git": git_info(root),
        "versions": {"python": platform.python_version(), **versions},
        "options": dict(options),
        "shard": None if shard is None else {"index": shard[0], "count": shard[1]},
    }


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
        },
        "metrics": [_metric_entry(v) for v in suite.verdicts],
        "usage": suite.usage.to_dict() if suite.usage is not None else None,
        "usage_gates": [{"name": u.name, "verdict": "pass" if u.passed else "fail", "message": u.message,
                         "properties": json_safe(dict(u.properties))} for u in suite.usage_verdicts],
        "notes": suite.notes(),
        "review": review_entries(suite),
        "cases": [_case_entry(r, paired.get(r.case_id), outputs.get(r.case_id)) for r in suite.results],
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
    """Raise ReportError naming the first schema violation (jsonschema, imported here)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    error = next(iter(sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ReportError(f"{source}: not a valid pytest-llmeval report at {where}: {error.message}")


def load_report(path: Path) -> dict[str, Any]:
    """Read and validate a report; ReportError naming the file otherwise."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: report not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read report: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    validate(doc, str(path))
    return doc


def write_json(path: Path, doc: Any) -> None:
    """Write atomically (see :func:`~pytest_llmeval.fileio.write_atomic`)."""
    write_atomic(path, json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n")
