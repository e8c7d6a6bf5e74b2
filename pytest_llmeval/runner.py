"""Concurrent app calls for one suite: the target runs for every case at once, bounded.

pytest runs items one at a time, but LLM calls dominate an eval's time, so the suite's
calls are started together in a background event loop: async targets as tasks on that
loop, sync targets on a thread pool, at most ``concurrency`` at a time. Each item then
waits only for its own case, and N cases at latency L take about N*L/C instead of N*L.

Every call runs with its case's usage ledger and repeat index in context variables, so
the clients record tokens, cost and cache keys against the right case. No pytest here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
import time
from typing import Any, Callable, Sequence

from .models import Case
from .prompts import recording_prompts
from .providers import accounting, runtime
from .recorder import EvalRecorder

__all__ = ["SuiteRunner"]


def _is_async(target: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(getattr(target, "__call__", None))


class SuiteRunner:
    """Runs ``target`` for cases in the background; :meth:`result` waits for one case."""

    def __init__(self, target: Callable[..., Any], make_recorder: Callable[[Case], EvalRecorder], concurrency: int) -> None:
        self._target = target
        self._make_recorder = make_recorder
        self._concurrency = concurrency
        self._is_async = _is_async(target)
        self._futures: dict[tuple[str, int], concurrent.futures.Future[EvalRecorder]] = {}
        self._loop = asyncio.new_event_loop()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="llm-eval")
        self._thread = threading.Thread(target=self._loop.run_forever, name="llm-eval-runner", daemon=True)
        self._thread.start()
        self._semaphore = asyncio.run_coroutine_threadsafe(self._make_semaphore(), self._loop).result()

    async def _make_semaphore(self) -> asyncio.Semaphore:
        return asyncio.Semaphore(self._concurrency)

    def submit(self, cases: Sequence[Case]) -> None:
        """Start the calls for ``cases`` (in order; already submitted ones are skipped)."""
        for case in cases:
            key = (case.id, case.repeat)
            if key not in self._futures:
                self._futures[key] = asyncio.run_coroutine_threadsafe(self._run(case), self._loop)

    def result(self, case: Case) -> EvalRecorder:
        """The finished recorder of ``case`` (its output scored, or its failure kept)."""
        self.submit([case])
        return self._futures[(case.id, case.repeat)].result()

    async def _run(self, case: Case) -> EvalRecorder:
        recorder = self._make_recorder(case)
        with accounting.use_ledger(recorder.ledger), runtime.use_repeat(case.repeat), recording_prompts(recorder.prompts):
            async with self._semaphore:
                started = time.perf_counter()
                try:
                    if self._is_async:
                        output = await self._target(**case.inputs)
                    else:
                        output = await self._in_thread(self._call_sync, case)
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:  # the app's failure is raised in the case's item, on pytest's thread
                    recorder.app_failed(exc, (time.perf_counter() - started) * 1000)
                    return recorder
                recorder.latency_ms = (time.perf_counter() - started) * 1000
            await self._in_thread(recorder.score_quietly, output)
        return recorder

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        context = contextvars.copy_context()
        return await self._loop.run_in_executor(self._pool, context.run, fn, *args)

    def _call_sync(self, case: Case) -> Any:
        output = self._target(**case.inputs)
        if inspect.isawaitable(output):  # a sync callable that hands back a coroutine
            output = asyncio.run_coroutine_threadsafe(_await(output), self._loop).result()
        return output

    def close(self) -> None:
        """Cancel calls not yet started and stop the loop (calls in flight finish alone)."""
        for future in self._futures.values():
            future.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


async def _await(awaitable: Any) -> Any:
    return await awaitable
