"""An async client made once at module level and shared by async targets of several
suites and by pytest-asyncio tests: async targets run on one long-lived loop per test
process (``llm_eval_loop``), and tests use the shared client through it."""

from __future__ import annotations

import pytest

from pytest_llmeval.testing import LoopbackLLMServer

PROJECT = """
import os

import httpx
import pytest

client = httpx.AsyncClient(base_url=os.environ["LOOPBACK_URL"])  # shared, bound to the loop of its first request


async def ask(question):
    response = await client.post("/chat/completions", json={{"model": "m", "messages": [{{"role": "user", "content": question}}]}})
    response.raise_for_status()
    return response.json()["choices"][0]["message"]["content"]


@pytest.mark.llm_eval(dataset="data.jsonl", target=ask, scorers=["contains"], thresholds={{"contains": 1.0}})
def test_first_suite(llm_case, llm_eval):
    pass


@pytest.mark.llm_eval(dataset="data.jsonl", target=ask, scorers=["contains"], thresholds={{"contains": 1.0}})
def test_second_suite(llm_case, llm_eval):
    pass


{marker}
async def test_the_shared_client_in_an_async_test(llm_eval_loop):
    assert await llm_eval_loop.call(ask("q1")) == "yes"
"""


@pytest.mark.parametrize("xdist", [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")])
@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_a_shared_async_client_works_across_suites_and_asyncio_tests(pytester, write_jsonl, monkeypatch, mode, xdist):
    with LoopbackLLMServer(default_answer="yes") as server:
        monkeypatch.setenv("LOOPBACK_URL", server.base_url)
        write_jsonl("data.jsonl", [{"id": f"q{n}", "inputs": {"question": f"q{n}"}, "expected": "yes"} for n in range(8)])
        pytester.makepyfile(test_eval=PROJECT.format(marker="@pytest.mark.asyncio" if mode == "strict" else ""))
        result = pytester.runpytest("--llm-eval", "-p", "asyncio", f"--asyncio-mode={mode}", *xdist)
        assert result.ret == 0, result.stdout.str()
        result.assert_outcomes(passed=8 + 8 + 2 + 1)  # two suites, their gates, the async test
        assert server.requests == 17
