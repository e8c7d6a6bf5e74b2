"""Concurrent app calls for one suite: the target runs ahead of pytest, bounded.

pytest runs items one at a time, but LLM calls dominate an eval's time, so the suite's
calls are started ahead of the items that need them: sync targets on a thread pool (one
task per case: call the app, then score), async targets as tasks on one background
event loop. At most ``concurrency`` calls are in flight, and cases are submitted a
window ahead of the item being run, so N cases at latency L take about N*L/C instead of
N*L without queueing the whole suite at once. Each item waits only for its own case.

Every call runs with its case's usage ledger, repeat index and prompt record in context
variables, so clients and the prompt registry attribute their work to the right case.
No pytest here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
import time
from contextlib import ExitStack
from typing import Any, Callable, Mapping, Sequence

from ..models import Case
from ..prompts import recording_prompts
from ..providers import accounting, runtime
from ..providers.config import ProviderConfig
from .recorder import EvalRecorder

__all__ = ["SuiteRunner", "case_context"]

Key = tuple[str, int, "str | None"]


def _is_async(target: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(getattr(target, "__call__", None))


def case_context(recorder: EvalRecorder, suite_config: ProviderConfig | None) -> ExitStack:
    """What calls made for this case must see: its ledger, repeat, prompt record, the
    suite's provider settings and its variant's (used by the runner and by the test body alike)."""
    stack = ExitStack()
    stack.enter_context(runtime.use_suite_config(suite_config))
    if recorder.variant is not None:
        stack.enter_context(runtime.use_variant(recorder.variant.cache_key, recorder.variant.provider))
    stack.enter_context(accounting.use_ledger(recorder.ledger))
    stack.enter_context(runtime.use_repeat(recorder.case.repeat))
    stack.enter_context(recording_prompts(recorder.prompts))
    return stack


class SuiteRunner:
    """Runs ``target`` for ``cases`` (in item order) ahead of the items asking for them."""

    def __init__(self, target: Callable[..., Any], make_recorder: Callable[[Case], EvalRecorder],
                 concurrency: int, cases: Sequence[Case], suite_config: ProviderConfig | None = None) -> None:
        self._target = target
        self._suite_config = suite_config
        self._make_recorder = make_recorder
        self._cases = list(cases)
        self._position = {_key(case): i for i, case in enumerate(self._cases)}
        self._window = max(4 * concurrency, 32)
        self._next = 0  # cases[:_next] are submitted
        self._futures: dict[Key, concurrent.futures.Future[EvalRecorder]] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="llm-eval")
        self._loop: asyncio.AbstractEventLoop | None = None
        if _is_async(target):
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="llm-eval-loop", daemon=True)
            self._thread.start()
            self._semaphore = asyncio.run_coroutine_threadsafe(self._make_semaphore(concurrency), self._loop).result()

    @staticmethod
    async def _make_semaphore(concurrency: int) -> asyncio.Semaphore:
        return asyncio.Semaphore(concurrency)

    def result(self, case: Case) -> EvalRecorder:
        """The finished recorder of ``case`` (its output scored, or its failure kept)."""
        key = _key(case)
        position = self._position.get(key)
        if position is None:  # not among the cases planned ahead: run it alone
            self._submit(case)
        else:
            self._fill(position + self._window)
        return self._futures[key].result()

    def _fill(self, until: int) -> None:
        while self._next < min(until, len(self._cases)):
            self._submit(self._cases[self._next])
            self._next += 1

    def _submit(self, case: Case) -> None:
        key = _key(case)
        if key in self._futures:
            return
        if self._loop is None:
            self._futures[key] = self._pool.submit(contextvars.copy_context().run, self._run_sync, case)
        else:
            self._futures[key] = asyncio.run_coroutine_threadsafe(self._run_async(case), self._loop)

    def _run_sync(self, case: Case) -> EvalRecorder:
        recorder = self._make_recorder(case)
        with case_context(recorder, self._suite_config):
            started = time.perf_counter()
            try:
                output = self._target(**case.inputs, **_variant_kwargs(recorder))
                if inspect.isawaitable(output):  # a sync callable that hands back a coroutine
                    output = asyncio.run(_await(output))
            except BaseException as exc:  # raised again in the case's item, on pytest's thread
                recorder.app_failed(exc, (time.perf_counter() - started) * 1000)
                return recorder
            recorder.latency_ms = (time.perf_counter() - started) * 1000
            if not recorder.check_replay(recorder.latency_ms):
                recorder.score_quietly(output)
        return recorder

    async def _run_async(self, case: Case) -> EvalRecorder:
        recorder = self._make_recorder(case)
        loop = asyncio.get_running_loop()
        with case_context(recorder, self._suite_config):
            async with self._semaphore:
                started = time.perf_counter()
                try:
                    output = await self._target(**case.inputs, **_variant_kwargs(recorder))
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:
                    recorder.app_failed(exc, (time.perf_counter() - started) * 1000)
                    return recorder
                recorder.latency_ms = (time.perf_counter() - started) * 1000
            if recorder.check_replay(recorder.latency_ms):
                return recorder
            # Scorers may block (a judge's HTTP call): score on the pool, not on the loop.
            context = contextvars.copy_context()
            await loop.run_in_executor(self._pool, context.run, recorder.score_quietly, output)
        return recorder

    def close(self) -> None:
        """Cancel calls not yet started and stop (calls in flight finish on their own)."""
        for future in self._futures.values():
            future.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)


def _key(case: Case) -> Key:
    return case.id, case.repeat, case.variant


def _variant_kwargs(recorder: EvalRecorder) -> Mapping[str, Any]:
    """The keyword arguments the case's variant passes to the target (none without one)."""
    return recorder.variant.kwargs if recorder.variant is not None else {}


async def _await(awaitable: Any) -> Any:
    return await awaitable
