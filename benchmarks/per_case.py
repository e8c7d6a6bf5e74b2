#!/usr/bin/env python
"""Per-case overhead of pytest-llmeval against hand-written parametrization.

The same JSONL dataset (``--rows`` rows, default 10,000) is run two ways, in
subprocesses with this interpreter, with the same command line apart from the file:

    E  @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["exact_match"])
       def test_eval(llm_case, llm_eval): pass
    P  @pytest.mark.parametrize("row", ROWS, ids=...)   # ROWS read with json at import
       def test_plain(row): exact-match comparison of app(**row["inputs"]) in the body

    python -m pytest -q --llm-eval -p no:cacheprovider test_eval.py | test_plain.py

``app`` is a trivial synchronous function (it returns its input, which every row also
expects), so what is timed is the machinery around a case, not a model. The variants
are interleaved (E P, P E, ...) over ``--rounds`` rounds; the script prints median wall
and CPU time, microseconds per case and the ratio E/P (target <= 1.3; the headline is
the median of the per-round ratios, the ratio of the medians is printed next to it).

Every eval run has a fixed cost a plain run does not have (the plugin's session modules,
the gate). The same variants on a 1-row copy of the project (``--fixed-rounds`` rounds)
measure that fixed cost, and one ``-X importtime`` run splits its imports into
scipy+numpy, httpx and yaml (when imported at all) and the plugin's own modules. The
marginal cost per case is then ``(wall(N rows) - wall(1 row)) / (N - 1)``.

``--with-baseline`` first blesses a baseline (``--llm-eval-update``), so the timed eval
runs also load it, pair the cases and run the regression test, as in CI.
``--body-variant`` adds B: the same marker without ``target=``, the body calls the app
and ``llm_eval.score``; B against E isolates the concurrent target runner.

The tail: a separate phase runs E and P on a ``--tail-rows`` project (default 1,000
rows; E against a baseline blessed first, so its gate pairs the cases and runs the
regression test as in CI) with a probe plugin (``-p _tail_probe``) that notes the wall
clock when the last test item finishes. The tail is the time from then until the process
has exited (gate, summary, reports, interpreter shutdown). Target: E's tail at most P's
+ 0.3 s.

Runs get a bytecode cache under the temporary folder (PYTHONPYCACHEPREFIX), as users
have compiled files, without writing into the repository. See docs/benchmarks.md.

Usage:  python benchmarks/per_case.py [--rows N] [--rounds R] [--fixed-rounds F]
                                      [--tail-rows N] [--tail-rounds R]
                                      [--with-baseline] [--body-variant] [--keep]

Standard library only (plus pytest and the plugin, installed in this interpreter).
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

from _importtime import outermost_nodes, parse_importtime  # benchmarks/ is on sys.path as the script's folder

TARGET_RATIO = 1.3
TARGET_TAIL_S = 0.3  # E's tail may exceed P's by this much
HEAVY = {"scipy+numpy": ("scipy", "numpy"), "httpx": ("httpx", "httpcore"), "yaml": ("yaml",)}
COMMON_ARGS = ["-q", "--llm-eval", "-p", "no:cacheprovider"]

TEST_EVAL = '''\
import pytest


def app(q):
    return q


@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["exact_match"])
def test_eval(llm_case, llm_eval):
    pass
'''

TEST_BODY = '''\
import pytest


def app(q):
    return q


@pytest.mark.llm_eval(dataset="data.jsonl", scorers=["exact_match"])
def test_body(llm_case, llm_eval):
    llm_eval.score(app(**llm_case.inputs))
'''

TEST_PLAIN = '''\
import json
from pathlib import Path

import pytest

ROWS = [json.loads(line) for line in (Path(__file__).parent / "data.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def app(q):
    return q


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_plain(row):
    output = app(**row["inputs"])
    assert str(output).strip() == str(row["expected"]).strip()
'''


TAIL_PROBE = '''\
"""Loaded with -p _tail_probe: the wall clock when the last test item finished."""
import os
import time

_last = [0.0]


def pytest_runtest_logfinish(nodeid, location):
    _last[0] = time.time()


def pytest_unconfigure(config):
    with open(os.environ["TAIL_PROBE_OUT"], "w", encoding="utf-8") as fh:
        fh.write(repr(_last[0]))
'''


# -- the throwaway projects --------------------------------------------------------------


def make_project(root: Path, rows: int) -> None:
    root.mkdir()
    # An ini file of its own: rootdir and config are this folder, never a pyproject.toml above.
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    with open(root / "data.jsonl", "w", encoding="utf-8") as fh:
        for i in range(1, rows + 1):
            question = f"what is item {i} of the catalogue?"
            fh.write(json.dumps({"id": f"c{i:05d}", "inputs": {"q": question}, "expected": question}) + "\n")
    (root / "test_eval.py").write_text(TEST_EVAL, encoding="utf-8")
    (root / "test_plain.py").write_text(TEST_PLAIN, encoding="utf-8")
    (root / "test_body.py").write_text(TEST_BODY, encoding="utf-8")


def clean_env(pycache: Path) -> dict[str, str]:
    """The caller's environment without pytest settings that would change what is measured.

    Bytecode is cached (as on a user's machine, even where PYTHONDONTWRITEBYTECODE is set),
    but under ``pycache`` (PYTHONPYCACHEPREFIX): nothing is written into the repository."""
    drop = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


# -- running and timing ------------------------------------------------------------------


def tail_once(args: list[str], cwd: Path, env: dict[str, str], expect_passed: int, probe_dir: Path) -> float:
    """One run with the tail probe: seconds from the last item's end to the process's exit."""
    out = probe_dir / "last-item.txt"
    out.unlink(missing_ok=True)
    env = {**env, "TAIL_PROBE_OUT": str(out),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(probe_dir), env.get("PYTHONPATH")]))}
    run_once([*args, "-p", "_tail_probe"], cwd, env, expect_passed)
    exited = time.time()
    return exited - float(out.read_text(encoding="utf-8"))


def run_once(args: list[str], cwd: Path, env: dict[str, str], expect_passed: int) -> tuple[float, float]:
    """Run ``python -m pytest *args``; check the outcome; return (wall s, child CPU s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not re.fullmatch(rf"=* ?{expect_passed} passed(, \d+ warnings?)? in [\d.]+s.*", tail):
        sys.exit(f"pytest {' '.join(args)} (in {cwd}) exited {proc.returncode}, expected {expect_passed} passed:\n{proc.stdout[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def interleaved(variants: dict[str, tuple[list[str], int]], cwd: Path, env: dict[str, str], rounds: int) -> tuple[dict, dict]:
    names = list(variants)
    walls: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:  # E P, P E, ...: no fixed position
            wall, cpu = run_once(variants[name][0], cwd, env, variants[name][1])
            walls[name].append(wall)
            cpus[name].append(cpu)
    return walls, cpus


def import_split_ms(args: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Cumulative import ms per heavy package, and of pytest_llmeval's own modules (without
    the heavy packages they pulled in), in one ``-X importtime`` run."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "pytest", *args], cwd=cwd, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    roots = parse_importtime(proc.stderr)
    split = {group: sum(outermost(roots, packages)) / 1000.0 for group, packages in HEAVY.items()}
    every_heavy = tuple(p for packages in HEAVY.values() for p in packages)
    split["pytest_llmeval"] = sum(own - sum(outermost(children, every_heavy))
                                  for _, own, children in outermost_nodes(roots, ("pytest_llmeval",))) / 1000.0
    return split


def outermost(nodes: list, packages: tuple[str, ...]) -> list[int]:
    return [cumulative for _, cumulative, _ in outermost_nodes(nodes, packages)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="dataset rows (default 10000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the N-row runs (default 3)")
    parser.add_argument("--fixed-rounds", type=int, default=5, help="interleaved rounds of the 1-row runs (default 5; 0 skips them)")
    parser.add_argument("--tail-rows", type=int, default=1000, help="rows of the tail measurement (default 1000; 0 skips it)")
    parser.add_argument("--tail-rounds", type=int, default=5, help="interleaved rounds of the tail measurement (default 5)")
    parser.add_argument("--with-baseline", action="store_true", help="bless a baseline first, so eval runs also compare against it")
    parser.add_argument("--body-variant", action="store_true",
                        help="also time B: the same marker without target=, the body calls app and llm_eval.score "
                             "(isolates the concurrent target runner; adds about 50%% to the run time)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects and print their path")
    opts = parser.parse_args()
    if opts.rows < 2 or opts.rounds < 1 or opts.fixed_rounds < 0 or opts.tail_rows < 0 or opts.tail_rounds < 1:
        parser.error("--rows must be >= 2, --rounds >= 1, --fixed-rounds >= 0, --tail-rows >= 0, --tail-rounds >= 1")

    n = opts.rows
    tmp = Path(tempfile.mkdtemp(prefix="llmeval-per-case-"))
    try:
        big, one, tail, probe_dir = tmp / "rows", tmp / "one-row", tmp / "tail", tmp / "probe"
        make_project(big, n)
        make_project(one, 1)
        probe_dir.mkdir()
        (probe_dir / "_tail_probe.py").write_text(TAIL_PROBE, encoding="utf-8")
        env = clean_env(tmp / "pycache")
        files = {"E": "test_eval.py", "P": "test_plain.py", "B": "test_body.py"}
        names = ["E", "P", "B"] if opts.body_variant else ["E", "P"]

        def variants(rows: int) -> dict[str, tuple[list[str], int]]:
            # An eval run reports one more passed test: the gate of its one metric.
            return {name: ([*COMMON_ARGS, files[name]], rows + (name != "P")) for name in names}

        print(f"pytest-llmeval per-case benchmark: {n} rows; python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)")
        print(f"E = python -m pytest {' '.join(COMMON_ARGS)} test_eval.py   (llm_eval marker, target=app, exact_match)")
        print(f"P = python -m pytest {' '.join(COMMON_ARGS)} test_plain.py  (pytest.mark.parametrize over the same rows)")
        if opts.body_variant:
            print(f"B = python -m pytest {' '.join(COMMON_ARGS)} test_body.py   (llm_eval marker, no target: body scores app's output)")
        if opts.with_baseline:
            for project, rows in ((big, n), (one, 1)):
                for name in (name for name in names if name != "P"):  # the eval variants
                    run_once(["-q", "--llm-eval-update", "-p", "no:cacheprovider", files[name]], project, env, rows + 1)
            print("eval runs compare against a baseline blessed from the same rows (--with-baseline)")
        else:
            print("no baseline: eval runs report means and CIs only (pass --with-baseline for the CI path)")

        interleaved(variants(1), one, env, 1)  # warm-up: bytecode caches, OS file cache

        walls, cpus = interleaved(variants(n), big, env, opts.rounds)
        med = {k: statistics.median(v) for k, v in walls.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpus.items()}
        print(f"\n{n}-row runs, {opts.rounds} interleaved round(s): median wall (min), median CPU user+sys")
        for name in names:
            print(f"  {name}  wall {med[name]:7.2f} s ({min(walls[name]):6.2f})  cpu {med_cpu[name]:7.2f} s"
                  f"   {med[name] / n * 1e6:6.0f} us/case wall, {med_cpu[name] / n * 1e6:6.0f} us/case cpu")
        for name in names:
            if name == "P":
                continue
            paired = statistics.median(x / y for x, y in zip(walls[name], walls["P"]))
            target = f"   target <= {TARGET_RATIO}: {'met' if paired <= TARGET_RATIO else 'MISSED'}" if name == "E" else ""
            print(f"  ratio {name}/P: wall {paired:.3f} (median of per-round ratios; ratio of medians {med[name] / med['P']:.3f}),"
                  f" cpu {med_cpu[name] / med_cpu['P']:.3f}{target}")
            print(f"    {name} adds {(med[name] - med['P']) / n * 1e6:.0f} us/case wall,"
                  f" {(med_cpu[name] - med_cpu['P']) / n * 1e6:.0f} us/case cpu over P (fixed cost included)")

        if opts.fixed_rounds:
            walls1, _ = interleaved(variants(1), one, env, opts.fixed_rounds)
            med1 = {k: statistics.median(v) for k, v in walls1.items()}
            split = import_split_ms(variants(1)["E"][0], one, env)
            print(f"\n1-row runs, {opts.fixed_rounds} interleaved round(s): median wall")
            print("  " + "   ".join(f"{name}  {med1[name]:.3f} s" for name in names)
                  + f"   fixed cost of an eval run (E - P): {med1['E'] - med1['P']:+.3f} s")
            print("  imports in one -X importtime run of E (ms): "
                  + ", ".join(f"{name} {ms:.0f}" for name, ms in split.items() if ms or name == "pytest_llmeval"))
            marginal = {k: (med[k] - med1[k]) / (n - 1) for k in names}
            caveat = "" if n >= 2000 else " [few rows: dominated by noise]"
            print(f"marginal cost per case, (wall(N) - wall(1)) / (N - 1){caveat}:")
            print("  " + "   ".join(f"{name} {marginal[name] * 1e6:.0f} us" for name in names)
                  + "   " + "   ".join(f"ratio {name}/P {marginal[name] / marginal['P']:.3f}" for name in names if name != "P"))
        if opts.tail_rows:
            m = opts.tail_rows
            make_project(tail, m)
            run_once(["-q", "--llm-eval-update", "-p", "no:cacheprovider", files["E"]], tail, env, m + 1)
            tails: dict[str, list[float]] = {"E": [], "P": []}
            for r in range(opts.tail_rounds + 1):  # round 0 warms up
                for name in ("E", "P") if r % 2 == 0 else ("P", "E"):
                    seconds = tail_once([*COMMON_ARGS, files[name]], tail, env, m + (name != "P"), probe_dir)
                    if r:
                        tails[name].append(seconds)
            med_tail = {k: statistics.median(v) for k, v in tails.items()}
            excess = statistics.median(e - p for e, p in zip(tails["E"], tails["P"]))
            verdict = "met" if excess <= TARGET_TAIL_S else "MISSED"
            print(f"\ntail, {m}-row runs (E against a baseline), {opts.tail_rounds} interleaved round(s): "
                  "last item finished -> process exited, median (min)")
            for name in ("E", "P"):
                print(f"  {name}  {med_tail[name]:.3f} s ({min(tails[name]):.3f})")
            print(f"  tail E - P: {excess:+.3f} s (median of per-round differences)   target <= +{TARGET_TAIL_S} s: {verdict}"
                  f"   ratio E/P of medians {med_tail['E'] / med_tail['P']:.2f}")
        if opts.keep:
            print(f"\nprojects kept at {tmp}")
        return 0
    finally:
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
