"""Concurrent app calls for one suite: the target runs ahead of pytest, bounded.

pytest runs items one at a time, but LLM calls dominate an eval's time, so the suite's
calls are started ahead of the items that need them: sync targets on a thread pool (one
task per case: call the app, then score), async targets as tasks on the process's one
long-lived event loop (:class:`EvalLoop`, shared by every suite of the run, so an async
client made once and shared by targets stays on one loop; tests reach it through the
``llm_eval_loop`` fixture). At most ``concurrency`` calls are in flight, and cases are submitted a
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
from .inflight import FlightLog
from .recorder import EvalRecorder

__all__ = ["EvalLoop", "SuiteRunner", "case_context", "close_eval_loop", "eval_loop"]

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


class EvalLoop:
    """One event loop per test process (per xdist worker), running in a background thread
    from the first async target until the run ends. Every suite's async target runs on it.

    ``run(coro)`` runs a coroutine on it and waits (from sync code); ``await call(coro)``
    does the same from a coroutine running on another loop (a pytest-asyncio or anyio
    test), so objects bound to this loop, such as an ``httpx.AsyncClient`` or
    ``AsyncOpenAI`` shared with the targets, are only ever used on it.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="llm-eval-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def call(self, coro: Any) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


_eval_loop: EvalLoop | None = None
_eval_loop_lock = threading.Lock()


def eval_loop() -> EvalLoop:
    """The process's :class:`EvalLoop`, started on first use."""
    global _eval_loop
    with _eval_loop_lock:
        if _eval_loop is None:
            _eval_loop = EvalLoop()
        return _eval_loop


def close_eval_loop() -> None:
    """Stop the process's loop (at the end of the run); a later run starts a new one."""
    global _eval_loop
    with _eval_loop_lock:
        loop, _eval_loop = _eval_loop, None
    if loop is not None:
        loop.close()


class SuiteRunner:
    """Runs ``target`` for ``cases`` (in item order) ahead of the items asking for them."""

    def __init__(self, target: Callable[..., Any], make_recorder: Callable[[Case], EvalRecorder],
                 concurrency: int, cases: Sequence[Case], suite_config: ProviderConfig | None = None,
                 flight: FlightLog | None = None, suite_id: str = "") -> None:
        self._target = target
        # Under xdist: calls are journalled, and cases blamed for an earlier crash of a
        # worker are not called again (culprits) or only alone (suspects); see .inflight.
        self._flight, self._suite_id = flight, suite_id
        self._culprits, self._suspects = flight.verdicts() if flight is not None else ({}, set())
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
            self._loop = eval_loop().loop
            self._semaphore = asyncio.run_coroutine_threadsafe(self._make_semaphore(concurrency), self._loop).result()

    @staticmethod
    async def _make_semaphore(concurrency: int) -> asyncio.Semaphore:
        return asyncio.Semaphore(concurrency)

    def result(self, case: Case, *, again: bool = False) -> EvalRecorder:
        """The finished recorder of ``case`` (its output scored, or its failure kept).
        ``again``: call the app anew (a rerun of the item), not the result made ahead."""
        key = _key(case)
        position = self._position.get(key)
        crash = self._culprits.get(self._flight_key(case))
        if crash is not None:  # its app call crashed a worker: never again
            recorder = self._make_recorder(case)
            recorder.crashed(crash)
            return recorder
        if self._flight_key(case) in self._suspects and key not in self._futures:
            concurrent.futures.wait(list(self._futures.values()))  # nothing else in flight: a crash names it
            self._submit(case)
            return self._futures[key].result()
        if again:
            self._futures.pop(key, None)
            self._submit(case)
        elif position is None:  # not among the cases planned ahead: run it alone
            self._submit(case)
        else:
            self._fill(position + self._window)
        return self._futures[key].result()

    def _fill(self, until: int) -> None:
        while self._next < min(until, len(self._cases)):
            case = self._cases[self._next]
            flight_key = self._flight_key(case)
            if flight_key not in self._suspects and flight_key not in self._culprits:  # suspects run alone, when asked; culprits never
                self._submit(case)
            self._next += 1

    def _submit(self, case: Case) -> None:
        key = _key(case)
        if key in self._futures:
            return
        if self._loop is None:
            self._futures[key] = self._pool.submit(contextvars.copy_context().run, self._run_sync, case)
        else:
            self._futures[key] = asyncio.run_coroutine_threadsafe(self._run_async(case), self._loop)

    def _journal(self, case: Case, event: str) -> None:
        if self._flight is not None:
            (self._flight.started if event == "start" else self._flight.ended)(self._flight_key(case))

    def _flight_key(self, case: Case) -> tuple[str, str, int]:
        """How the crash journal names a case: suite (with its variant), case id, repeat."""
        suite = self._suite_id if case.variant is None else f"{self._suite_id}@{case.variant}"
        return suite, case.id, case.repeat

    def _run_sync(self, case: Case) -> EvalRecorder:
        recorder = self._make_recorder(case)
        with case_context(recorder, self._suite_config):
            started = time.perf_counter()
            self._journal(case, "start")
            try:
                output = self._target(**case.inputs, **_variant_kwargs(recorder))
                if inspect.isawaitable(output):  # a sync callable that hands back a coroutine
                    output = asyncio.run(_await(output))
            except BaseException as exc:  # raised again in the case's item, on pytest's thread
                recorder.app_failed(exc, (time.perf_counter() - started) * 1000)
                return recorder
            finally:
                self._journal(case, "end")
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
                self._journal(case, "start")
                try:
                    output = await self._target(**case.inputs, **_variant_kwargs(recorder))
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:
                    recorder.app_failed(exc, (time.perf_counter() - started) * 1000)
                    return recorder
                finally:
                    self._journal(case, "end")
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


def _key(case: Case) -> Key:
    return case.id, case.repeat, case.variant


def _variant_kwargs(recorder: EvalRecorder) -> Mapping[str, Any]:
    """The keyword arguments the case's variant passes to the target (none without one)."""
    return recorder.variant.kwargs if recorder.variant is not None else {}


async def _await(awaitable: Any) -> Any:
    return await awaitable
