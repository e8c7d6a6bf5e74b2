#!/usr/bin/env python
"""Start-up overhead of pytest-llmeval on a test suite that has nothing to do with evals.

pytest loads every installed ``pytest11`` plugin on every run of a user's project, so
the plugin must cost (almost) nothing when a suite has no ``llm_eval`` tests. This
script builds a throwaway project of trivial tests in a temporary directory and times,
in subprocesses with this interpreter and interleaved round by round:

    A  python -m pytest -q                  (plugin loaded, as users get it)
    B  python -m pytest -q -p no:llmeval    (plugin blocked by its entry-point name)

It prints the median wall and CPU time of each, the ratio A/B (target <= 1.05; the
headline is the median of the per-round ratios, which shrugs off load that drifts
between rounds; the ratio of the medians is printed next to it) and the plugin's own
import time (median of a few ``-X importtime`` runs), split by the modules pytest or the
plugin's hooks import first: a less noisy view of the same overhead. It then checks, in
a separate run of variant A with a probe plugin, that the plugin adds none of the heavy
modules in ``HEAVY`` (scipy, numpy, httpx, yaml, ragas, the model SDKs, ...) to ``sys.modules`` (compared with a probe run of B: other installed plugins,
e.g. pytest-randomly, may import numpy themselves); the exit code is 1 if it does.

Runs get a bytecode cache under the temporary folder (PYTHONPYCACHEPREFIX), as users
have compiled files, without writing into the repository. See docs/benchmarks.md.

Two options measure the plugin as users get it rather than as it is checked out:

``--wheel``  builds a wheel of this checkout (``pip wheel --no-deps``), installs it into a
    throwaway venv in the temporary folder with its base dependencies only (pip's index),
    and runs everything with that venv's interpreter. This matters: pytest marks every
    module of a distribution with a ``pytest11`` entry point for assertion rewriting, which
    reaches an installed wheel's files but not an editable install's, so only a wheel
    install sends the plugin's modules through pytest's AssertionRewritingHook.
``--dont-write-bytecode``  keeps PYTHONDONTWRITEBYTECODE=1 (as many CI images set it) and no
    PYTHONPYCACHEPREFIX: Python reads the ``.pyc`` files pip compiled at install, but pytest
    can neither write nor find its cache of rewritten modules, so it parses, rewrites and
    compiles every one of them on every run.

The probe also counts the pytest_llmeval modules variant A imports and how many of them
went through the rewriting hook.

Usage:  python benchmarks/startup.py [--rounds N] [--files F] [--tests T] [--importtime-runs K]
                                     [--wheel] [--dont-write-bytecode] [--keep]

Standard library only (plus pytest and the plugin, installed in this interpreter; with
``--wheel``, pip and an index to install the plugin's dependencies from).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _importtime import outermost_nodes, parse_importtime  # benchmarks/ is on sys.path as the script's folder

HEAVY = ("scipy", "numpy", "httpx", "httpx2", "yaml", "ragas", "openai", "anthropic", "litellm", "langchain_core", "opentelemetry", "sqlalchemy", "jinja2", "jsonschema")
TARGET_RATIO = 1.05

PROBE = '''\
"""Loaded with -p _heavy_probe: records which heavy modules pytest ended up importing,
and which modules pytest's assertion-rewriting hook loaded."""
import json
import os
import sys

import pytest
from _pytest.assertion.rewrite import AssertionRewritingHook

