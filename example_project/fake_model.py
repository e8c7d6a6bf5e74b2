"""A deterministic stand-in for the chat model, served by pytest-llmeval's loopback server.

It reads the prompt the app sends: the help-center passages and the question. It answers
with the passage that shares the most content words with the question, or with the
refusal sentence the prompt asks for when no passage shares any. When the prompt asks
for at most N words it keeps the first N, as a model told to be terse drops detail.

It also plays the LLM judge (``judge:correctness``): grade 5 when the answer contains the
reference, 1 when it does not.
"""

from __future__ import annotations

import json
import re

from support_bot.retrieval import content_words

REFUSAL = "I can only help with orders, refunds, shipping, warranty and accounts."


def reply(request: dict) -> str:
    """The loopback server's answer function: ``request`` is the chat-completions body."""
    if "strict evaluator" in request["messages"][0]["content"]:
        return _grade(request["messages"][-1]["content"])
    prompt = request["messages"][-1]["content"]
    passages_part, _, question = prompt.rpartition("Question:")
    question = question.strip().splitlines()[0] if question.strip() else ""
    wanted = content_words(question)
    best, overlap = "", 0
    for passage in passages_part.split("\n"):
        shared = len(wanted & content_words(passage))
        if passage.startswith("- ") and shared > overlap:
            best, overlap = passage[2:], shared
    answer = best if overlap >= 1 else REFUSAL
    limit = re.search(r"at most (\d+) words", prompt)
    if limit and answer != REFUSAL:
        answer = " ".join(answer.split()[: int(limit.group(1))])
    return answer


def _grade(text: str) -> str:
    reference = text.split("REFERENCE:\n", 1)[1].split("\n\nANSWER:\n", 1)[0]
    answer = text.split("\n\nANSWER:\n", 1)[1]
    if reference.lower() in answer.lower():
        return json.dumps({"score": 5, "reason": "The answer states the reference."})
    return json.dumps({"score": 1, "reason": f"The answer does not say {reference!r}."})
