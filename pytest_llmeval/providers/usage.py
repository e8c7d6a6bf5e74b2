"""Token usage read from provider responses: the one parser every client and the capture use.

This module owns

* :class:`Usage` -- the tokens of one answer, normalised across APIs;
* :func:`api_of` -- which API a request path calls (``chat``, ``responses``,
  ``embeddings``, ``messages``), or None for any other path;
* :func:`usage_from_json` and :func:`usage_from_sse` -- the usage, model and answer text of a
  JSON body or of a server-sent-events stream.

Normalisation (so one price formula fits every API):

* ``input_tokens`` is *every* input token: OpenAI ``prompt_tokens`` / ``input_tokens``
  (which already include cached ones), Anthropic ``input_tokens`` +
  ``cache_creation_input_tokens`` + ``cache_read_input_tokens`` (which Anthropic reports
  apart);
* ``cached_input_tokens`` are cache reads (OpenAI ``prompt_tokens_details.cached_tokens`` /
  ``input_tokens_details.cached_tokens``, Anthropic ``cache_read_input_tokens``);
  ``cache_write_tokens`` are Anthropic ``cache_creation_input_tokens``;
* ``output_tokens`` include ``reasoning_tokens`` (OpenAI ``completion_tokens_details`` /
  ``output_tokens_details``), which are also kept apart.

A response without a usage object gives ``None``: usage *unknown*, never 0 tokens.
Standard library only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["APIS", "Usage", "api_of", "text_from_json", "usage_from_json", "usage_from_sse"]

APIS = ("chat", "responses", "embeddings", "messages")
_PATHS = re.compile(r"/(chat/completions|responses|embeddings|messages)$")
_API_OF_PATH = {"chat/completions": "chat", "responses": "responses", "embeddings": "embeddings", "messages": "messages"}


@dataclass(frozen=True)
class Usage:
    """Tokens of one answer (see the module docstring for what each count includes)."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens billed at the plain input rate."""
        return max(0, self.input_tokens - self.cached_input_tokens - self.cache_write_tokens)


def api_of(path: str) -> str | None:
    """``"chat"``, ``"responses"``, ``"embeddings"`` or ``"messages"`` for a request path
    ending in that endpoint (any prefix: ``/v1``, Azure deployments, a proxy); else None."""
    match = _PATHS.search(path.rstrip("/"))
    return _API_OF_PATH[match.group(1)] if match else None


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        return 0
    return int(value)


def _usage_of(api: str, usage: Any) -> Usage | None:
    if not isinstance(usage, Mapping):
        return None
    if api == "messages":
        write = _count(usage.get("cache_creation_input_tokens"))
        read = _count(usage.get("cache_read_input_tokens"))
        return Usage(_count(usage.get("input_tokens")) + write + read, _count(usage.get("output_tokens")), read, write)
    if api == "responses":
        inputs, outputs = usage.get("input_tokens"), usage.get("output_tokens")
        cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
        reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
    else:  # chat completions and embeddings
        inputs, outputs = usage.get("prompt_tokens"), usage.get("completion_tokens")
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if inputs is None and outputs is None:
        return None
    return Usage(_count(inputs), _count(outputs), _count(cached), 0, _count(reasoning))


def usage_from_json(api: str, data: Any) -> tuple[Usage | None, str | None]:
    """(usage or None when the body has none, the model the body names or None)."""
    if not isinstance(data, Mapping):
        return None, None
    model = data.get("model")
    return _usage_of(api, data.get("usage")), model if isinstance(model, str) and model else None


def text_from_json(api: str, data: Mapping[str, Any]) -> str | None:
    """The answer text of a JSON body, or None when it carries none (embeddings, refusals)."""
    if api == "messages":
        parts = [p.get("text", "") for p in data.get("content") or () if isinstance(p, Mapping) and p.get("type") == "text"]
        return "".join(parts) if parts else None
    if api == "responses":
        texts = [c.get("text", "") for item in data.get("output") or () if isinstance(item, Mapping)
                 for c in item.get("content") or () if isinstance(c, Mapping) and c.get("type") == "output_text"]
        return "".join(texts) if texts else None
    if api == "chat":
        choices = data.get("choices") or ()
        message = choices[0].get("message") if choices and isinstance(choices[0], Mapping) else None
        content = message.get("content") if isinstance(message, Mapping) else None
        return content if isinstance(content, str) else None
    return None


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """``(event name or None, parsed data)`` of each event of an SSE body; ``[DONE]`` and
    data that is not JSON are skipped."""
    events: list[tuple[str | None, Any]] = []
    for block in re.split(r"\r?\n\r?\n", text):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        payload = "\n".join(data)
        if not payload or payload.strip() == "[DONE]":
            continue
        try:
            events.append((name, json.loads(payload)))
        except ValueError:
            continue
    return events


def usage_from_sse(api: str, text: str) -> tuple[Usage | None, str | None, str]:
    """(usage or None, model or None, answer text) of a streamed answer.

    Chat completions: the last chunk carrying ``usage`` (sent with
    ``stream_options={"include_usage": true}``; without it usage is unknown). Responses:
    the ``response.completed`` event's ``response.usage``. Messages: ``message_start``'s
    ``message.usage`` with the last ``message_delta``'s cumulative ``usage`` over it.
    """
    usage: Usage | None = None
    model: str | None = None
    parts: list[str] = []
    anthropic: dict[str, Any] = {}
    for name, data in sse_events(text):
        if not isinstance(data, Mapping):
            continue
        kind = data.get("type", name)
        if api == "messages":
            if kind == "message_start" and isinstance(data.get("message"), Mapping):
                model = data["message"].get("model") or model
                anthropic.update(data["message"].get("usage") or {})
            elif kind == "message_delta" and isinstance(data.get("usage"), Mapping):
                anthropic.update({k: v for k, v in data["usage"].items() if v is not None})
            elif kind == "content_block_delta" and isinstance(data.get("delta"), Mapping):
                parts.append(str(data["delta"].get("text", "")))
        elif api == "responses":
            if kind == "response.output_text.delta":
                parts.append(str(data.get("delta", "")))
            elif kind == "response.completed" and isinstance(data.get("response"), Mapping):
                usage = _usage_of(api, data["response"].get("usage"))
                model = data["response"].get("model") or model
        else:
            model = data.get("model") or model
            for choice in data.get("choices") or ():
                delta = choice.get("delta") if isinstance(choice, Mapping) else None
                if isinstance(delta, Mapping) and isinstance(delta.get("content"), str):
                    parts.append(delta["content"])
            if data.get("usage") is not None:
                usage = _usage_of(api, data["usage"])
    if api == "messages" and anthropic:
        usage = _usage_of(api, anthropic)
    return usage, model if isinstance(model, str) else None, "".join(parts)
