"""Value objects that cross module and process boundaries: cases, suite specs, case results.

Everything here is frozen and converts to and from plain JSON-safe dicts, because case
results travel from xdist workers to the controller on pytest's test reports.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

__all__ = ["Case", "CaseResult", "SuiteSpec", "VariantSpec", "case_content_hash"]


@dataclass(frozen=True)
class Case:
    """One golden-dataset row (and, with repeats, which repeat of it this item runs)."""

    id: str
    inputs: Mapping[str, Any]
    expected: Any = None
    context: Any = None
    tags: tuple[str, ...] = ()
    must_pass: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None
    repeat: int = 0
    variant: str | None = None  # with A/B variants: which variant this item runs

    @cached_property
    def content_hash(self) -> str:
        return case_content_hash(self)


def case_content_hash(case: Case) -> str:
    """First 12 hex digits of sha256 over what a score depends on: inputs, expected, context.

    Pairing with a baseline uses it: a row whose content changed is not the same case.
    """
    payload = json.dumps(
        _canonical([case.inputs, case.expected, case.context]), sort_keys=True, default=str, ensure_ascii=False
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def _canonical(value: Any) -> Any:
    """Mapping keys as strings, so YAML mappings with mixed key types (200, "error") hash."""
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    return value


@dataclass(frozen=True)
class VariantSpec:
    """A suite's A/B variants as the gate and the report see them (see core/variants.py).

    ``variants``: (name, settings) in order, settings as given (JSON values);
    ``control``: what every other variant is compared with; ``baseline_variant``: the
    variant the baseline gate applies to (and whose scores --llm-eval-update writes);
    ``min_effect``: the change the power analysis sizes n for; ``non_inferiority``: metric
    -> margin of the "not worse than control" gate; ``parity_margin`` and ``routes``
    (variant -> {route, model, share, fallback}): the provider-parity gate of routed models.
    """

    variants: tuple[tuple[str, Mapping[str, Any]], ...]
    control: str
    baseline_variant: str
    min_effect: float
    non_inferiority: Mapping[str, float] = field(default_factory=dict)
    parity_margin: float | None = None
    routes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.variants)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variants": [{"name": name, "settings": dict(settings)} for name, settings in self.variants],
            "control": self.control,
            "baseline_variant": self.baseline_variant,
            "min_effect": self.min_effect,
            "non_inferiority": dict(self.non_inferiority),
            "parity_margin": self.parity_margin,
            "routes": {name: dict(route) for name, route in self.routes.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VariantSpec:
        return cls(
            variants=tuple((v["name"], dict(v["settings"])) for v in data["variants"]),
            control=data["control"],
            baseline_variant=data["baseline_variant"],
            min_effect=float(data["min_effect"]),
            non_inferiority={k: float(v) for k, v in data["non_inferiority"].items()},
            parity_margin=None if data.get("parity_margin") is None else float(data["parity_margin"]),
            routes={k: dict(v) for k, v in (data.get("routes") or {}).items()},
        )


@dataclass(frozen=True)
class SuiteSpec:
    """What the gate needs to know about one suite (one ``llm_eval``-marked test function)."""

    suite_id: str
    dataset: str
    fingerprint: str
    n_rows: int
    repeats: int = 1
    thresholds: Mapping[str, float] = field(default_factory=dict)  # the marker's: always apply
    max_drop: Mapping[str, float] = field(default_factory=dict)  # "*": the marker's one number for all
    budgets: Mapping[str, float] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()  # what the marker's scorers produce
    default_thresholds: Mapping[str, float] = field(default_factory=dict)  # ini: for metrics the suite has
    variants: VariantSpec | None = None
    case_thresholds: Mapping[str, float] = field(default_factory=dict)  # the marker's per-case minimums

    def thresholds_for(self, present: set[str]) -> dict[str, float]:
        """Thresholds in force: the ini's for metrics present in the suite, then the marker's."""
        return {**{m: t for m, t in self.default_thresholds.items() if m in present}, **self.thresholds}

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": list(self.metrics),
            "default_thresholds": dict(self.default_thresholds),
            "suite_id": self.suite_id,
            "dataset": self.dataset,
            "fingerprint": self.fingerprint,
            "n_rows": self.n_rows,
            "repeats": self.repeats,
            "thresholds": dict(self.thresholds),
            "max_drop": dict(self.max_drop),
            "budgets": dict(self.budgets),
            "variants": self.variants.to_dict() if self.variants is not None else None,
            "case_thresholds": dict(self.case_thresholds),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuiteSpec:
        return cls(
            suite_id=data["suite_id"],
            dataset=data["dataset"],
            fingerprint=data["fingerprint"],
            n_rows=int(data["n_rows"]),
            repeats=int(data["repeats"]),
            thresholds={k: float(v) for k, v in data["thresholds"].items()},
            max_drop={k: float(v) for k, v in data["max_drop"].items()},
            budgets={k: float(v) for k, v in data["budgets"].items()},
            metrics=tuple(data["metrics"]),
            default_thresholds={k: float(v) for k, v in data["default_thresholds"].items()},
            variants=VariantSpec.from_dict(data["variants"]) if data.get("variants") else None,
            case_thresholds={k: float(v) for k, v in (data.get("case_thresholds") or {}).items()},
        )


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case item (one repeat of one row).

    ``outcome`` is ``"passed"``, ``"failed"`` (an assert, ``must_pass`` or a per-case
    minimum) or ``"error"`` (the app or a scorer raised; ``scores`` may be partial, and
    ``error_kind`` says what failed: a provider error kind, ``app`` or ``scorer``).
    ``usage`` is the case's ledger summary (tokens, cost, calls per app/judge);
    ``latency_ms`` the wall time of the app call when the plugin made it; ``models`` the
    ``provider:model`` names the app called; ``output`` the app's output as text,
    truncated for the report.
    """

    suite: SuiteSpec
    case_id: str
    content_hash: str
    repeat: int
    outcome: str
    scores: Mapping[str, float]
    error: str | None = None
    error_kind: str | None = None
    latency_ms: float | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)
    models: tuple[str, ...] = ()
    output: str | None = None
    prompts: Mapping[str, str] = field(default_factory=dict)  # prompt name -> version rendered
    reasons: Mapping[str, str] = field(default_factory=dict)  # metric -> why (LLM judges)
    variant: str | None = None  # the A/B variant the case ran under (None: the suite has none)
    review_notes: tuple[str, ...] = ()  # "reason: detail" asked for while the case ran (see core.review)
    inputs: str | None = None  # the row's inputs as JSON text, truncated like the output
    expected: str | None = None  # the row's expected value as text, truncated like the output
    attempts: int = 1  # runs of the item (pytest-rerunfailures); this result is the last one

    def to_dict(self, *, with_suite: bool = True) -> dict[str, Any]:
        data = self.case_dict()
        if with_suite:
            data["suite"] = self.suite.to_dict()
        return data

    def case_dict(self) -> dict[str, Any]:
        """Everything but the suite spec (the report stores that once per suite)."""
        return {
            "case_id": self.case_id,
            "content_hash": self.content_hash,
            "repeat": self.repeat,
            "outcome": self.outcome,
            "scores": dict(self.scores),
            "error": self.error,
            "error_kind": self.error_kind,
            "latency_ms": self.latency_ms,
            "usage": dict(self.usage),
            "models": list(self.models),
            "output": self.output,
            "prompts": dict(self.prompts),
            "reasons": dict(self.reasons),
            "variant": self.variant,
            "review_notes": list(self.review_notes),
            "inputs": self.inputs,
            "expected": self.expected,
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], suite: SuiteSpec | None = None) -> CaseResult:
        return cls(
            suite=suite if suite is not None else SuiteSpec.from_dict(data["suite"]),
            case_id=data["case_id"],
            content_hash=data["content_hash"],
            repeat=int(data["repeat"]),
            outcome=data["outcome"],
            scores={k: float(v) for k, v in data["scores"].items()},
            error=data.get("error"),
            error_kind=data.get("error_kind"),
            latency_ms=data.get("latency_ms"),
            usage=data.get("usage") or {},
            models=tuple(data.get("models") or ()),
            output=data.get("output"),
            prompts=dict(data.get("prompts") or {}),
            reasons=dict(data.get("reasons") or {}),
            variant=data.get("variant"),
            review_notes=tuple(data.get("review_notes") or ()),
            inputs=data.get("inputs"),
            expected=data.get("expected"),
            attempts=int(data.get("attempts", 1)),
        )
