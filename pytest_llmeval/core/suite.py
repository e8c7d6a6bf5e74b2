"""A suite's plan: the ``llm_eval`` marker's arguments, validated, with its dataset loaded.

One suite is one marked test function. The plan holds everything its case items need
(cases, bound scorers, target, per-case rules) and the :class:`SuiteSpec` that travels
with every case result to the gate.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import ConfigError, ScorerError
from ..gate.budgets import parse_budgets
from ..models import Case, SuiteSpec
from ..providers.config import ProviderConfig
from ..scorers import BoundScorer, ScorerRegistry
from .datasets import is_remote, load_dataset, load_remote_dataset
from .recorder import EvalRecorder
from .variants import VARIANT_MARKER_ARGS, RunVariants, Variant, suite_variants

__all__ = ["MARKER_ARGS", "SuitePlan", "plan_suite"]

ALL_METRICS = "*"  # key of a suite-wide max_drop= given as one number
MARKER_ARGS = ("dataset", "scorers", "thresholds", "case_thresholds", "target", "repeats", "max_drop", "budgets", "provider",
               *VARIANT_MARKER_ARGS)


@dataclass(frozen=True)
class SuitePlan:
    spec: SuiteSpec
    cases: tuple[Case, ...]
    scorers: tuple[BoundScorer, ...]
    target: Callable[..., Any] | None
    case_thresholds: Mapping[str, float]
    provider: Mapping[str, Any] = field(default_factory=dict)  # ProviderConfig overrides for this suite
    auto_repeats: bool = False  # repeats="auto": one item per case; further rounds run after the items
    variants: Mapping[str, Variant] = field(default_factory=dict)  # name -> variant, in order (empty: none)

    def new_recorder(self, case: Case) -> EvalRecorder:
        """An empty recorder for one case of this suite (its scorers, per-case minimums and variant)."""
        return EvalRecorder(case, self.scorers, self.case_thresholds, self.variants.get(case.variant))

    def items(self) -> list[tuple[str, Case]]:
        """(item id, case) per case, repeat and variant, case-major, in dataset order; with
        variants the id ends in the variant's name (``q001-concise``: ``-k concise`` selects it)."""
        if self.spec.repeats == 1:
            items = [(case.id, case) for case in self.cases]
        else:
            items = [(f"{case.id}-r{k}", replace(case, repeat=k)) for case in self.cases for k in range(self.spec.repeats)]
        if not self.variants:
            return items
        return [(f"{item_id}-{name}", replace(case, variant=name)) for item_id, case in items for name in self.variants]


