"""Usage accounting: what every model call of a case cost, in tokens, money and time.

This module owns

* :class:`CallRecord` -- one logical model call (app or judge) as our clients saw it;
* :class:`Ledger` -- the thread-safe list of a case's call records and its JSON-safe
  :meth:`Ledger.summary`, which travels on the case's test report;
* the context variables that tie the running case to its ledger
  (:func:`use_ledger`, :func:`current_ledger`, :func:`record_call`) and say whether a call
  is made for the app or for a judge (:func:`call_kind`, :func:`current_kind`);
* :class:`SuiteUsage` and :func:`summarize_suite` -- a suite's cost, tokens, latency
  percentiles, errors and retries, aggregated from the per-case summaries.

Context propagation: :func:`use_ledger` sets a :class:`contextvars.ContextVar`. asyncio
tasks copy the context when they are created, and the runner runs thread-pool work under
``contextvars.copy_context().run``, so a call made anywhere inside a case lands in that
case's ledger. Work started in a plain thread without a copied context records nothing.

How retries are represented (one rule, used by the clients and by the summaries):

* one :class:`CallRecord` per *logical* call, written once, when the call is over
  (success or failure for good);
* ``retries`` is the number of failed attempts before the recorded (final) attempt, and
  ``retry_kinds`` their :attr:`ProviderError.kind <pytest_llmeval.errors.ProviderError.kind>`
  values in order (``len(retry_kinds) == retries``; a client that does not know them may
  leave ``retry_kinds`` empty, and those retries count under ``"unknown"``);
* ``error`` is the kind of the final attempt when the call failed for good, ``None`` on
  success. So a call that hit HTTP 429 three times with two retries allowed is
  ``retries=2, retry_kinds=("rate_limit", "rate_limit"), error="rate_limit"``; the number
  of failed attempts of a record is ``retries + (error is not None)``;
* tokens and cost are those of the final attempt (failed attempts report no usage);
  ``latency_ms`` is the wall time of the whole logical call, retries and back-off waits
  included, i.e. what the case waited for;
* a cache hit is a record with ``cached=True`` and ``cost=0.0``: its tokens are those of
  the recorded response (what the prompt needs), its cost is what was paid (nothing);
* an answer without a ``usage`` object is a record with ``usage_known=False``: its token
  counts are 0 *and not a fact*; summaries count such calls (``usage_unknown_calls``) and
  budgets and baselines never read their zeros as a measurement.

Token counts follow :class:`pytest_llmeval.providers.usage.Usage`: ``input_tokens`` holds
every input token, of which ``cached_input_tokens`` were cache reads and
``cache_write_tokens`` cache writes; ``output_tokens`` include ``reasoning_tokens``.

Nothing here imports numpy or pytest.
"""

from __future__ import annotations

import contextvars
import math
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, ContextManager, Iterator, Mapping, Sequence

from .runtime import bind

__all__ = [
    "KINDS",
    "CallRecord",
    "Ledger",
    "SuiteUsage",
    "call_kind",
    "current_kind",
    "current_ledger",
    "record_call",
    "summarize_suite",
    "use_ledger",
]

KINDS = ("app", "judge")
"""Who a call is made for: the app under test, or a judge (LLM-as-judge scorer)."""

_UNKNOWN_KIND = "unknown"

_LEDGER: contextvars.ContextVar[Ledger | None] = contextvars.ContextVar("pytest_llmeval_ledger", default=None)
_KIND: contextvars.ContextVar[str] = contextvars.ContextVar("pytest_llmeval_call_kind", default="app")


def _check_kind(kind: object) -> str:
    if kind not in KINDS:
        raise ValueError(f"call kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind  # type: ignore[return-value]


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"CallRecord.{name} must be an int >= 0, not {value!r}")


def _check_amount(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"CallRecord.{name} must be a finite number >= 0, not {value!r}")


