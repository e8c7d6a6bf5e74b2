"""ragas metrics as scorers: ``"ragas:<MetricName>"`` in the marker (extra ``pytest-llmeval[ragas]``).

Any single-turn ragas metric class is a scorer by its class name: ``ragas:RougeScore``,
``ragas:BleuScore``, ``ragas:Faithfulness``, ``ragas:ContextRecall``, ... The modern
``ragas.metrics.collections`` classes are used; a name found only among the legacy
``ragas.metrics`` classes (``AspectCritic``, ``NonLLMContextRecall``, ...) is scored
through ``SingleTurnSample`` and ``single_turn_ascore``. The marker's options go to the
metric's constructor: ``("ragas:RougeScore", {"rouge_type": "rouge1"})``.

The case maps to ragas' fields: ``user_input`` is ``inputs["question"]`` or the first
string input, ``response`` the app's output, ``reference`` the row's ``expected``,
``retrieved_contexts`` its ``context`` (a string becomes a one-item list). Any other
field a metric asks for (``reference_contexts``, ``rubrics``, ...) is read from the
row's ``metadata`` under the same name. A missing field is a ScorerError naming it.

LLM metrics get the plugin's judge model (ini ``llm_eval_judge_*`` / env
``LLM_EVAL_JUDGE_*``, falling back to the app's provider settings): ragas' prompts go
through our own client, so they are cached, retried and counted as judge spend, and
the answer (JSON asked for by ragas' prompt) is validated against ragas' pydantic
output model. Metrics that need an embeddings model are refused with a ScorerError.

ragas is imported only when such a scorer is resolved, with ``RAGAS_DO_NOT_TRACK=true``
set first unless the user chose otherwise. A ragas result is a float in [0, 1]; NaN, a
value out of range or an exception is a ScorerError carrying ragas' text.
"""

from __future__ import annotations

import asyncio
import difflib
import enum
import inspect
import json
import math
import os
import re
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ScorerError
from ..models import Case
from .base import Score, Scorer

__all__ = ["PREFIX", "make_scorer", "metric_names"]

PREFIX = "ragas:"
INSTALL_HINT = "pip install 'pytest-llmeval[ragas]'"

#: ragas field -> where it comes from in a case (for error messages).
SOURCES = {
    "user_input": "inputs['question'] or another string input",
    "response": "the app's output",
    "reference": "the row's 'expected' field",
    "retrieved_contexts": "the row's 'context' field",
}
# Constructor parameters that are not options: components we supply, and catch-alls.
_NOT_OPTIONS = {"self", "llm", "embeddings", "name", "kwargs", "base_kwargs", "allowed_values", "callbacks", "run_config"}
_RAW_LIMIT = 500

_lock = threading.Lock()
_scorers: dict[str, Scorer] = {}
_clients: dict[Any, Any] = {}
_catalogue: dict[str, _Metric] | None = None
_llm_class: type | None = None


@dataclass(frozen=True)
class _Metric:
    name: str
    cls: type
    legacy: bool  # ragas.metrics (SingleTurnSample) rather than ragas.metrics.collections
    needs_llm: bool
    needs_embeddings: bool
    options: tuple[str, ...]  # constructor parameters a marker may set


# -- importing ragas ----------------------------------------------------------------------


def _import_ragas(name: str) -> None:
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # ragas sends analytics unless told not to
    try:
        import ragas  # noqa: F401
        import ragas.metrics.collections  # noqa: F401
    except ImportError as exc:
        raise ScorerError(f"scorer {name!r} needs ragas, which is not installed or does not import "
                          f"({type(exc).__name__}: {exc}); {INSTALL_HINT}") from None
    except Exception as exc:  # a broken ragas install raises all sorts at import time
        raise ScorerError(f"scorer {name!r}: importing ragas failed ({type(exc).__name__}: {exc}); "
                          f"reinstall with {INSTALL_HINT}") from None