def plan_suite(
    suite_id: str,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    test_dir: Path,
    rootdir: Path,
    registry: ScorerRegistry,
    *,
    ini_thresholds: Mapping[str, float],
    repeats_override: int | str | None,
    default_repeats: int | str = 1,
    ini_budgets: Mapping[str, float] | None = None,
    run_variants: RunVariants | None = None,
    prompt_lookup: Callable[[str], tuple[str, str | None]] | None = None,
    dataset_cache: Path | None = None,
) -> SuitePlan:
    """Validate the marker, load the dataset, bind the scorers. Raises LLMEvalError subclasses."""
    where = f"{suite_id}: @pytest.mark.llm_eval"
    if args:
        raise ConfigError(f"{where}: takes keyword arguments only ({', '.join(MARKER_ARGS)})")
    for key in kwargs:
        if key not in MARKER_ARGS:
            close = difflib.get_close_matches(key, MARKER_ARGS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(MARKER_ARGS)}"
            raise ConfigError(f"{where}: unknown argument {key!r}{hint}")
    if "dataset" not in kwargs:
        raise ConfigError(f"{where}: dataset= is required (a JSONL, YAML or CSV file, relative to the test file)")

    dataset_arg = kwargs["dataset"]
    if not isinstance(dataset_arg, (str, os.PathLike)):
        raise ConfigError(f"{where}: dataset= must be a path (str or os.PathLike), got {dataset_arg!r}")

    target = kwargs.get("target")
    if target is not None and not callable(target):
        raise ConfigError(f"{where}: target= must be a callable taking the case's inputs, got {target!r}")
    scorer_entries = kwargs.get("scorers", [])
    if isinstance(scorer_entries, (str, tuple)):
        scorer_entries = [scorer_entries]
    if not isinstance(scorer_entries, list):
        raise ConfigError(f"{where}: scorers= must be a list of names or (name, options) pairs, got {scorer_entries!r}")
    try:
        scorers = tuple(registry.bind(scorer_entries))
    except ScorerError as exc:
        raise ScorerError(f"{where}: {exc}") from None

    thresholds = _unit_mapping(where, "thresholds", kwargs.get("thresholds", {}))
    case_thresholds = _unit_mapping(where, "case_thresholds", kwargs.get("case_thresholds", {}))
    max_drop = kwargs.get("max_drop", {})
    if isinstance(max_drop, (int, float)) and not isinstance(max_drop, bool):
        if math.isnan(max_drop) or not 0 <= max_drop <= 1:
            raise ConfigError(f"{where}: max_drop= must be a number in [0, 1], got {max_drop!r}")
        max_drop = {ALL_METRICS: float(max_drop)}
    max_drop = _unit_mapping(where, "max_drop", max_drop)

    marker_budgets = kwargs.get("budgets", {})
    if not isinstance(marker_budgets, Mapping):
        raise ConfigError(f"{where}: budgets= must be a mapping of budget name to number, got {marker_budgets!r}")
    budgets = {**(ini_budgets or {}), **parse_budgets(marker_budgets, where)}

    provider = kwargs.get("provider", {})
    if not isinstance(provider, Mapping):
        raise ConfigError(f"{where}: provider= must be a mapping of provider settings, got {provider!r}")
    try:
        ProviderConfig().with_overrides(provider)
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"{where}: provider=: {exc}") from None

    repeats = repeats_override if repeats_override is not None else kwargs.get("repeats", default_repeats)
    auto = repeats == "auto"
    if auto:
        if target is None and repeats_override is None and "repeats" in kwargs:
            raise ConfigError(f"{where}: repeats='auto' needs target=: further rounds call the app without running the test body")
        # From the command line or ini, auto applies to the suites that can re-run their app.
        auto, repeats = target is not None, 1
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ConfigError(f"{where}: repeats= must be a positive integer or 'auto', got {repeats!r}")

    metric_names = [s.metric for s in scorers]
    for name, given in (("thresholds", thresholds), ("case_thresholds", case_thresholds), ("max_drop", max_drop)):
        for metric in given:
            close = [] if metric in metric_names else difflib.get_close_matches(metric, metric_names, n=1)
            if close:  # a name no scorer records but one nearly does: a typo, not a recorded value
                raise ConfigError(f"{where}: {name}= names {metric!r}, which no scorer of this suite records; did you mean {close[0]!r}?")

    variant_spec, variants = suite_variants(where, kwargs, target, run_variants or RunVariants(), prompt_lookup)

    if is_remote(dataset_arg):  # s3://, gs://, https://, file://: through fsspec, cached by fingerprint
        dataset = load_remote_dataset(dataset_arg, dataset_cache or rootdir / ".llm-eval" / "datasets")
    else:
        path = test_dir / dataset_arg
        dataset = load_dataset(path, _display(path, rootdir))
    clash = sorted({k for v in variants.values() for k in v.kwargs} & {k for case in dataset.cases for k in case.inputs})
    if clash:
        raise ConfigError(f"{where}: variant setting(s) {', '.join(clash)} are also dataset inputs: rename one "
                          "(a variant must not silently replace a row's input)")
    if target is not None and not variants:  # variants add their own keyword arguments
        _check_target_signature(where, target, dataset.cases, dataset.name)
    spec = SuiteSpec(
        suite_id=suite_id,
        dataset=dataset.name,
        fingerprint=dataset.fingerprint,
        n_rows=len(dataset.cases),
        repeats=repeats,
        thresholds=thresholds,
        default_thresholds=dict(ini_thresholds),
        max_drop=max_drop,
        budgets=budgets,
        metrics=tuple(s.metric for s in scorers),
        variants=variant_spec,
        case_thresholds=case_thresholds,
    )
    return SuitePlan(spec, dataset.cases, scorers, target, case_thresholds, dict(provider), auto_repeats=auto,
                     variants=variants)


def _check_target_signature(where: str, target: Callable[..., Any], cases: tuple[Case, ...], dataset: str) -> None:
    """The target is called as ``target(**case.inputs)``: refuse at collection, once, a
    target whose signature cannot take a row's input keys."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # builtins and some C callables: nothing to check
        return
    for case in cases:
        try:
            signature.bind(**case.inputs)
        except TypeError as exc:
            at = f"{dataset}:{case.line}" if case.line is not None else dataset
            name = getattr(target, "__qualname__", repr(target))
            raise ConfigError(
                f"{where}: target {name}{signature} cannot take the inputs of row {case.id!r} ({at}): "
                f"keys {sorted(case.inputs)}; {exc}"
            ) from None


def _unit_mapping(where: str, name: str, value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {name}= must be a mapping of metric name to a number in [0, 1], got {value!r}")
    out = {}
    for metric, number in value.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)) or math.isnan(number) or not 0 <= number <= 1:
            raise ConfigError(f"{where}: {name}[{metric!r}] must be a number in [0, 1], got {number!r}")
        out[str(metric)] = float(number)
    return out


def _display(path: Path, rootdir: Path) -> str:
    """The dataset path relative to rootdir when it lies below it (stable across machines)."""
    try:
        return path.resolve().relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
