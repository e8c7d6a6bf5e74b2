"""OpenTelemetry GenAI spans as a second usage source: model calls that frameworks report
as spans, counted against the case that made them.

Frameworks the HTTP capture cannot see (another HTTP stack, a gRPC SDK, a framework with
its own client) often emit OpenTelemetry spans that follow the GenAI semantic
conventions. With ini ``llm_eval_otel = true`` (the ``otel`` extra: opentelemetry-sdk),
:func:`enable` adds a span processor to the tracer provider; each finished *model-call*
span started inside a case becomes one
:class:`~pytest_llmeval.providers.accounting.CallRecord` (``source="otel"``) in that
case's ledger. Attributes read (semantic conventions for GenAI spans, with the
deprecated names still emitted by many instrumentors):

* ``gen_ai.usage.input_tokens`` / ``gen_ai.usage.output_tokens`` (usage unknown when
  either is missing), ``gen_ai.usage.cache_read.input_tokens`` and
  ``gen_ai.usage.cache_creation.input_tokens`` (part of the input tokens);
* the model: ``gen_ai.response.model``, else ``gen_ai.request.model``;
* the provider: ``gen_ai.provider.name``, else the deprecated ``gen_ai.system``;
* ``gen_ai.operation.name``: ``chat``, ``text_completion``, ``generate_content`` and
  ``embeddings`` are model calls; ``invoke_agent``, ``create_agent`` and
  ``execute_tool`` spans are not counted (their usage, if any, sums their children's);
  a span without an operation name counts when it names a model and usage;
* ``error.type`` or an ERROR status: the call failed (``error`` = that type);
* latency: the span's end minus its start.

**No double counting.** A call is counted once, by the innermost source that saw it:

1. a span inside which (in its own context or a descendant span's) the HTTP capture
   recorded a call is *not* counted: the capture already counted that call, with the
   response's exact usage (an SDK instrumentor's span around an ``openai`` call);
2. a model-call span inside which another model-call span was counted is not counted
   either (a framework's span around an instrumentor's span).

Attribution: a span belongs to the case whose ledger was current when the span *started*
(context variables, as for the other sources); spans started outside any case are ignored.
Judge calls are spans started inside a judge scorer (``kind="judge"``).

When the processor is attached: at :func:`enable` if the global tracer provider is an SDK
``TracerProvider``; otherwise when the first case starts (an app usually sets its provider
when it is imported, during collection); if there is still none then, the plugin sets an
SDK ``TracerProvider`` of its own (with no exporter) as the global one. The processor is
removed from the ledger's view by :func:`disable` (an SDK provider cannot drop a
processor; it stays attached but idle). opentelemetry is imported only by :func:`enable`.
"""

from __future__ import annotations

import threading
from typing import Any

from . import accounting, runtime

__all__ = ["MODEL_OPERATIONS", "disable", "enable", "enabled", "note_captured_call", "record_of"]

MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
_LOCK = threading.Lock()
_ENABLED = False
_ATTACHED = False
# span id -> (ledger, kind, parent span id): spans started inside a case and not yet ended
_OPEN: dict[int, tuple[accounting.Ledger, str, int | None]] = {}
_COVERED: set[int] = set()  # open spans inside which a call was already counted


def enabled() -> bool:
    return _ENABLED


def enable() -> None:
    """Start reading GenAI spans (idempotent). Raises ImportError naming the extra when
    opentelemetry-sdk is not installed."""
    global _ENABLED
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        raise ImportError("llm_eval_otel needs opentelemetry-sdk: pip install 'pytest-llmeval[otel]'") from None
    with _LOCK:
        _ENABLED = True
    _attach(create=False)
    accounting.on_case_start(_attach_at_first_case)


def disable() -> None:
    global _ENABLED
    with _LOCK:
        _ENABLED = False
        _OPEN.clear()
        _COVERED.clear()
    accounting.on_case_start(_attach_at_first_case, remove=True)


def _attach_at_first_case() -> None:
    if not _ATTACHED:
        _attach(create=True)
    accounting.on_case_start(_attach_at_first_case, remove=True)


def _attach(*, create: bool) -> None:
    """Add the processor to the global SDK tracer provider (``create``: set one if there is none)."""
    global _ATTACHED
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    with _LOCK:
        if _ATTACHED:
            return
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            if not create:
                return
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
            provider = trace.get_tracer_provider()  # another thread may have set one first
            if not isinstance(provider, TracerProvider):
                return
        provider.add_span_processor(_processor())
        _ATTACHED = True