def _catalogue_of_metrics() -> dict[str, _Metric]:
    """Every single-turn ragas metric class by name: collections first, then legacy-only ones."""
    global _catalogue
    if _catalogue is not None:
        return _catalogue
    import ragas.metrics as legacy
    import ragas.metrics.collections as collections
    from ragas.metrics.base import MetricWithEmbeddings, MetricWithLLM, SingleTurnMetric
    from ragas.metrics.collections.base import BaseMetric

    found: dict[str, _Metric] = {}
    for name in collections.__all__:
        cls = getattr(collections, name, None)
        if not (inspect.isclass(cls) and issubclass(cls, BaseMetric)) or cls is BaseMetric:
            continue
        params = inspect.signature(cls.__init__).parameters
        found[name] = _Metric(name, cls, False, "llm" in params, "embeddings" in params, _options_of(params))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ragas.metrics.<Name> is deprecated in favour of collections
        for name in getattr(legacy, "_DEPRECATED_METRICS", {}):
            cls = getattr(legacy, name, None)
            if name in found or not (inspect.isclass(cls) and issubclass(cls, SingleTurnMetric)):
                continue
            params = inspect.signature(cls).parameters
            found[name] = _Metric(name, cls, True, issubclass(cls, MetricWithLLM), issubclass(cls, MetricWithEmbeddings),
                                  _options_of(params))
    _catalogue = found
    return found


def _options_of(params: Mapping[str, inspect.Parameter]) -> tuple[str, ...]:
    return tuple(p for p, spec in params.items()
                 if p not in _NOT_OPTIONS and not p.startswith("_")
                 and spec.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL))


def metric_names() -> list[str]:
    """The names ``ragas:<name>`` accepts (imports ragas)."""
    _import_ragas("ragas:")
    return sorted(_catalogue_of_metrics())


# -- the scorer ---------------------------------------------------------------------------


def make_scorer(name: str) -> Scorer:
    """The scorer for ``ragas:<MetricName>`` (ScorerError if ragas is missing or the name unknown)."""
    with _lock:
        known = _scorers.get(name)
    if known is not None:
        return known
    if not name.startswith(PREFIX):
        raise ScorerError(f"{name!r} is not a ragas scorer name; use 'ragas:<MetricName>'")
    _import_ragas(name)
    # The judge client (and httpx) too, here at collection on the main thread, as the judge:*
    # scorers do: imported first from a scorer thread, a half-initialised httpx would sit in
    # sys.modules while the app's threads run.
    from ..providers import client  # noqa: F401
    metric_name = name[len(PREFIX):]
    with _lock:
        catalogue = _catalogue_of_metrics()
    metric = catalogue.get(metric_name)
    if metric is None:
        lowered = {n.lower(): n for n in catalogue}
        close = [lowered[metric_name.lower()]] if metric_name.lower() in lowered else []
        close += [c for c in difflib.get_close_matches(metric_name, list(catalogue), n=3, cutoff=0.6) if c not in close]
        hint = f"; did you mean {', '.join(repr(PREFIX + c) for c in close)}?" if close else ""
        raise ScorerError(f"unknown ragas metric {metric_name!r} in scorer {name!r}{hint} "
                          f"Known ragas metrics: {', '.join(sorted(catalogue))}")
    if metric.needs_embeddings:
        raise ScorerError(f"scorer {name!r}: the ragas metric needs an embeddings model, which pytest-llmeval "
                          "does not give to ragas (only a judge LLM); see docs/scorers.md, section ragas")
    scorer = Scorer(name, _scorer_fn(name, metric), binary=False)
    with _lock:
        return _scorers.setdefault(name, scorer)


