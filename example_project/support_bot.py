"""The app under evaluation: a support assistant that asks a chat model.

It talks to whatever OpenAI-compatible endpoint the run is configured for
(`llm_eval_base_url` / `LLM_EVAL_BASE_URL`, `llm_eval_model`). In this example
conftest.py points it at a loopback server, so the eval runs offline. The user turn
comes from the prompt registry (prompts/), so reports and baselines record which prompt
version produced the scores.
"""

from pytest_llmeval.prompts import render
from pytest_llmeval.providers import ChatClient

SYSTEM_PROMPT = "You are a concise support assistant. Answer in one sentence from the help center."


client = ChatClient()  # the run's provider settings (ini llm_eval_* keys, LLM_EVAL_* env)


def answer(question: str) -> str:
    # prompts/support_answer.yaml: its version is recorded with every case's scores.
    return client.complete(render("support_answer", question=question), system=SYSTEM_PROMPT, temperature=0)
