"""Runs the example offline by default.

The committed recording in .llm-eval/cache replays every model call (ini
``llm_eval_cache = "strict"`` in pyproject.toml: a call that was not recorded fails its
case, it never goes out). When calls do go out (``--llm-eval-cache=off`` or
``readwrite`` to re-record), a loopback server started here plays the model: the app's
answers come from fake_model.reply, and so do the LLM judge's grades.

To run against a real endpoint instead, set ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``
yourself (and ``ANTHROPIC_API_KEY`` for the failover route) and pass ``--llm-eval-cache=off`` (or ``readwrite`` to record a new baseline's
answers): then no loopback server starts.
"""

import os

import pytest

_server = None


@pytest.hookimpl(tryfirst=True)  # before the plugin reads LLM_EVAL_BASE_URL for the judge
def pytest_configure(config):
    global _server
    if os.environ.get("OPENAI_BASE_URL") or hasattr(config, "workerinput"):
        return  # a real endpoint was given, or an xdist worker inherits the controller's environment
    from fake_model import reply
    from pytest_llmeval.testing import LoopbackLLMServer

    _server = LoopbackLLMServer(reply, latency=0.02).start()
    os.environ["OPENAI_BASE_URL"] = _server.base_url  # the app's openai SDK client
    os.environ["ANTHROPIC_BASE_URL"] = _server.url  # the anthropic SDK (the failover route)
    os.environ["LLM_EVAL_BASE_URL"] = _server.base_url  # the plugin's clients: the LLM judge
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):  # the SDKs refuse to start without one
        os.environ[key] = os.environ.get(key) or "sk-loopback-not-a-secret"


def pytest_terminal_summary(terminalreporter):
    if _server is not None:
        terminalreporter.write_line(f"loopback model: {_server.requests} request(s)")


def pytest_unconfigure(config):
    global _server
    if _server is not None:
        _server.stop()
        _server = None
        for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "LLM_EVAL_BASE_URL"):
            os.environ.pop(name, None)
