#!/usr/bin/env python
"""Concurrency of a suite's app calls: N cases at latency L with C in flight.

The acceptance target of the suite runner: a suite of N cases whose app calls take L
each runs in about the physical limit N*L/C, not N*L:

    wall <= 1.3 * N*L/C + the plugin's own per-case overhead (measured: replay wall)

A throwaway project in a temp dir holds a JSONL dataset of N cases and two test modules,
one with a sync target (one module-level ``ChatClient``) and one with an async target
(one module-level ``AsyncChatClient``), both pointed by the ``BENCH_BASE_URL`` env var at
ONE :class:`~pytest_llmeval.testing.LoopbackLLMServer` running in this process with
latency L, whose answer echoes the question so the ``contains`` scorer finds ``expected``:

    @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
    def test_eval(llm_case, llm_eval): pass

Runs, each ``python -m pytest -q -p no:cacheprovider --llm-eval`` in a subprocess, the
server's counters reset before each:

    sync cold      --llm-eval-concurrency C                        (no cache)
    sync record    --llm-eval-concurrency C --llm-eval-cache readwrite, fresh cache dir
    sync replay    the same again: must make 0 HTTP requests (else exit status 1)
    async cold / record / replay   the same with the async target
    sequential     --llm-eval-concurrency 1, sync (once; --skip-sequential skips it: N*L)

The concurrent runs are repeated ``--rounds`` times (default 3) and the run of median
wall time is reported, with the fastest wall beside it: the numbers are noisy on a busy
machine. At the end it prints the connections the server accepted per request (the client pools
must reuse connections: goal <= C + 5% in all), and the record/live (goal <= 1.15) and
async/sync (goal <= 1.1) wall ratios of the cold runs, all from one invocation.
For each run: wall time, wall / (N*L/C), CPU of the pytest process and of this
process (the server), the server's request count and max in flight, and four phases
from a timing conftest: start-up (to ``pytest_configure``), collect (to the first item),
items (first to last case item: where the calls run) and tail (the gate, the summary,
interpreter exit). The replay wall / N is the plugin's own per-case cost estimate (start-up,
collection and the gate included, so an upper bound).

Usage: python benchmarks/concurrency.py [--cases N] [--latency-ms L] [--concurrency C]
           [--rounds R] [--skip-sequential] [--skip-async] [--profile] [--keep]
           [--isolate] [--hide-sniffio] [--switch-interval S]

``--profile`` runs each cold and each record run once more under cProfile, every thread profiled on
its own CPU clock (pytest's thread, the runner's pool threads, the event loop), and prints
the top functions. ``--hide-sniffio`` makes httpcore's ``import sniffio`` fail as it does
where sniffio is not installed (anyio >= 4.12 no longer depends on it): httpcore 1.0.x
then retries the failed import in every async lock, event and semaphore set-up.
``--isolate`` disables every other auto-loaded pytest plugin of this interpreter (a
plugin such as langsmith's imports seconds of modules in every run). ``--switch-interval`` sets ``sys.setswitchinterval`` in the pytest process (GIL hand-off).

Standard library only (plus pytest and the plugin, installed in this interpreter).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_llmeval.testing import LoopbackLLMServer

TOLERANCE = 1.3
MODEL = "gpt-4o-mini"
COMMON_ARGS = ["-q", "-p", "no:cacheprovider", "--llm-eval"]

TEST_SYNC = '''\
import os

import pytest

from pytest_llmeval.providers import ChatClient

CLIENT = ChatClient(base_url=os.environ["BENCH_BASE_URL"], model="{model}", api_key_env="BENCH_NO_KEY")


def app(question):
    return CLIENT.complete(question)


@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
def test_eval(llm_case, llm_eval):
    pass
'''

TEST_ASYNC = '''\
import os

import pytest

from pytest_llmeval.providers import AsyncChatClient

CLIENT = AsyncChatClient(base_url=os.environ["BENCH_BASE_URL"], model="{model}", api_key_env="BENCH_NO_KEY")


async def app(question):
    return await CLIENT.complete(question)


@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
def test_eval(llm_case, llm_eval):
    pass
'''

# Timing log of the phases of a run (wall clock, so the parent can place process start-up).
CONFTEST = '''\
import json, os, sys, time

_T = {}
if os.environ.get("BENCH_SWITCH_INTERVAL"):
    sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))


def pytest_configure(config):
    _T["configure"] = time.time()


def pytest_collection_finish(session):
    _T["collected"] = time.time()


def pytest_runtest_logstart(nodeid, location):
    _T.setdefault("first_item", time.time())


def pytest_runtest_logfinish(nodeid, location):
    if "llm_eval_gate" not in nodeid:
        _T["last_item"] = time.time()


def pytest_sessionfinish(session):
    _T["sessionfinish"] = time.time()


def pytest_terminal_summary(terminalreporter):
    _T["summary"] = time.time()


def pytest_unconfigure(config):
    _T["unconfigure"] = time.time()
    path = os.environ.get("BENCH_PHASES")
    if path:
        with open(path, "w") as fh:
            json.dump(_T, fh)
'''

# --hide-sniffio: httpcore's `import sniffio` fails as if sniffio were not installed (anyio
# >= 4.12 no longer pulls it in), after the same sys.path scan a real miss pays. httpcore
# 1.0.x imports it in every async lock/event/semaphore set-up, and Python does not cache
# failed imports. Other importers (e.g. plugins that need sniffio) still get it.
HIDE_SNIFFIO = '''\
import sys


class _HideSniffio:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "sniffio":
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__") != "httpcore._synchronization":
            frame = frame.f_back
        if frame is None:
            return None
        # What a real miss costs: every other finder searched for a name that is nowhere.
        for finder in sys.meta_path:
            if finder is not _HideSniffio and hasattr(finder, "find_spec"):
                finder.find_spec("sniffio_absent_probe", path)
        raise ModuleNotFoundError(f"No module named {name!r} (hidden by the benchmark)", name=name)


sys.meta_path.insert(0, _HideSniffio)
'''

# Runs pytest with every thread under cProfile, timing CPU per thread (threading.setprofile
# starts a profiler in each new thread; their stats are merged at exit).
PROFILE_RUNNER = '''\
import cProfile, pstats, sys, threading, time
import pytest

profiles = []
def _start(*_):
    profiler = cProfile.Profile(time.thread_time)
    profiles.append(profiler)
    sys.setprofile(None)
    profiler.enable()
threading.setprofile(lambda *a: _start())
main = cProfile.Profile(time.thread_time)
profiles.append(main)
main.enable()
try:
    code = pytest.main(sys.argv[2:])
finally:
    for p in profiles:
        p.disable()
    stats = None
    for p in profiles:
        try:
            stats = pstats.Stats(p) if stats is None else (stats.add(p) or stats)
        except TypeError:  # a profiler that never ran
            pass
    stats.dump_stats(sys.argv[1])
sys.exit(int(code))
'''


@dataclass
class Run:
    name: str
    wall: float
    cpu: float  # the pytest process (user + system)
    server_cpu: float  # this process: the loopback server's threads
    requests: int
    max_in_flight: int
    connections: int  # TCP connections the server accepted
    phases: dict[str, float]  # start-up, collection, items, tail (seconds)


PHASES = ("start-up", "collect", "items", "tail")


def make_project(root: Path, cases: int) -> None:
    root.mkdir(parents=True)
    # An ini file of its own: rootdir and config are this folder, never a pyproject.toml above.
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    with open(root / "data.jsonl", "w", encoding="utf-8") as fh:
        for i in range(1, cases + 1):
            fh.write(json.dumps({"id": f"c{i:05d}", "inputs": {"question": f"what is item {i}?"},
                                 "expected": f"item {i}?"}) + "\n")
    (root / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (root / "test_sync.py").write_text(TEST_SYNC.format(model=MODEL), encoding="utf-8")
    (root / "test_async.py").write_text(TEST_ASYNC.format(model=MODEL), encoding="utf-8")


def echo(request: dict) -> str:
    """The answer: the last user message, echoed (so ``contains`` finds ``expected``)."""
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user":
            return f"You asked: {message.get('content')}"
    return "nothing asked"


def child_env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")
           and not k.startswith("LLM_EVAL_")}
    env["BENCH_BASE_URL"] = base_url
    return env


def run_pytest(name: str, args: list[str], cwd: Path, server: LoopbackLLMServer, cases: int,
               prefix: list[str] | None = None, env: dict[str, str] | None = None) -> Run:
    """Run pytest in a subprocess; check that every case (and the one gate) passed."""
    server.reset()
    phases_file = cwd / ".phases.json"
    phases_file.unlink(missing_ok=True)
    before, before_self = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    started = time.time()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *(prefix or ["-m", "pytest"]), *COMMON_ARGS, *args], cwd=cwd,
                          env={**child_env(server.base_url), "BENCH_PHASES": str(phases_file), **(env or {})},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - start
    ended = time.time()
    after, after_self = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    match = re.search(r"(\d+) passed", tail)
    passed = int(match.group(1)) if match else 0
    if proc.returncode != 0 or passed != cases + 1 or "failed" in tail or "error" in tail:
        sys.exit(f"{name}: pytest {' '.join(args)} exited {proc.returncode}, expected {cases + 1} passed "
                 f"({cases} cases + 1 gate):\n{proc.stdout[-3000:]}")
    t = json.loads(phases_file.read_text(encoding="utf-8"))
    phases = {"start-up": t["configure"] - started, "collect": t["first_item"] - t["configure"],
              "items": t["last_item"] - t["first_item"], "tail": ended - t["last_item"]}
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    server_cpu = (after_self.ru_utime - before_self.ru_utime) + (after_self.ru_stime - before_self.ru_stime)
    return Run(name, wall, cpu, server_cpu, server.requests, server.max_in_flight, server.connections, phases)


def code_version() -> str:
    """Which plugin code ran: git commit (+dirty) of its checkout and versions of the HTTP stack."""
    import pytest_llmeval

    root = Path(pytest_llmeval.__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip() or "no git"
    except (OSError, subprocess.SubprocessError):
        rev = "no git"
    versions = []
    for dist in ("httpx", "httpcore", "anyio", "sniffio"):
        try:
            versions.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            versions.append(f"{dist} absent")
    return f"pytest-llmeval {rev}; " + ", ".join(versions)


def median_run(runs: list[Run]) -> Run:
    """The run of median wall time (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r.wall)[(len(runs) - 1) // 2]


def ratio_text(of_medians: float, tops: list[Run], bottoms: list[Run], goal: float) -> str:
    """A wall ratio's two estimates and verdict: the ratio of the median walls, and the median
    (and range) of the per-round ratios (the i-th top run over the i-th bottom run)."""
    paired = sorted(top.wall / bottom.wall for top, bottom in zip(tops, bottoms))
    middle = statistics.median(paired)
    verdict = "met" if of_medians <= goal and middle <= goal else "MISSED"
    rounds = f"; per round: median {middle:.2f}, {paired[0]:.2f} to {paired[-1]:.2f}" if len(paired) > 1 else ""
    return f"{of_medians:.2f}{rounds} ({verdict})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="dataset rows (default 1000)")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="server latency per answer (default 100)")
    parser.add_argument("--concurrency", type=int, default=32, help="--llm-eval-concurrency (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the concurrent runs; the median is reported (default 3)")
    parser.add_argument("--skip-sequential", action="store_true", help="skip the --llm-eval-concurrency 1 reference (takes N*L)")
    parser.add_argument("--skip-async", action="store_true", help="skip the async-target runs")
    parser.add_argument("--isolate", action="store_true", help="disable the other auto-loaded pytest plugins of this interpreter (-p no:NAME each)")
    parser.add_argument("--hide-sniffio", action="store_true", help="run pytest as if sniffio were not installed (see HIDE_SNIFFIO)")
    parser.add_argument("--switch-interval", type=float, help="diagnostic: sys.setswitchinterval(S) in the pytest process (default 0.005)")
    parser.add_argument("--profile", action="store_true", help="profile one more cold and record run per target kind (all threads) and print the top functions")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project and print its path")
    opts = parser.parse_args()
    if opts.cases < 1 or opts.latency_ms < 0 or opts.concurrency < 1 or opts.rounds < 1:
        parser.error("--cases, --concurrency and --rounds must be >= 1, --latency-ms >= 0")

    n, latency, c = opts.cases, opts.latency_ms / 1000.0, opts.concurrency
    limit = n * latency / c
    tmp = Path(tempfile.mkdtemp(prefix="llmeval-concurrency-"))
    project = tmp / "project"
    make_project(project, n)
    extra_env = {"BENCH_SWITCH_INTERVAL": str(opts.switch_interval)} if opts.switch_interval else {}
    foreign = sorted({(ep.name, ep.dist.name if ep.dist else "?") for ep in md.entry_points(group="pytest11")
                      if ep.value.partition(".")[0] != "pytest_llmeval"})
    if opts.isolate:
        for name, _ in foreign:
            COMMON_ARGS.extend(["-p", f"no:{name}"])
    if opts.hide_sniffio:
        (tmp / "hide").mkdir()
        (tmp / "hide" / "sitecustomize.py").write_text(HIDE_SNIFFIO, encoding="utf-8")
        extra_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp / "hide"), os.environ.get("PYTHONPATH")]))
        # A plugin that imports sniffio itself would put it in sys.modules for httpcore too.
        for ep in md.entry_points(group="pytest11"):
            if ep.value.partition(".")[0] in ("langsmith",):
                COMMON_ARGS.extend(["-p", f"no:{ep.name}"])
                print(f"--hide-sniffio: disabling the pytest plugin {ep.name} ({ep.value}), which imports sniffio")
    conc = ["--llm-eval-concurrency", str(c)]
    by_name: dict[str, list[Run]] = {}
    failures: list[str] = []
    try:
        with LoopbackLLMServer(echo, latency=latency, model=MODEL) as server:
            print(f"N={n} cases, L={opts.latency_ms:g} ms, C={c}, {os.cpu_count()} CPU(s), load average "
                  f"{os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}, server {server.base_url}")
            print(code_version() + (" (hidden from pytest: --hide-sniffio)" if opts.hide_sniffio else ""))
            print("other pytest plugins: " + (", ".join(f"{name} ({dist})" for name, dist in foreign) or "none")
                  + (" -- disabled (--isolate)" if opts.isolate else " -- loaded in every run"))
            print(f"physical limit N*L/C = {limit:.2f} s", flush=True)

            def timed(name: str, args: list[str], **kw: object) -> Run:
                run = run_pytest(name, args, project, server, n, env=extra_env, **kw)  # type: ignore[arg-type]
                by_name.setdefault(name, []).append(run)
                print(f"  {name:<14} wall {run.wall:6.2f} s  pytest CPU {run.cpu:5.2f} s  requests {run.requests:5d}"
                      f"  max in flight {run.max_in_flight:3d}  connections {run.connections:4d}", flush=True)
                if "replay" in name and run.requests:
                    failures.append(f"{name} made {run.requests} HTTP request(s), expected 0")
                return run

            variants = [("sync", "test_sync.py")] + ([] if opts.skip_async else [("async", "test_async.py")])
            for _ in range(opts.rounds):
                for kind, module in variants:
                    timed(f"{kind} cold", [*conc, module])
                    cache = ["--llm-eval-cache", "readwrite", "-o", f"llm_eval_cache_dir=cache-{kind}"]
                    shutil.rmtree(project / f"cache-{kind}", ignore_errors=True)
                    timed(f"{kind} record", [*conc, *cache, module])
                    timed(f"{kind} replay", [*conc, *cache, module])
            if not opts.skip_sequential:
                timed("sequential", ["--llm-eval-concurrency", "1", "test_sync.py"])
            if opts.profile:
                (tmp / "profile_runner.py").write_text(PROFILE_RUNNER, encoding="utf-8")
                for kind, module in variants:
                    runner = [str(tmp / "profile_runner.py")]
                    timed(f"{kind} cold prof", [*conc, module], prefix=[*runner, str(tmp / f"{kind}-cold.prof")])
                    cache = ["--llm-eval-cache", "readwrite", "-o", f"llm_eval_cache_dir=cache-{kind}-prof"]
                    shutil.rmtree(project / f"cache-{kind}-prof", ignore_errors=True)
                    timed(f"{kind} record prof", [*conc, *cache, module], prefix=[*runner, str(tmp / f"{kind}-record.prof")])

        runs = {name: median_run(rs) for name, rs in by_name.items()}
        print(f"\nmedian of {opts.rounds} round(s) (sequential and profiled: 1 run); phases: start-up (to pytest_configure), "
              "collect (to the first item), items (first to last case), tail (gate, summary, exit)")
        head = f"{'run':<14} {'wall s':>7} {'min s':>6} {'wall/limit':>10} {'pytest CPU s':>12} {'server CPU s':>12} {'requests':>8} {'in flight':>9}"
        print(head + "".join(f" {p + ' s':>10}" for p in PHASES))
        for name, run in runs.items():
            best = min(r.wall for r in by_name[name])
            print(f"{name:<14} {run.wall:7.2f} {best:6.2f} {run.wall / limit if limit else float('nan'):10.2f} {run.cpu:12.2f} "
                  f"{run.server_cpu:12.2f} {run.requests:8d} {run.max_in_flight:9d}" + "".join(f" {run.phases[p]:10.2f}" for p in PHASES))
        print()
        replay = runs["sync replay"]
        overhead = replay.wall
        print(f"plugin overhead estimate: replay wall / N = {overhead / n * 1000:.2f} ms per case "
              f"({overhead:.2f} s, start-up {replay.phases['start-up']:.2f} s and collection {replay.phases['collect']:.2f} s included;"
              f" items phase alone {replay.phases['items'] / n * 1000:.2f} ms per case)")
        budget = TOLERANCE * limit + overhead
        print(f"acceptance target: wall <= {TOLERANCE} x N*L/C + replay wall = {TOLERANCE} x {limit:.2f} + {overhead:.2f} = {budget:.2f} s")
        for kind, _ in variants:
            cold = runs[f"{kind} cold"]
            verdict = "met" if cold.wall <= budget else "MISSED"
            print(f"  {kind} cold: {cold.wall:.2f} s -> {verdict}; its items phase {cold.phases['items']:.2f} s = "
                  f"{cold.phases['items'] / limit:.2f} x N*L/C (replay's {runs[f'{kind} replay'].phases['items']:.2f} s)")
        if "sequential" in runs:
            seq = runs["sequential"]
            print(f"  sequential: {seq.wall:.2f} s (N*L = {n * latency:.2f} s); speed-up " +
                  ", ".join(f"{kind} {seq.wall / runs[f'{kind} cold'].wall:.1f}x" for kind, _ in variants))
        if opts.profile:
            import pstats

            for kind, _ in variants:
                for run_kind in ("cold", "record"):
                    print(f"\ncProfile of the {kind} {run_kind} run, all threads, CPU time per thread, by internal time:")
                    pstats.Stats(str(tmp / f"{kind}-{run_kind}.prof")).sort_stats("tottime").print_stats(25)
        print("\ngoals (one run): connections <= C + 5%, record/live <= 1.15, async/sync <= 1.1; a ratio is met when"
              " both its estimates are: the ratio of the median walls, and the median of the rounds' own ratios (runs"
              " of one round are seconds apart, so a drift of the machine cancels out of them)")
        for kind, _ in variants:
            cold, record = runs[f"{kind} cold"], runs[f"{kind} record"]
            per_request = cold.connections / cold.requests if cold.requests else float("nan")
            print(f"  {kind}: connections opened {cold.connections} for {cold.requests} requests = {per_request:.3f} per request"
                  f" ({'met' if cold.connections <= c * 1.05 else 'MISSED'}: C = {c});"
                  f" record/live wall {ratio_text(record.wall / cold.wall, by_name[f'{kind} record'], by_name[f'{kind} cold'], 1.15)}")
        if "async cold" in runs:
            ratio = runs["async cold"].wall / runs["sync cold"].wall
            print(f"  async/sync wall {ratio_text(ratio, by_name['async cold'], by_name['sync cold'], 1.1)}")
        for failure in failures:
            print(f"FAIL: {failure}")
        return 1 if failures else 0
    finally:
        if opts.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
