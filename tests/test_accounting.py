"""Usage accounting: call records, the per-case ledger, context propagation, suite summaries."""

from __future__ import annotations

import asyncio
import contextvars
import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy
import pytest

from pytest_llmeval.providers.accounting import (
    CallRecord,
    Ledger,
    SuiteUsage,
    call_kind,
    current_kind,
    current_ledger,
    record_call,
    summarize_suite,
    use_ledger,
)


def rec(kind="app", model="gpt-4o", tin=100, tout=50, latency=10.0, cost=0.001, **kw) -> CallRecord:
    return CallRecord(kind, "openai", model, tin, tout, latency, cost, **kw)


# --------------------------------------------------------------------------- records


def test_record_defaults_and_validation():
    r = rec()
    assert (r.cached, r.error, r.retries, r.retry_kinds, r.priced) == (False, None, 0, (), True)
    assert rec(cost=None).priced is False
    assert rec(retries=2, retry_kinds=["rate_limit", "timeout"]).retry_kinds == ("rate_limit", "timeout")
    with pytest.raises(ValueError, match="call kind"):
        rec(kind="other")
    with pytest.raises(ValueError, match="input_tokens"):
        rec(tin=-1)
    with pytest.raises(ValueError, match="output_tokens"):
        rec(tout=True)
    with pytest.raises(ValueError, match="cost"):
        rec(cost=-0.1)
    with pytest.raises(ValueError, match="latency_ms"):
        rec(latency=math.nan)
    with pytest.raises(ValueError, match="retry_kinds has 1 kind"):
        rec(retries=2, retry_kinds=("timeout",))
    with pytest.raises(ValueError, match="error"):
        rec(error="")


def test_ledger_summary_per_kind():
    ledger = Ledger()
    ledger.add(rec(tin=100, tout=50, latency=100.0, cost=0.1))
    ledger.add(rec(tin=200, tout=20, latency=300.0, cost=0.2, retries=2, retry_kinds=("rate_limit", "server_error")))
    ledger.add(rec(model="local-llama", tin=10, tout=5, latency=50.0, cost=None))
    ledger.add(rec(tin=100, tout=50, latency=0.0, cost=0.0, cached=True))
    ledger.add(rec(tin=0, tout=0, latency=900.0, cost=0.0, error="timeout", retries=1))  # kinds unknown
    ledger.add(rec(kind="judge", model="claude-sonnet-4", tin=1000, tout=10, latency=40.0, cost=0.003))
    summary = ledger.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["app"] == {
        "calls": 5, "cached_calls": 1, "usage_unknown_calls": 0, "input_tokens": 410, "output_tokens": 125,
        "cached_input_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0,
        "cost": pytest.approx(0.3), "unpriced_models": ["local-llama"], "unpriced_calls": 1, "latency_ms": 1350.0,
        "errors": {"timeout": 1}, "retries": 3, "retry_kinds": {"rate_limit": 1, "server_error": 1, "unknown": 1},
    }
    assert summary["judge"] == {
        "calls": 1, "cached_calls": 0, "usage_unknown_calls": 0, "input_tokens": 1000, "output_tokens": 10, "cost": 0.003,
        "cached_input_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0,
        "unpriced_models": [], "unpriced_calls": 0, "latency_ms": 40.0, "errors": {}, "retries": 0, "retry_kinds": {},
    }
    assert len(ledger) == 6 and len(ledger.records) == 6


def test_empty_ledger_and_judge_only():
    assert Ledger().summary() == {}
    ledger = Ledger()
    ledger.add(rec(kind="judge"))
    assert list(ledger.summary()) == ["judge"]


def test_summary_cost_does_not_depend_on_order():
    costs = [0.1, 0.2, 0.3, 1e-9, 0.7] * 20
    a, b = Ledger(), Ledger()
    for c in costs:
        a.add(rec(cost=c))
    for c in reversed(costs):
        b.add(rec(cost=c))
    assert a.summary()["app"]["cost"] == b.summary()["app"]["cost"]


def test_ledger_is_thread_safe():
    ledger = Ledger()

    def work():
        for _ in range(500):
            ledger.add(rec())

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.summary()["app"]["calls"] == 4000


# --------------------------------------------------------------------------- context


def test_record_call_without_ledger_is_a_noop():
    assert current_ledger() is None
    record_call(rec())  # nothing to record into, no error