def _scorer_fn(scorer_name: str, metric: _Metric) -> Any:
    async def ragas_scorer(output: Any, case: Case, **options: Any) -> Score:
        return await _score(scorer_name, metric, output, case, options)

    def prepare_options(**options: Any) -> dict[str, Any]:
        unknown = sorted(set(options) - set(metric.options))
        if unknown:
            known = ", ".join(metric.options) or "none"
            raise ScorerError(f"scorer {scorer_name!r}: unknown options {unknown}; the ragas metric takes: {known}")
        options = {key: _coerce(scorer_name, metric, key, value) for key, value in options.items()}
        try:  # build it once now, so a bad value fails at collection, not in every case
            _build(metric, options, _judge_llm() if metric.needs_llm else None)
        except Exception as exc:
            raise ScorerError(f"scorer {scorer_name!r}: ragas' {metric.name}({_show(options)}) failed: "
                              f"{type(exc).__name__}: {exc}") from None
        return options

    ragas_scorer.__name__ = f"ragas_{metric.name}"
    ragas_scorer.__doc__ = f"ragas metric {metric.name} ({'LLM judge' if metric.needs_llm else 'no LLM'})."
    ragas_scorer.prepare_options = prepare_options  # type: ignore[attr-defined]
    return ragas_scorer


def _coerce(scorer_name: str, metric: _Metric, key: str, value: Any) -> Any:
    """A string given for an enum parameter (``distance_measure="jaro_winkler"``) becomes the enum."""
    init = metric.cls if metric.legacy else metric.cls.__init__
    parameter = inspect.signature(init).parameters.get(key)
    default = parameter.default if parameter is not None else None
    if isinstance(default, enum.Enum) and isinstance(value, str):
        enum_type = type(default)
        for member in enum_type:
            if value in (member.name, member.value) or value.lower() == member.name.lower():
                return member
        raise ScorerError(f"scorer {scorer_name!r}: option {key}={value!r} is not one of {[m.value for m in enum_type]}")
    return value


def _show(options: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in options.items())


def _build(metric: _Metric, options: Mapping[str, Any], llm: Any) -> Any:
    kwargs = dict(options)
    init = metric.cls if metric.legacy else metric.cls.__init__
    name = inspect.signature(init).parameters.get("name")
    if name is not None and name.default is inspect.Parameter.empty:  # AspectCritic & co. must be named
        kwargs["name"] = re.sub(r"(?<!^)(?=[A-Z])", "_", metric.name).lower()
    if metric.needs_llm:
        kwargs["llm"] = llm
    if metric.legacy:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return metric.cls(**kwargs)
    return metric.cls(**kwargs)


