"""Merging shard reports: recombine per-case results and judge them as one run.

A 50,000-case eval spreads over parallel CI jobs (``--llm-eval-shard I/N``, pytest-xdist
inside each); ``llm-eval merge`` reads their reports, refuses incompatible ones, and
re-runs the gate on all cases with the same code as a single run, so verdicts and
numbers are those the unsplit run would have given. No pytest here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..core.run import EvalRun
from ..gate.baseline import BaselineStore
from ..gate.verdicts import GatePolicy
from ..models import CaseResult, SuiteSpec, VariantSpec
from .report import ReportError, build_report

# The run options that change verdicts: shards that differ in one cannot be merged.
RESULT_SHAPING_OPTIONS = ("alpha", "max_drop", "max_drop_by_metric", "non_inferiority", "enforce_thresholds", "repeats", "default_repeats")

__all__ = ["merge_reports", "suite_spec"]

_SPEC_FIELDS = ("dataset", "fingerprint", "n_rows", "repeats", "thresholds", "default_thresholds", "max_drop", "budgets",
                "metrics_declared", "variants")


def merge_reports(reports: Sequence[tuple[str, Mapping[str, Any]]],
                  store: BaselineStore | Callable[[], BaselineStore], git_root: Path | None = None) -> dict[str, Any]:
    """Merge validated report documents (``(source name, document)`` pairs). ``store`` may
    be a function making the baseline store, called once the reports are found mergeable.
    ``git_root``: the project whose git history tells a deleted baseline from one never
    blessed (its suite then notes BASELINE MISSING); None: no such check."""
    if not reports:
        raise ReportError("nothing to merge: give at least one report")
    for name, doc in reports:
        if not doc["complete"]:
            raise ReportError(f"{name}: the run was incomplete ({doc['run'].get('incomplete_reason')}); refusing to merge it")
    _check_shards(reports)
    first_name, first = reports[0]
    options = first["run"]["options"]
    for name, doc in reports[1:]:
        for key in RESULT_SHAPING_OPTIONS:
            if doc["run"]["options"].get(key) != options.get(key):
                raise ReportError(f"{name}: option {key}={doc['run']['options'].get(key)!r} differs from {first_name} "
                                  f"({options.get(key)!r}); shards must run with the same options")

    specs: dict[str, tuple[str, Mapping[str, Any]]] = {}
    seen: dict[tuple[str, str, int, str | None], str] = {}
    run = EvalRun()
    for name, doc in reports:
        for suite in doc["suites"]:
            suite_id = suite["suite_id"]  # a variant's entry: <suite>@<variant>, its cases carry the variant
            if suite_id in specs:
                other_name, other = specs[suite_id]
                for key in _SPEC_FIELDS:
                    if suite.get(key) != other.get(key):
                        raise ReportError(f"{name}: suite {suite_id} has {key}={suite.get(key)!r} but {other_name} has "
                                          f"{other.get(key)!r}; these reports come from different datasets or settings")
            else:
                specs[suite_id] = (name, suite)
            spec = suite_spec(suite)
            for case in suite["cases"]:
                key = (spec.suite_id, case["case_id"], case["repeat"], case.get("variant"))
                if key in seen:
                    raise ReportError(f"{name}: case {case['case_id']!r} (repeat {case['repeat']}) of {suite_id} is also in "
                                      f"{seen[key]}; shards must not overlap")
                seen[key] = name
                run.add(CaseResult.from_dict(case, suite=spec))

    policy = GatePolicy(options["alpha"], options["max_drop"], options["max_drop_by_metric"],
                        options["non_inferiority"], options["enforce_thresholds"],
                        options.get("enforce_partial", False))
    store = store() if callable(store) else store
    outcome = run.finish(store, policy)
    if git_root is not None:
        outcome.flag_lost_baselines(store, git_root)  # shard reports defer the gate: they hold no baseline evidence
    runs = [doc["run"] for _, doc in reports]
    merged_run = {
        **first["run"],
        "started_at": min(r["started_at"] for r in runs),
        "finished_at": max(r["finished_at"] for r in runs),
        "options": {**options, "update": False},
        "shard": None,
        "merged_from": [name for name, _ in reports],
    }
    merged_run.pop("incomplete_reason", None)
    return build_report(merged_run, outcome)


def _check_shards(reports: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Shard reports must be all of one split: every index 1..N once."""
    shards = [(name, doc["run"]["shard"]) for name, doc in reports if doc["run"].get("shard")]
    if not shards:
        return
    if len(shards) != len(reports):
        plain = next(name for name, doc in reports if not doc["run"].get("shard"))
        raise ReportError(f"{plain}: not a shard report, but others are; merge the shards of one split only")
    counts = {shard["count"] for _, shard in shards}
    if len(counts) > 1:
        raise ReportError(f"shard reports of different splits: counts {sorted(counts)}")
    count = counts.pop()
    seen: dict[int, str] = {}
    for name, shard in shards:
        if shard["index"] in seen:
            raise ReportError(f"{name}: shard {shard['index']}/{count} is also {seen[shard['index']]}")
        seen[shard["index"]] = name
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        raise ReportError(f"missing shard(s) {', '.join(f'{i}/{count}' for i in missing)}: a merged verdict needs every shard")


def suite_spec(suite: Mapping[str, Any]) -> SuiteSpec:
    """The spec a report's suite entry was judged with (reports before case_thresholds: none)."""
    return SuiteSpec(
        suite_id=suite.get("variant_of") or suite["suite_id"],
        dataset=suite["dataset"],
        fingerprint=suite["fingerprint"],
        n_rows=suite["n_rows"],
        repeats=suite["repeats"],
        thresholds=suite["thresholds"],
        max_drop=suite["max_drop"],
        budgets=suite["budgets"],
        metrics=tuple(suite["metrics_declared"]),
        default_thresholds=suite["default_thresholds"],
        variants=VariantSpec.from_dict(suite["variants"]) if suite.get("variants") else None,
        case_thresholds=suite.get("case_thresholds") or {},
    )