def test_use_ledger_sets_and_resets():
    outer, inner = Ledger(), Ledger()
    with use_ledger(outer):
        record_call(rec())
        with use_ledger(inner):
            record_call(rec(kind="judge"))
            with use_ledger(None):
                record_call(rec())
        record_call(rec())
    assert current_ledger() is None
    assert [r.kind for r in outer.records] == ["app", "app"]
    assert [r.kind for r in inner.records] == ["judge"]


def test_call_kind_default_nesting_and_validation():
    assert current_kind() == "app"
    with call_kind("judge"):
        assert current_kind() == "judge"
        with call_kind("app"):
            assert current_kind() == "app"
        assert current_kind() == "judge"
    assert current_kind() == "app"
    with pytest.raises(ValueError, match="app, judge"):
        with call_kind("embedding"):
            pass


def _client_call(model: str) -> None:
    """What a client does: build the record with the current kind and record it."""
    record_call(CallRecord(current_kind(), "openai", model, 1, 1, 1.0, 0.0))


def test_ledger_reaches_asyncio_tasks():
    ledger = Ledger()

    async def app_call(i: int) -> None:
        await asyncio.sleep(0)
        _client_call(f"app-{i}")

    async def judged(i: int) -> None:
        with call_kind("judge"):  # set inside the task: does not leak to siblings or the parent
            await asyncio.sleep(0)
            _client_call(f"judge-{i}")

    async def case() -> None:
        with use_ledger(ledger):
            await asyncio.gather(*(app_call(i) for i in range(5)), *(judged(i) for i in range(3)))
            assert current_kind() == "app"

    asyncio.run(case())
    summary = ledger.summary()
    assert summary["app"]["calls"] == 5 and summary["judge"]["calls"] == 3
    assert current_ledger() is None


def test_ledger_reaches_thread_pool_with_copied_context():
    ledger = Ledger()
    with ThreadPoolExecutor(max_workers=4) as pool:
        with use_ledger(ledger), call_kind("judge"):
            futures = [pool.submit(contextvars.copy_context().run, _client_call, f"m{i}") for i in range(20)]
            for f in futures:
                f.result()
            # without a copied context a pool thread sees no ledger: the runner must copy it
            assert pool.submit(current_ledger).result() is None
    assert ledger.summary()["judge"]["calls"] == 20
    assert "app" not in ledger.summary()


def test_separate_cases_get_separate_ledgers_concurrently():
    async def case(ledger: Ledger, n: int) -> None:
        with use_ledger(ledger):
            for _ in range(n):
                await asyncio.sleep(0)
                _client_call("m")

    async def main(ledgers):
        await asyncio.gather(*(asyncio.create_task(case(ledger, i + 1)) for i, ledger in enumerate(ledgers)))

    ledgers = [Ledger() for _ in range(4)]
    asyncio.run(main(ledgers))
    assert [len(ledger) for ledger in ledgers] == [1, 2, 3, 4]


# --------------------------------------------------------------------------- suites


def _usage(*records: CallRecord) -> dict:
    ledger = Ledger()
    for r in records:
        ledger.add(r)
    return json.loads(json.dumps(ledger.summary()))  # as it arrives on a test report


