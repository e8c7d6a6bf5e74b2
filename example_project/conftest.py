"""Runs the example offline: a loopback server plays the model provider.

In a real project you would point `llm_eval_base_url` (or LLM_EVAL_BASE_URL) at your
provider and keep the API key in the environment variable named by `llm_eval_api_key_env`.
"""

import os

import pytest

from fake_model import reply

_server = None


@pytest.hookimpl(tryfirst=True)  # before the plugin reads LLM_EVAL_BASE_URL
def pytest_configure(config):
    global _server
    if os.environ.get("LLM_EVAL_BASE_URL") or hasattr(config, "workerinput"):
        return  # a real endpoint was given, or an xdist worker inherits the controller's
    from pytest_llmeval.testing import LoopbackLLMServer

    _server = LoopbackLLMServer(reply, latency=0.05).start()
    os.environ["LLM_EVAL_BASE_URL"] = _server.base_url


def pytest_unconfigure(config):
    if _server is not None:
        _server.stop()
        os.environ.pop("LLM_EVAL_BASE_URL", None)