def _processor() -> Any:
    from opentelemetry.sdk.trace import SpanProcessor

    class GenAISpanProcessor(SpanProcessor):  # type: ignore[misc]
        """Turns finished GenAI model-call spans into call records (see the module docstring)."""

        def on_start(self, span: Any, parent_context: Any = None) -> None:
            ledger = accounting.current_ledger()
            if not _ENABLED or ledger is None:
                return
            parent = span.parent.span_id if span.parent is not None else None
            with _LOCK:
                _OPEN[span.context.span_id] = (ledger, accounting.current_kind(), parent)

        def on_end(self, span: Any) -> None:
            span_id = span.context.span_id
            with _LOCK:
                entry = _OPEN.pop(span_id, None)
                covered = span_id in _COVERED
                _COVERED.discard(span_id)
            if entry is None or not _ENABLED:
                return
            ledger, kind, parent = entry
            if covered:
                return
            record = record_of(span.attributes or {}, kind=kind, latency_ms=_latency_ms(span), failed=_failed(span))
            if record is None:
                return
            _cover(parent)
            ledger.add(record)

        def shutdown(self) -> None:
            return None

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return GenAISpanProcessor()


def note_captured_call() -> None:
    """Called by the HTTP capture when it records a call: the GenAI spans open around it
    (the current span and its open ancestors) are not counted again."""
    if not _ENABLED:
        return
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        _cover(context.span_id, include_self=True)


def _cover(span_id: int | None, *, include_self: bool = True) -> None:
    with _LOCK:
        seen = 0
        while span_id is not None and span_id in _OPEN and seen < 1000:
            if include_self:
                _COVERED.add(span_id)
            include_self = True
            span_id = _OPEN[span_id][2]
            seen += 1


def _latency_ms(span: Any) -> float:
    if span.start_time is None or span.end_time is None:
        return 0.0
    return max(0.0, (span.end_time - span.start_time) / 1e6)


def _failed(span: Any) -> str | None:
    from opentelemetry.trace import StatusCode

    error_type = (span.attributes or {}).get("error.type")
    if error_type:
        return str(error_type)
    return "error" if span.status is not None and span.status.status_code == StatusCode.ERROR else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        return None
    return int(value)


def record_of(attributes: Any, *, kind: str, latency_ms: float, failed: str | None) -> accounting.CallRecord | None:
    """The call record of a span with these attributes, or None when it is not a model call.
    Pure: no opentelemetry import (``attributes`` is any mapping)."""
    operation = attributes.get("gen_ai.operation.name")
    model = attributes.get("gen_ai.response.model") or attributes.get("gen_ai.request.model")
    inputs = _count(attributes.get("gen_ai.usage.input_tokens"))
    outputs = _count(attributes.get("gen_ai.usage.output_tokens"))
    if operation is not None and operation not in MODEL_OPERATIONS:
        return None
    if operation is None and not (model and (inputs is not None or outputs is not None)):
        return None
    provider = str(attributes.get("gen_ai.provider.name") or attributes.get("gen_ai.system") or "unknown")
    model = str(model or "unknown")
    known = inputs is not None and outputs is not None
    inputs, outputs = inputs or 0, outputs or 0
    cached = _count(attributes.get("gen_ai.usage.cache_read.input_tokens")) or 0
    written = _count(attributes.get("gen_ai.usage.cache_creation.input_tokens")) or 0
    if cached + written > inputs:  # an instrumentor that reports them apart from input_tokens
        inputs += cached + written
    cost: float | None = 0.0
    if failed is None:
        cost = None if not known else _prices().cost(model, inputs, outputs, cached_input_tokens=cached,
                                                      cache_write_tokens=written, provider=provider)
    return accounting.CallRecord(
        kind=kind, provider=provider, model=model, input_tokens=inputs, output_tokens=outputs, latency_ms=latency_ms,
        cost=cost, error=failed, cached_input_tokens=cached, cache_write_tokens=written,
        usage_known=known or failed is not None, source="otel",
    )


def _prices() -> Any:
    from .pricing import PriceTable

    return runtime.defaults().prices or PriceTable.default()