def test_summarize_suite_against_hand_computed_numbers():
    usages = [
        _usage(rec(tin=100, tout=40, cost=0.010), rec(kind="judge", tin=500, tout=5, cost=0.002)),
        _usage(rec(tin=120, tout=60, cost=0.020, retries=1, retry_kinds=("rate_limit",))),
        _usage(rec(tin=0, tout=0, cost=0.0, error="timeout", retries=2, retry_kinds=("timeout", "timeout"))),
        _usage(rec(model="mystery", tin=80, tout=20, cost=None), rec(tin=80, tout=20, cost=0.0, cached=True)),
        {},
    ]
    latencies = [200.0, 400.0, 1000.0, 100.0, None]
    errors = [None, None, "timeout", None, None]
    usage = summarize_suite(usages, latencies, errors)

    per_case = [0.012, 0.020, 0.0, 0.0, 0.0]
    assert usage.cases == 5
    assert usage.cost_total == pytest.approx(0.032)
    assert usage.cost_mean == pytest.approx(0.032 / 5)
    assert usage.cost_p95 == pytest.approx(float(numpy.percentile(per_case, 95)))
    assert usage.cost_p95 == pytest.approx(0.020 - 0.2 * (0.020 - 0.012))  # linear: 95% of 4 = 3.8
    assert usage.app_cost_total == pytest.approx(0.030)
    assert usage.judge_cost_total == pytest.approx(0.002)
    assert usage.input_tokens == 100 + 500 + 120 + 80 + 80
    assert usage.output_tokens == 40 + 5 + 60 + 20 + 20
    assert usage.output_tokens_mean == pytest.approx((40 + 60 + 0 + 40 + 0) / 5)  # app only
    assert usage.latency_p50_ms == pytest.approx(300.0)  # of 100, 200, 400, 1000
    assert usage.latency_p95_ms == pytest.approx(float(numpy.percentile([100, 200, 400, 1000], 95)))
    assert usage.latency_p99_ms == pytest.approx(400 + 0.97 * 600)  # linear: 99% of 3 = 2.97
    assert (usage.calls, usage.cached_calls) == (6, 1)
    assert usage.error_rate == pytest.approx(0.2)
    assert usage.errors_by_kind == {"timeout": 1}
    assert usage.retries_by_kind == {"rate_limit": 1, "timeout": 2}
    assert usage.unpriced_models == ("mystery",)


def test_summarize_empty_suite_is_nan_and_round_trips():
    usage = summarize_suite([], [], [])
    assert usage.cases == 0 and usage.cost_total == 0.0
    assert all(math.isnan(x) for x in (usage.cost_mean, usage.cost_p95, usage.latency_p50_ms, usage.error_rate, usage.output_tokens_mean))
    data = usage.to_dict()
    assert data["cost_mean"] is None and data["latency_p99_ms"] is None
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    back = SuiteUsage.from_dict(json.loads(json.dumps(data)))
    assert back.to_dict() == data


def test_suite_usage_round_trip():
    usage = summarize_suite([_usage(rec(retries=1)), _usage(rec(model="x", cost=None))], [5.0, 7.0], ["rate_limit", None])
    data = json.loads(json.dumps(usage.to_dict(), allow_nan=False))
    assert data["retries_by_kind"] == {"unknown": 1} and data["unpriced_models"] == ["x"]
    assert data["errors_by_kind"] == {"rate_limit": 1}
    assert SuiteUsage.from_dict(data) == usage


def test_summarize_suite_requires_one_error_kind_per_case():
    with pytest.raises(ValueError, match="2 case usage"):
        summarize_suite([{}, {}], [], [None])


def _kind(calls: int, cached: int, cost: float) -> dict:
    return {"calls": calls, "cached_calls": cached, "input_tokens": 10, "output_tokens": 5, "cost": cost,
            "unpriced_models": [], "latency_ms": 1.0, "errors": {}, "retries": 0, "retry_kinds": {}}


def test_replayed_judge_calls_leave_the_app_latency_budget_judged():
    """The latency measured is the app's: a judge answer from the cache says nothing about it,
    but it does make the case's cost an understatement."""
    from pytest_llmeval.gate.budgets import judge_usage

    cases = [{"app": _kind(1, 0, 0.001), "judge": _kind(1, 1, 0.0)} for _ in range(20)]
    usage = summarize_suite(cases, [11_000.0] * 20, [None] * 20)
    assert (usage.cached_calls, usage.app_cached_calls) == (20, 0)
    verdicts = {v.name: v for v in judge_usage(usage, {"max_latency_p95_ms": 12_000, "max_cost_per_case": 0.01})}
    assert verdicts["latency_p95"].status == "pass"
    assert verdicts["cost_per_case"].status == "not judged"
    assert verdicts["cost_per_case"].message.endswith("20 of 40 calls were replayed from the cache, which costs nothing "
                                                      "and does not wait for the provider; judged on live runs")
    replayed_app = summarize_suite([{"app": _kind(1, 1, 0.0)}] * 20, [5.0] * 20, [None] * 20)
    assert judge_usage(replayed_app, {"max_latency_p95_ms": 12_000})[0].status == "not judged"
    over = summarize_suite([{"app": _kind(1, 1, 0.0)}] * 20, [13_000.0] * 20, [None] * 20)
    assert judge_usage(over, {"max_latency_p95_ms": 12_000})[0].status == "fail"  # slow even with replays: a fact
    assert SuiteUsage.from_dict(usage.to_dict()) == usage