@dataclass(frozen=True)
class CallRecord:
    """One logical model call, after its retries (see the module docstring for the rules)."""

    kind: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost: float | None
    cached: bool = False
    error: str | None = None
    retries: int = 0
    retry_kinds: tuple[str, ...] = ()
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    usage_known: bool = True
    source: str = "client"  # "client" (our clients), "capture" (an SDK's HTTP call) or "otel" (a GenAI span)

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        for name in ("provider", "model"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"CallRecord.{name} must be a str, not {getattr(self, name)!r}")
        _check_count("input_tokens", self.input_tokens)
        _check_count("output_tokens", self.output_tokens)
        _check_count("retries", self.retries)
        for name in ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens"):
            _check_count(name, getattr(self, name))
        if self.cached_input_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError(f"CallRecord: {self.cached_input_tokens} cached + {self.cache_write_tokens} cache-write tokens exceed {self.input_tokens} input tokens")
        _check_amount("latency_ms", self.latency_ms)
        if self.cost is not None:
            _check_amount("cost", self.cost)
        if self.error is not None and (not isinstance(self.error, str) or not self.error):
            raise ValueError(f"CallRecord.error must be a non-empty str or None, not {self.error!r}")
        kinds = tuple(self.retry_kinds)
        if any(not isinstance(kind, str) or not kind for kind in kinds):
            raise ValueError(f"CallRecord.retry_kinds must hold non-empty str, not {self.retry_kinds!r}")
        if kinds and len(kinds) != self.retries:
            raise ValueError(f"CallRecord.retry_kinds has {len(kinds)} kind(s) for retries={self.retries}")
        object.__setattr__(self, "retry_kinds", kinds)

    @property
    def priced(self) -> bool:
        """False when the model is not in the price table (``cost is None``)."""
        return self.cost is not None


class Ledger:
    """The call records of one case. Thread-safe: records may arrive from any thread.

    ``label`` names the case in messages (``"case 'paris'"``). ``misses`` holds the strict
    replay misses of the case (one message each): the runner fails the case with them even
    when the app swallowed the error its client raised.
    """

    def __init__(self, label: str = "") -> None:
        self.label = label
        self._lock = threading.Lock()
        self._records: list[CallRecord] = []
        self._misses: list[str] = []

    def add(self, record: CallRecord) -> None:
        if not isinstance(record, CallRecord):
            raise TypeError(f"Ledger.add takes a CallRecord, not {type(record).__name__}")
        with self._lock:
            self._records.append(record)

    def replace(self, old: CallRecord, new: CallRecord) -> None:
        """Put ``new`` where ``old`` is (a retried call's record grows); add it if ``old`` is gone."""
        if not isinstance(new, CallRecord):
            raise TypeError(f"Ledger.replace takes a CallRecord, not {type(new).__name__}")
        with self._lock:
            for i, record in enumerate(self._records):
                if record is old:
                    self._records[i] = new
                    return
            self._records.append(new)

    @property
    def records(self) -> tuple[CallRecord, ...]:
        with self._lock:
            return tuple(self._records)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def miss(self, message: str) -> None:
        with self._lock:
            self._misses.append(message)

    @property
    def misses(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._misses)

    def summary(self) -> dict[str, dict[str, Any]]:
        """JSON-safe totals per kind present (``"app"``, ``"judge"``).

        Each kind maps to ``calls``, ``cached_calls``, ``usage_unknown_calls`` (answers
        without usage: their tokens and cost are not in the sums), ``input_tokens``,
        ``output_tokens``, ``cached_input_tokens``, ``cache_write_tokens``,
        ``reasoning_tokens``, ``cost`` (USD, priced calls only), ``unpriced_models`` (sorted),
        ``unpriced_calls`` (answers with usage whose model has no price), ``latency_ms``
        (sum over calls), ``errors`` (final errors by kind), ``retries`` (failed attempts
        that were retried) and ``retry_kinds`` (those retries by kind). Sums of floats use
        :func:`math.fsum`, so the result does not depend on the order calls finished in.
        """
        records = self.records
        out: dict[str, dict[str, Any]] = {}
        for kind in KINDS:
            mine = [r for r in records if r.kind == kind]
            if not mine:
                continue
            errors = Counter(r.error for r in mine if r.error is not None)
            retry_kinds: Counter[str] = Counter()
            for r in mine:
                retry_kinds.update(r.retry_kinds)
                retry_kinds[_UNKNOWN_KIND] += r.retries - len(r.retry_kinds)
            out[kind] = {
                "calls": len(mine),
                "cached_calls": sum(1 for r in mine if r.cached),
                "usage_unknown_calls": sum(1 for r in mine if not r.usage_known),
                "input_tokens": sum(r.input_tokens for r in mine),
                "output_tokens": sum(r.output_tokens for r in mine),
                "cached_input_tokens": sum(r.cached_input_tokens for r in mine),
                "cache_write_tokens": sum(r.cache_write_tokens for r in mine),
                "reasoning_tokens": sum(r.reasoning_tokens for r in mine),
                "cost": math.fsum(r.cost for r in mine if r.cost is not None),
                "unpriced_models": sorted({r.model for r in mine if r.cost is None and r.usage_known and r.error is None}),
                "unpriced_calls": sum(1 for r in mine if r.cost is None and r.usage_known and r.error is None),
                "latency_ms": math.fsum(r.latency_ms for r in mine),
                "errors": dict(sorted(errors.items())),
                "retries": sum(r.retries for r in mine),
                "retry_kinds": {k: n for k, n in sorted(retry_kinds.items()) if n > 0},
            }
        return out