HEAVY = {heavy!r}


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    modules = dict(sys.modules)
    found = sorted(name for name in modules if name.partition(".")[0] in HEAVY)
    roots = sorted({{name.partition(".")[0] for name in found}})
    rewritten = {{name for name, module in modules.items()
                 if isinstance(getattr(module, "__loader__", None), AssertionRewritingHook)}}
    ours = sorted(name for name in modules if name.partition(".")[0] == "pytest_llmeval")
    with open(os.environ["HEAVY_PROBE_OUT"], "w", encoding="utf-8") as fh:
        json.dump({{
            "plugin_registered": config.pluginmanager.has_plugin("llmeval"),
            "plugin_imported": "pytest_llmeval.plugin" in sys.modules,
            "heavy_roots": roots,
            "heavy_modules": len(found),
            "plugin_modules": ours,
            "plugin_rewritten": sorted(rewritten.intersection(ours)),
            "rewritten_modules": len(rewritten),
        }}, fh)
'''


# -- the throwaway project -------------------------------------------------------------


def make_project(root: Path, files: int, tests: int) -> None:
    # An ini file of its own: the project's rootdir and config are the temp dir, never
    # a pyproject.toml further up.
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    for f in range(files):
        body = [f'"""Unrelated tests, file {f}: no llm_eval anywhere."""\n']
        for t in range(tests):
            body.append(f"\n\ndef test_{f}_{t}():\n    values = list(range({t + 3}))\n    assert sum(values) == {sum(range(t + 3))}\n")
        (root / f"test_unrelated_{f}.py").write_text("".join(body), encoding="utf-8")


def clean_env(pycache: Path | None, **extra: str) -> dict[str, str]:
    """The caller's environment without pytest settings that would change what is measured.

    With ``pycache``, bytecode is cached (as on a user's machine, even where
    PYTHONDONTWRITEBYTECODE is set), but under ``pycache`` (PYTHONPYCACHEPREFIX): nothing is
    written into the repository. With None (``--dont-write-bytecode``), PYTHONDONTWRITEBYTECODE=1
    and no prefix: the ``.pyc`` files next to the sources are read, nothing is written."""
    drop = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if pycache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def install_wheel(tmp: Path) -> str:
    """Build a wheel of this checkout, install it (with its base dependencies, not editable)
    into a new venv under ``tmp``; return that venv's interpreter. Exits on a failed step."""
    checkout = Path(__file__).resolve().parent.parent
    wheels, venv = tmp / "wheel", tmp / "venv"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    steps = [[sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(checkout)],
             [sys.executable, "-m", "venv", str(venv)]]
    for step in steps:
        run_step(step)
    wheel = next(wheels.glob("pytest_llmeval-*.whl"))
    run_step([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)])
    print(f"installed {wheel.name} (not editable, base dependencies only) into {venv}")
    return str(python)


def run_step(command: list[str]) -> None:
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed with exit code {proc.returncode}:\n{proc.stdout[-3000:]}")


def cached_rewrites(python: str) -> int:
    """How many of pytest's cached rewritten modules (``*-pytest-*.pyc``) sit next to the
    plugin's sources: pytest reads them even with PYTHONDONTWRITEBYTECODE set."""
    proc = subprocess.run([python, "-c", "import pytest_llmeval, sys; print(pytest_llmeval.__path__[0])"],
                          stdout=subprocess.PIPE, text=True, env=clean_env(None))
    package = Path(proc.stdout.strip())
    return len(list(package.glob("**/__pycache__/*-pytest-*.pyc"))) if proc.returncode == 0 else 0


# -- running and timing ------------------------------------------------------------------


def run_once(args: list[str], cwd: Path, env: dict[str, str], python: str = sys.executable) -> tuple[float, float]:
    """Run ``python -m pytest *args``; return (wall seconds, child CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([python, "-m", "pytest", *args], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"pytest {' '.join(args)} failed with exit code {proc.returncode}:\n{proc.stdout[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def plugin_imports_ms(args: list[str], cwd: Path, env: dict[str, str], runs: int, python: str = sys.executable) -> dict[str, float]:
    """Median over ``runs`` runs of ``python -X importtime -m pytest *args``: cumulative import
    ms of each outermost pytest_llmeval module (one no other pytest_llmeval module imported;
    pytest imports the entry point, hooks import the rest lazily)."""
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        proc = subprocess.run([python, "-X", "importtime", "-m", "pytest", *args], cwd=cwd, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        found: dict[str, float] = {}
        for name, cumulative in outermost(parse_importtime(proc.stderr), ("pytest_llmeval",)):
            found[name] = found.get(name, 0.0) + cumulative / 1000.0
        for name, ms in found.items():
            samples.setdefault(name, []).append(ms)
    return {name: statistics.median(values + [0.0] * (runs - len(values))) for name, values in samples.items()}


def outermost(nodes: list, packages: tuple[str, ...]) -> list[tuple[str, int]]:
    """(name, cumulative us) of modules of ``packages`` that no module of ``packages`` imported."""
    return [(name, cumulative) for name, cumulative, _ in outermost_nodes(nodes, packages)]


def probe(args: list[str], cwd: Path, probe_dir: Path, pycache: Path | None, python: str = sys.executable) -> dict:
    out = probe_dir / "probe.json"
    if out.exists():
        out.unlink()
    env = clean_env(pycache, HEAVY_PROBE_OUT=str(out), PYTHONPATH=os.pathsep.join(filter(None, [str(probe_dir), os.environ.get("PYTHONPATH")])))
    run_once([*args, "-p", "_heavy_probe"], cwd, env, python)
    return json.loads(out.read_text(encoding="utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25, help="timed rounds, each running both variants (default 25)")
    parser.add_argument("--files", type=int, default=5, help="test files in the unrelated project (default 5)")
    parser.add_argument("--tests", type=int, default=10, help="test functions per file (default 10)")
    parser.add_argument("--importtime-runs", type=int, default=5, help="-X importtime runs for the plugin's import time (default 5)")
    parser.add_argument("--wheel", action="store_true",
                        help="build a wheel of this checkout and run with a throwaway venv it is installed in (not editable)")
    parser.add_argument("--dont-write-bytecode", action="store_true",
                        help="run with PYTHONDONTWRITEBYTECODE=1 and no bytecode cache of the script's own")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project and print its path")
    opts = parser.parse_args()
    if min(opts.rounds, opts.files, opts.tests, opts.importtime_runs) < 1:
        parser.error("--rounds, --files, --tests and --importtime-runs must be positive")

    tmp = Path(tempfile.mkdtemp(prefix="llmeval-startup-"))
    try:
        project, probe_dir = tmp / "project", tmp / "probe"
        project.mkdir()
        probe_dir.mkdir()
        make_project(project, opts.files, opts.tests)
        (probe_dir / "_heavy_probe.py").write_text(PROBE.format(heavy=HEAVY), encoding="utf-8")
        python = install_wheel(tmp) if opts.wheel else sys.executable
        pycache = None if opts.dont_write_bytecode else tmp / "pycache"
        env = clean_env(pycache)
        variants = {"plugin loaded": ["-q"], "-p no:llmeval": ["-q", "-p", "no:llmeval"]}
        names = list(variants)
        n_tests = opts.files * opts.tests

        print(f"pytest-llmeval start-up benchmark: {n_tests} trivial tests in {opts.files} files, no llm_eval markers")
        print(f"python {sys.version.split()[0]} ({python}), {os.cpu_count()} CPU(s)")
        if opts.dont_write_bytecode:
            cached = cached_rewrites(python)
            print("PYTHONDONTWRITEBYTECODE=1: pytest cannot cache the modules it rewrites"
                  + (f" (but {cached} cached rewritten pytest_llmeval modules from earlier runs are read)" if cached else ""))
        print(f"A = python -m pytest {' '.join(variants[names[0]])}")
        print(f"B = python -m pytest {' '.join(variants[names[1]])}")

        for name in names:  # warm-up: bytecode caches, .pytest_cache, OS file cache
            run_once(variants[name], project, env, python)

        walls: dict[str, list[float]] = {name: [] for name in names}
        cpus: dict[str, list[float]] = {name: [] for name in names}
        for r in range(opts.rounds):
            order = names if r % 2 == 0 else names[::-1]  # A B, B A, ...: no fixed position
            for name in order:
                wall, cpu = run_once(variants[name], project, env, python)
                walls[name].append(wall)
                cpus[name].append(cpu)

        a, b = names
        med = {name: statistics.median(walls[name]) for name in names}
        med_cpu = {name: statistics.median(cpus[name]) for name in names}
        paired = statistics.median(x / y for x, y in zip(walls[a], walls[b]))
        paired_cpu = statistics.median(x / y for x, y in zip(cpus[a], cpus[b]))
        print(f"\n{opts.rounds} rounds, interleaved; ms (wall: median / min; CPU user+sys: median)")
        for name, label in zip(names, "AB"):
            print(f"  {label} {name:<14} wall {med[name] * 1e3:7.1f} / {min(walls[name]) * 1e3:7.1f}   cpu {med_cpu[name] * 1e3:7.1f}")
        print(f"  ratio A/B, median of per-round ratios: wall {paired:.3f}, cpu {paired_cpu:.3f}"
              f"   target <= {TARGET_RATIO}: {'met' if paired <= TARGET_RATIO else 'MISSED'}")
        print(f"  ratio A/B of the medians:              wall {med[a] / med[b]:.3f}, cpu {med_cpu[a] / med_cpu[b]:.3f}")

        imports = plugin_imports_ms(variants[a], project, env, opts.importtime_runs, python)
        plugin_ms = sum(imports.values())
        print(f"  pytest_llmeval import time in A (median of {opts.importtime_runs} -X importtime runs): {plugin_ms:.1f} ms"
              f" = {plugin_ms / 1e3 / med[b]:.1%} of B's median run")
        for name, ms in sorted(imports.items(), key=lambda kv: -kv[1]):
            print(f"    {ms:6.1f} ms  {name} (and what it imports)")

        print("\nheavy modules in sys.modules at pytest_unconfigure (separate probe runs):")
        failed = False
        # B first: what other installed plugins import anyway (pytest-randomly imports numpy to
        # reseed it) is not the plugin's doing; A fails only on what it adds to B.
        checks = [("B  pytest -q -p no:llmeval (reference)", ["-q", "-p", "no:llmeval"], False), ("A  pytest -q", ["-q"], True),
                  ("   pytest -q --llm-eval (no eval tests; informational)", ["-q", "--llm-eval"], False)]
        reference: set[str] = set()
        for label, args, gating in checks:
            found = probe(args, project, probe_dir, pycache, python)
            heavy = found["heavy_roots"]
            status = "none" if not heavy else f"{', '.join(heavy)} ({found['heavy_modules']} modules)"
            loaded = "plugin loaded" if found["plugin_registered"] else "plugin not loaded"
            print(f"  {label:<58} {status:<24} [{loaded}]")
            if not found["plugin_registered"]:
                reference = set(heavy)
            if gating:
                added = sorted(set(heavy) - reference)
                if not found["plugin_registered"] or not found["plugin_imported"]:
                    print("    ERROR: the llmeval plugin was not loaded in the plugin-loaded variant; the check proves nothing")
                    failed = True
                if added:
                    print(f"    ERROR: the plugin-loaded run imported {', '.join(added)}: import them lazily where they are used")
                    failed = True
                elif heavy:
                    print(f"    ok: {', '.join(heavy)} also in B: imported by other installed plugins, not by this one")
                ours, rewritten = found["plugin_modules"], found["plugin_rewritten"]
                print(f"    {len(ours)} pytest_llmeval modules imported, {len(rewritten)} of them through pytest's assertion-rewriting hook"
                      f" ({found['rewritten_modules']} rewritten modules in the run)")
        if opts.keep:
            print(f"\nproject kept at {tmp}")
        return 1 if failed else 0
    finally:
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