async def _score(scorer_name: str, metric: _Metric, output: Any, case: Case, options: Mapping[str, Any]) -> Score:
    instance = _build(metric, options, _judge_llm() if metric.needs_llm else None)
    if metric.legacy:
        from ragas import SingleTurnSample
        from ragas.metrics.base import MetricType

        fields = instance.get_required_columns(with_optional=True).get(MetricType.SINGLE_TURN.name, set())
        required = instance.required_columns.get(MetricType.SINGLE_TURN.name, set())
    else:
        params = list(inspect.signature(instance.ascore).parameters.values())
        fields = {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        required = {p.name for p in params if p.name in fields and p.default is inspect.Parameter.empty}
    values = {}
    for field_name in sorted(fields):
        value = _field(field_name, output, case)
        if value is None or value == "" or value == []:
            if field_name in required:
                where = SOURCES.get(field_name, f"the row's metadata[{field_name!r}]")
                raise ScorerError(f"scorer {scorer_name!r} needs {field_name} ({where}); case {case.id!r} has none")
            continue
        values[field_name] = value
    try:
        if metric.legacy:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                sample = SingleTurnSample(**values)
                result: Any = await instance.single_turn_ascore(sample)
        else:
            result = await instance.ascore(**values)
    except ScorerError as exc:  # from the judge LLM below, through ragas
        raise ScorerError(f"scorer {scorer_name!r}: {exc}") from None
    except Exception as exc:
        raise ScorerError(f"scorer {scorer_name!r}: ragas raised {type(exc).__name__}: {exc}") from exc
    reason = getattr(result, "reason", None)
    value = getattr(result, "value", result)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScorerError(f"scorer {scorer_name!r}: ragas returned {value!r}, not a number")
    value = float(value)
    if math.isnan(value):
        raise ScorerError(f"scorer {scorer_name!r}: ragas returned NaN for case {case.id!r} (ragas could not score it, "
                          f"e.g. the judge found no statements in the output){f': {reason}' if reason else ''}")
    if not 0.0 <= value <= 1.0:
        raise ScorerError(f"scorer {scorer_name!r}: ragas returned {value!r}, outside [0, 1]")
    return Score(value, str(reason) if reason else None)


def _field(name: str, output: Any, case: Case) -> Any:
    """The value of ragas field ``name`` for this case, or None."""
    if name == "user_input":
        inputs = case.inputs
        if isinstance(inputs.get("question"), str):
            return inputs["question"]
        return next((value for value in inputs.values() if isinstance(value, str)), None)
    if name == "response":
        return _text(output)
    if name == "reference":
        return _text(case.expected)
    if name == "retrieved_contexts":
        context = case.context
        if context is None:
            return None
        items = [context] if isinstance(context, str) else list(context) if isinstance(context, (list, tuple)) else [context]
        return [item if isinstance(item, str) else _text(item) for item in items]
    return case.metadata.get(name)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


# -- the judge LLM given to ragas --------------------------------------------------------


def _judge_client() -> Any:
    """One shared client per judge config (thread-safe), like the judge:* scorers'."""
    from ..providers import runtime
    from ..providers.client import ChatClient

    defaults = runtime.defaults()
    config = defaults.judge or defaults.config
    with _lock:
        client = _clients.get(config)
        if client is None:
            client = _clients[config] = ChatClient(config)
        return client


def _extract_json(text: str) -> Any:
    """The first JSON object (or array) in a model's answer; ValueError if there is none."""
    cleaned = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[{\[]", cleaned):
        try:
            data, _ = decoder.raw_decode(cleaned, match.start())
        except json.JSONDecodeError:
            continue
        return data
    raise ValueError("no JSON in the judge's answer")


def _judge_llm_class() -> type:
    global _llm_class
    if _llm_class is not None:
        return _llm_class
    from ragas.llms.base import InstructorBaseRagasLLM

    class JudgeLLM(InstructorBaseRagasLLM):
        """ragas' structured-output LLM interface over the plugin's judge client."""

        is_async = True  # ragas' prompts then call agenerate

        def _ask(self, prompt: str, response_model: Any) -> Any:
            from ..providers import accounting

            client = _judge_client()
            if not client.config.model:
                raise ScorerError("ragas' LLM metrics use the judge model, and none is set: set ini llm_eval_judge_model "
                                  "(env LLM_EVAL_JUDGE_MODEL) or llm_eval_model")
            params: dict[str, Any] = {"temperature": 0.0}
            if client.config.provider == "openai":
                params["response_format"] = {"type": "json_object"}
            with accounting.call_kind("judge"):
                text = client.chat([{"role": "user", "content": prompt}], **params).text
            try:
                return response_model.model_validate(_extract_json(text))
            except Exception as exc:
                raw = text if len(text) <= _RAW_LIMIT else text[:_RAW_LIMIT] + "..."
                raise ScorerError(f"the judge's answer is not the JSON ragas asked for ({response_model.__name__}): "
                                  f"{type(exc).__name__}: {exc}; raw answer: {raw!r}") from None

        def generate(self, prompt: str, response_model: Any) -> Any:
            return self._ask(prompt, response_model)

        async def agenerate(self, prompt: str, response_model: Any) -> Any:
            # The sync client in a thread (the context, so the case's ledger, goes along):
            # one shared connection pool whatever event loop the scorer runs in.
            return await asyncio.to_thread(self._ask, prompt, response_model)

    _llm_class = JudgeLLM
    return JudgeLLM


def _judge_llm() -> Any:
    """The LLM given to ragas; it finds the judge config when called, so it can be built at collection."""
    return _judge_llm_class()()