def current_ledger() -> Ledger | None:
    """The ledger of the case running in this context, or None outside a case."""
    return _LEDGER.get()


_CASE_START_HOOKS: list[Callable[[], None]] = []


def on_case_start(hook: Callable[[], None], *, remove: bool = False) -> None:
    """Call ``hook()`` whenever a case's ledger becomes current (``remove``: stop). A usage
    source that needs the app's set-up done (the OpenTelemetry processor) waits with it."""
    if remove:
        while hook in _CASE_START_HOOKS:
            _CASE_START_HOOKS.remove(hook)
    elif hook not in _CASE_START_HOOKS:
        _CASE_START_HOOKS.append(hook)


@contextmanager
def use_ledger(ledger: Ledger | None) -> Iterator[Ledger | None]:
    """Make ``ledger`` the current ledger inside the ``with`` block (None: record nothing)."""
    if ledger is not None and not isinstance(ledger, Ledger):
        raise TypeError(f"use_ledger takes a Ledger or None, not {type(ledger).__name__}")
    if ledger is not None and _CASE_START_HOOKS:
        for hook in tuple(_CASE_START_HOOKS):
            hook()
    with bind(_LEDGER, ledger):
        yield ledger


def current_kind() -> str:
    """``"app"`` unless inside :func:`call_kind`."""
    return _KIND.get()


def call_kind(kind: str) -> ContextManager[str]:
    """Calls made inside the block are counted as ``kind`` (``"app"`` or ``"judge"``)."""
    return bind(_KIND, _check_kind(kind))


def record_call(record: CallRecord) -> None:
    """Add ``record`` to the current ledger; a no-op outside a case."""
    ledger = _LEDGER.get()
    if ledger is not None:
        ledger.add(record)


# --------------------------------------------------------------------------- suites


@dataclass(frozen=True)
class SuiteUsage:
    """Usage of one suite, aggregated over its cases.

    Costs are in USD and count priced calls only (see ``unpriced_models``); per-case
    figures add app and judge calls. Token totals add app and judge calls;
    ``output_tokens_mean`` is the mean per case of the *app* output tokens (what the
    prompt costs). Latency percentiles are of the per-case app latencies the caller
    passed. ``nan`` means "no data" (and is ``None`` in :meth:`to_dict`).
    """

    cases: int
    cost_total: float
    cost_mean: float
    cost_p95: float
    app_cost_total: float
    judge_cost_total: float
    input_tokens: int
    output_tokens: int
    output_tokens_mean: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    calls: int
    cached_calls: int
    error_rate: float
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    retries_by_kind: Mapping[str, int] = field(default_factory=dict)
    unpriced_models: tuple[str, ...] = ()
    usage_unknown_calls: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    unpriced_calls: int = 0
    app_cached_calls: int = 0  # of cached_calls, the app's (the latency measured is the app's)

    @property
    def usage_complete(self) -> bool:
        """True when every call reported its usage (cost and token sums are facts)."""
        return self.usage_unknown_calls == 0

    @property
    def cost_unknown_calls(self) -> int:
        """Calls whose cost is not in the sums: usage unknown, or a model without a price."""
        return self.usage_unknown_calls + self.unpriced_calls

    @property
    def cost_unknown(self) -> bool:
        """True when no call that was paid for has a known cost (the cost sums say nothing):
        every call not replayed from the cache had no usage or an unpriced model."""
        return self.calls > 0 and self.cost_unknown_calls > 0 and self.cost_unknown_calls >= self.calls - self.cached_calls

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float):
                out[f.name] = None if math.isnan(value) else value
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            elif isinstance(value, Mapping):
                out[f.name] = {str(k): int(v) for k, v in sorted(value.items())}
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuiteUsage:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data and f.default is not MISSING:  # reports written before the field existed
                continue
            value = data[f.name]
            if f.name in _INT_FIELDS:
                kwargs[f.name] = int(value)
            elif f.name in _MAP_FIELDS:
                kwargs[f.name] = {str(k): int(v) for k, v in sorted(dict(value).items())}
            elif f.name == "unpriced_models":
                kwargs[f.name] = tuple(str(name) for name in value)
            else:
                kwargs[f.name] = math.nan if value is None else float(value)
        return cls(**kwargs)


