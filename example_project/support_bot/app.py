"""The app under evaluation, written as a real one is: the official ``openai`` SDK,
configured by the usual environment variables (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``;
the failover route to Anthropic uses the ``anthropic`` SDK and ``ANTHROPIC_*``),
the model from ``SUPPORT_BOT_MODEL`` and the prompt from the registry in prompts/
(``SUPPORT_BOT_PROMPT`` picks another prompt file, e.g. ``support_answer_concise``).

Nothing here knows about pytest-llmeval: during ``pytest --llm-eval`` the plugin counts
the SDK's calls (tokens, cost, latency) and records or replays them at the HTTP layer.
``prompt``, ``model`` and ``provider`` are keyword arguments so that variants and the
routes of llmops-config.yaml (``--llm-eval-routes``) can set them.
"""

from __future__ import annotations

import functools
import os
import threading

import openai
from pytest_llmeval.prompts import render

from .retrieval import retrieve

MODEL = os.environ.get("SUPPORT_BOT_MODEL", "gpt-4o-mini")
PROMPT = os.environ.get("SUPPORT_BOT_PROMPT", "support_answer")
SYSTEM = "You are the support assistant of an online electronics store."


_lock = threading.Lock()


@functools.cache
def _client(provider: str):
    """One SDK client per provider, created on first use (after the environment is set),
    once even when the first calls come from many threads at a time."""
    with _lock:
        if provider == "anthropic":
            import anthropic  # only the failover route needs it: its import takes a second or two

            return anthropic.Anthropic(max_retries=2, timeout=30.0)
        return openai.OpenAI(max_retries=2, timeout=30.0)


def answer(question: str, prompt: str = PROMPT, model: str = MODEL, provider: str = "openai") -> str:
    """The assistant's reply to one customer question."""
    passages = "\n".join(f"- {passage}" for passage in retrieve(question))
    user = render(prompt, passages=passages or "- (none)", question=question)
    if provider == "anthropic":
        message = _client(provider).messages.create(
            model=model, max_tokens=300, system=SYSTEM, messages=[{"role": "user", "content": user}])
        return "".join(block.text for block in message.content if block.type == "text")
    response = _client(provider).chat.completions.create(
        model=model,
        temperature=0,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
    )
    return response.choices[0].message.content or ""
