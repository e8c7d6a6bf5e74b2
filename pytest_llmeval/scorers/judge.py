"""LLM-judge scorers: ``judge:correctness``, ``judge:faithfulness``, ``judge:relevance``.

A judge model (ini ``llm_eval_judge_*``, falling back to the app's provider settings)
grades the output against a rubric and answers in JSON: ``{"score": 1-5, "reason":
"..."}``; the score maps to [0, 1] as (score - 1) / 4. Calls go through our client, so
they are cached, retried and counted as *judge* spend on the case's ledger, never as
app spend. An answer that cannot be parsed is asked for again once (the case is then
flagged for human review, reason ``judge_retry``); a second one is a scorer error
carrying the raw text, not a zero. ``samples=k`` grades k times and averages (judge noise), keeping the case as
the cluster; ``rubric=`` replaces the rubric for a suite; ``model=`` the judge model.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from ..errors import ScorerError
from ..models import Case
from .base import Score, Scorer

__all__ = ["BUILTIN_SCORERS", "RUBRICS", "parse_judgment"]

RUBRICS = {
    "correctness": (
        "Grade whether the ANSWER is factually correct and complete with respect to the REFERENCE answer. "
        "5: says everything the reference says, nothing contradicts it. 3: partly correct or incomplete. "
        "1: wrong, contradicts the reference, or does not answer."
    ),
    "faithfulness": (
        "Grade whether every claim in the ANSWER is supported by the CONTEXT. "
        "5: every claim is supported. 3: some claims are unsupported. 1: mostly unsupported or contradicts the context."
    ),
    "relevance": (
        "Grade whether the ANSWER addresses the QUESTION directly and helpfully. "
        "5: fully on point. 3: partly relevant or padded. 1: off-topic or evasive."
    ),
}
_NEEDS = {"correctness": "expected", "faithfulness": "context", "relevance": "question"}
_INSTRUCTIONS = (
    "You are a strict evaluator of an AI assistant's answer.\n{rubric}\n"
    'Reply with only a JSON object: {{"score": <integer 1-5>, "reason": "<one short sentence>"}}.'
)
_RAW_LIMIT = 500
PARSE_RETRIES = 1  # an unparsable judgment is asked again once; the case is then flagged for review
_clients: dict[Any, Any] = {}
_clients_lock = threading.Lock()


def _client(model: str | None) -> Any:
    """One shared judge client per judge config and model (thread-safe)."""
    from ..providers import runtime
    from ..providers.client import ChatClient

    defaults = runtime.defaults()
    config = defaults.judge or defaults.config
    key = (config, model)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = ChatClient(config, **({"model": model} if model else {}))
        return client


def parse_judgment(text: str) -> tuple[float, str]:
    """(score in [0, 1], reason) from a judge's answer; ValueError if there is none."""
    cleaned = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", cleaned)):
        try:
            data, _ = decoder.raw_decode(cleaned, start)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "score" in data:
            break
    else:
        raise ValueError("no JSON object with a 'score' in the judge's answer")
    score = data["score"]
    if isinstance(score, str):
        score = score.strip()
        score = float(score) if re.fullmatch(r"\d+(\.\d+)?", score) else score
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 1 <= score <= 5:
        raise ValueError(f"score {data['score']!r} is not a number from 1 to 5")
    reason = data.get("reason", "")
    return (float(score) - 1.0) / 4.0, str(reason)


def _question(case: Case) -> str | None:
    inputs = case.inputs
    for key in ("question", "query", "input", "prompt"):
        if isinstance(inputs.get(key), str):
            return inputs[key]
    return None


def _judge(kind: str, output: Any, case: Case, rubric: str | None, samples: int, model: str | None) -> Score:
    from ..providers import accounting
    from ..providers.redaction import redact

    needed = _NEEDS[kind]
    question = _question(case)
    if needed == "expected" and case.expected is None or needed == "context" and not case.context or needed == "question" and question is None:
        where = "an inputs key question/query/input/prompt" if needed == "question" else f"the row's {needed!r} field"
        raise ScorerError(f"scorer 'judge:{kind}' needs {where}; case {case.id!r} has none")
    parts = [f"QUESTION:\n{question if question is not None else json.dumps(dict(case.inputs), ensure_ascii=False)}"]
    if kind == "correctness":
        parts.append(f"REFERENCE:\n{case.expected}")
    if kind == "faithfulness":
        context = case.context if isinstance(case.context, str) else "\n---\n".join(case.context)
        parts.append(f"CONTEXT:\n{context}")
    parts.append(f"ANSWER:\n{output}")
    messages = [
        {"role": "system", "content": _INSTRUCTIONS.format(rubric=rubric or RUBRICS[kind])},
        {"role": "user", "content": "\n\n".join(parts)},
    ]
    client = _client(model)
    params: dict[str, Any] = {"temperature": 0.0 if samples == 1 else 0.7}
    if client.config.provider == "openai":
        params["response_format"] = {"type": "json_object"}
    values, reasons, retried = [], [], []
    with accounting.call_kind("judge"):
        for sample in range(samples):
            for attempt in range(1 + PARSE_RETRIES):
                extra = {**({"judge_sample": sample} if samples > 1 else {}), **({"parse_retry": attempt} if attempt else {})}
                text = client.chat(messages, cache_key_extra=extra or None, **params).text
                try:
                    value, reason = parse_judgment(text)
                    break
                except ValueError as exc:
                    raw = text if len(text) <= _RAW_LIMIT else text[:_RAW_LIMIT] + "..."
                    if attempt == PARSE_RETRIES:
                        # A judge may echo what it was sent, headers and keys included: quote it redacted.
                        raise ScorerError(redact(f"scorer 'judge:{kind}': unparsable judgment ({exc}); raw answer: {raw!r}")) from None
                    retried.append(raw)
            values.append(value)
            reasons.append(redact(reason))
    reason = reasons[0] if samples == 1 else f"mean of {samples} gradings {[round(v, 2) for v in values]}: {reasons[0]}"
    review = f"judge_retry: judge:{kind} answered unparsably {len(retried)} time(s) before a grade (first: {retried[0]!r})" if retried else None
    return Score(sum(values) / len(values), reason, review)


def _prepare(rubric: str | None = None, samples: int = 1, model: str | None = None) -> dict[str, Any]:
    # Import the judge's client (and httpx) now, at collection on the main thread: imported
    # first from a scorer thread, a half-initialised httpx sits in sys.modules while the
    # app's threads run, and SDKs that read sys.modules["httpx"] (openai 3) fail on it.
    from ..providers import client  # noqa: F401
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ScorerError(f"judge option samples must be a positive integer, got {samples!r}")
    if rubric is not None and not isinstance(rubric, str):
        raise ScorerError("judge option rubric must be a string")
    return {"rubric": rubric, "samples": samples, "model": model}


def _make(kind: str) -> Any:
    def judge(output: Any, case: Case, *, rubric: str | None = None, samples: int = 1, model: str | None = None) -> Score:
        return _judge(kind, output, case, rubric, samples, model)

    judge.__name__ = f"judge_{kind}"
    judge.__doc__ = f"LLM judge of {kind}: {RUBRICS[kind]}"
    judge.prepare_options = _prepare  # type: ignore[attr-defined]
    return judge


BUILTIN_SCORERS = tuple(Scorer(f"judge:{kind}", _make(kind)) for kind in RUBRICS)