_INT_FIELDS = frozenset({"cases", "input_tokens", "output_tokens", "calls", "cached_calls", "app_cached_calls", "usage_unknown_calls",
                         "cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "unpriced_calls"})
_MAP_FIELDS = frozenset({"errors_by_kind", "retries_by_kind"})


def summarize_suite(
    case_usages: Sequence[Mapping[str, Any]],
    case_latencies_ms: Sequence[float | None],
    case_error_kinds: Sequence[str | None],
) -> SuiteUsage:
    """Aggregate the cases of one suite.

    ``case_usages`` are the :meth:`Ledger.summary` dicts of the cases (after JSON round
    trips; an empty dict is a case that made no calls). ``case_error_kinds`` has one entry
    per case: the :class:`~pytest_llmeval.errors.ProviderError` kind the case ended in, or
    None. ``case_latencies_ms`` are the per-case app latencies the percentiles are taken of
    (linear interpolation, as ``numpy.percentile``); None and nan entries are skipped, so the caller may
    leave out cases without a measured latency. Percentiles and means are nan without data.
    """
    if len(case_error_kinds) != len(case_usages):
        raise ValueError(f"summarize_suite: {len(case_usages)} case usage(s) but {len(case_error_kinds)} case error kind(s)")
    cases = len(case_usages)
    per_case_cost: list[float] = []
    app_costs: list[float] = []
    judge_costs: list[float] = []
    app_output_per_case: list[int] = []
    input_tokens = output_tokens = calls = cached_calls = app_cached_calls = unknown = unpriced_calls = 0
    details: Counter[str] = Counter()
    retries: Counter[str] = Counter()
    unpriced: set[str] = set()
    for usage in case_usages:
        case_costs: list[float] = []
        app_output = 0
        for kind, totals in (usage or {}).items():
            cost = float(totals.get("cost") or 0.0)
            case_costs.append(cost)
            if kind == "app":
                app_costs.append(cost)
            elif kind == "judge":
                judge_costs.append(cost)
            input_tokens += int(totals.get("input_tokens", 0))
            output_tokens += int(totals.get("output_tokens", 0))
            calls += int(totals.get("calls", 0))
            cached_calls += int(totals.get("cached_calls", 0))
            unknown += int(totals.get("usage_unknown_calls", 0))
            unpriced_calls += int(totals.get("unpriced_calls", 0))
            for name in ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens"):
                details[name] += int(totals.get(name, 0))
            unpriced.update(str(name) for name in totals.get("unpriced_models", ()))
            known = totals.get("retry_kinds") or {}
            for retry_kind, count in known.items():
                retries[str(retry_kind)] += int(count)
            missing = int(totals.get("retries", 0)) - sum(int(n) for n in known.values())
            if missing > 0:
                retries[_UNKNOWN_KIND] += missing
            if kind == "app":
                app_output += int(totals.get("output_tokens", 0))
                app_cached_calls += int(totals.get("cached_calls", 0))
        per_case_cost.append(math.fsum(case_costs))
        app_output_per_case.append(app_output)
    latencies = [float(x) for x in case_latencies_ms if x is not None and math.isfinite(float(x))]
    errors = Counter(str(kind) for kind in case_error_kinds if kind is not None)
    p50, p95, p99 = _percentiles(latencies, (50, 95, 99))
    (cost_p95,) = _percentiles(per_case_cost, (95,))
    return SuiteUsage(
        cases=cases,
        cost_total=math.fsum(per_case_cost),
        cost_mean=math.fsum(per_case_cost) / cases if cases else math.nan,
        cost_p95=cost_p95,
        app_cost_total=math.fsum(app_costs),
        judge_cost_total=math.fsum(judge_costs),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        output_tokens_mean=sum(app_output_per_case) / cases if cases else math.nan,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        latency_p99_ms=p99,
        calls=calls,
        cached_calls=cached_calls,
        error_rate=sum(errors.values()) / cases if cases else math.nan,
        errors_by_kind=dict(sorted(errors.items())),
        retries_by_kind=dict(sorted(retries.items())),
        unpriced_models=tuple(sorted(unpriced)),
        usage_unknown_calls=unknown,
        cached_input_tokens=details["cached_input_tokens"],
        cache_write_tokens=details["cache_write_tokens"],
        reasoning_tokens=details["reasoning_tokens"],
        unpriced_calls=unpriced_calls,
        app_cached_calls=app_cached_calls,
    )


def _percentiles(values: Sequence[float], qs: Sequence[float]) -> tuple[float, ...]:
    """Linear-interpolation percentiles (Hyndman & Fan type 7, ``numpy.percentile``'s
    default), in pure Python: importing numpy would add a visible pause to every run."""
    if not values:
        return tuple(math.nan for _ in qs)
    ordered = sorted(values)
    out = []
    for q in qs:
        h = (len(ordered) - 1) * q / 100.0
        low = math.floor(h)
        high = min(low + 1, len(ordered) - 1)
        out.append(ordered[low] + (h - low) * (ordered[high] - ordered[low]))
    return tuple(out)
