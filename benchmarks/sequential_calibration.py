#!/usr/bin/env python
"""Calibration of ``repeats="auto"`` against fixed repeats, by seeded simulation.

For each scheme the simulation draws a baseline (3 repeats per case, as ``--llm-eval-update``
with ``repeats="auto"`` stores it) and a current run, and applies the plugin's own gate
(:func:`pytest_llmeval.gate.verdicts.judge_suite`: the paired test on per-case means,
block when p < level and drop > 0.02) and, for ``auto``, its own sequential design
(:func:`pytest_llmeval.gate.sequential.next_level`, :func:`~pytest_llmeval.gate.sequential.decide` and
:func:`~pytest_llmeval.gate.sequential.half_round`):

    k1     every case once, one test at alpha 0.05
    k3     every case three times, one test at alpha 0.05
    auto   the default design: every case once, then rounds of half the cases (the halves in
           turn), at most 5 looks (3 calls per case), Pocock-type spending; further rounds
           only while the drop is not significant and above the futility bound
    auto-all     rounds of every case, at most 3 looks
    auto-flaky   rounds of the baseline-flaky cases, at most 3 looks
    auto-obf     the default with O'Brien-Fleming-type spending

Models (one metric):

    binary      20% of cases flaky (pass with p = 0.5 on every run), 75% always pass, 5%
                always fail: pass rate 0.85, 10% of cases differ between two identical runs.
                A drop of D turns each passing outcome of the current app into a failure
                with probability D / 0.85 (the model of tests/test_calibration.py).
    continuous  per-case quality q ~ Uniform(0.6, 1.0); a run scores clip(q + N(0, 0.15^2), 0, 1).
                A drop of D lowers q by D.

It prints, per (model, n, scheme): the false-block rate with no change, the power against
a 5-point drop, and the mean calls per case in both cases. The 3-sigma simulation
allowance around 5% is printed with the table. :func:`table` and :func:`report` are what
``benchmarks/gate_calibration.py`` runs as its ``adaptive`` section (the table in
docs/gate.md comes from that run).

Usage:  python benchmarks/sequential_calibration.py [--trials 2000] [--seed 18] [--quick]

Needs numpy (the ``dev`` extra) for drawing the data; the gate itself is the plugin's.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from functools import lru_cache

import numpy as np

from pytest_llmeval.gate import sequential
from pytest_llmeval.gate.sequential import SequentialDesign
from pytest_llmeval.gate.verdicts import GatePolicy, judge_suite

ALPHA = 0.05
ALLOWED_DROP = 0.02
TRUE_DROP = 0.05
BASELINE_REPEATS = 3
SCHEMES = {
    "k1": None,
    "k3": None,
    "auto": SequentialDesign(),
    "auto-all": SequentialDesign(3, "pocock", "all"),
    "auto-flaky": SequentialDesign(3, "pocock", "flaky"),
    "auto-obf": SequentialDesign(boundary="obrien-fleming"),
}
LABELS = {"k1": "fixed k=1", "k3": "fixed k=3", "auto": "auto (default: half rounds, Pocock)",
          "auto-all": "auto, rounds of every case, 3 looks", "auto-flaky": "auto, baseline-flaky cases, 3 looks",
          "auto-obf": "auto, O'Brien-Fleming"}

_exact_nominal = sequential.nominal_alpha


@lru_cache(maxsize=None)
def _cached_nominal(ratios: tuple[float, ...], alpha: float, boundary: str, max_rounds: int,
                    times: tuple[float, ...] | None) -> float:
    return _exact_nominal(list(ratios), alpha, boundary, max_rounds, times)


def _nominal(information, alpha, boundary, max_rounds, times=None):
    """The boundary depends only on information ratios; rounded to 0.01 they repeat across
    trials, so each is computed once (the recursion takes 50-200 ms in pure Python; the
    rounding moves a nominal level by about 1e-4)."""
    first = information[0]
    return _cached_nominal(tuple(round(i / first, 2) for i in information), alpha, boundary, max_rounds,
                           None if times is None else tuple(times))


@lru_cache(maxsize=None)
def _half(n: int, round_number: int) -> np.ndarray:
    """The plugin's half round (gate.sequential.half_round) as indices into c0..c{n-1}."""
    return np.array(sorted(int(c[1:]) for c in sequential.half_round([f"c{i}" for i in range(n)], round_number)))


class Model:
    """Draws per-case outcomes for one trial."""

    def __init__(self, kind: str, n: int, rng: np.random.Generator) -> None:
        self.kind, self.n, self.rng = kind, n, rng
        if kind == "binary":
            u = rng.random(n)
            self.p = np.where(u < 0.20, 0.5, np.where(u < 0.95, 1.0, 0.0))
        else:
            self.q = rng.uniform(0.6, 1.0, n)

    def draw(self, repeats: int, drop: float, cases: np.ndarray | None = None) -> np.ndarray:
        """Scores, shape (n or len(cases), repeats)."""
        idx = np.arange(self.n) if cases is None else cases
        if self.kind == "binary":
            p = self.p[idx] * (1.0 - drop / 0.85)
            return (self.rng.random((len(idx), repeats)) < p[:, None]).astype(float)
        q = self.q[idx] - drop
        return np.clip(q[:, None] + self.rng.normal(0.0, 0.15, (len(idx), repeats)), 0.0, 1.0)


def _judge(ids: list[str], base: np.ndarray, cur: np.ndarray, alpha: float):
    (verdict,) = judge_suite({c: {"m": float(v)} for c, v in zip(ids, cur)}, {}, {}, GatePolicy(alpha=alpha, max_drop=ALLOWED_DROP),
                             {c: {"m": float(v)} for c, v in zip(ids, base)})
    return verdict


def one_trial(model: Model, scheme: str, drop: float) -> tuple[bool, int]:
    """(blocked, calls) for one trial of one scheme."""
    n = model.n
    ids = [f"c{i}" for i in range(n)]
    baseline = model.draw(BASELINE_REPEATS, 0.0)
    base = baseline.mean(axis=1)
    if scheme in ("k1", "k3"):
        k = 1 if scheme == "k1" else 3
        return _judge(ids, base, model.draw(k, drop).mean(axis=1), ALPHA).regressed, k * n
    design = SCHEMES[scheme]
    flaky = np.nonzero(baseline.min(axis=1) != baseline.max(axis=1))[0]
    sums, counts = model.draw(1, drop)[:, 0].copy(), np.ones(n)
    calls, information = n, {}
    for round_number in range(1, design.max_rounds + 1):
        cur = sums / counts
        first = _judge(ids, base, cur, ALPHA)
        information, level = sequential.next_level({"m": first.comparison.se}, information, ALPHA, design, round_number)
        verdict = _judge(ids, base, cur, level)
        decision = sequential.decide(round_number, design, regressed=verdict.regressed,
                                     drops={"m": (-verdict.comparison.change, ALLOWED_DROP, verdict.comparison.se)})
        if decision.stop:
            return verdict.regressed, calls
        if design.rerun == "half":
            rerun = _half(n, round_number + 1)
        else:
            rerun = np.arange(n) if design.rerun == "all" or len(flaky) == 0 else flaky
        sums[rerun] += model.draw(1, drop, rerun)[:, 0]
        counts[rerun] += 1
        calls += len(rerun)
    raise AssertionError("decide() always stops at max_rounds")


def simulate(kind: str, n: int, scheme: str, drop: float, trials: int, seed: int) -> dict[str, float]:
    """Block rate and mean calls per case of ``scheme`` over ``trials`` seeded trials."""
    rng = np.random.default_rng([seed, n, int(drop * 1000), list(SCHEMES).index(scheme), kind == "binary"])
    blocked = calls = 0
    for _ in range(trials):
        b, c = one_trial(Model(kind, n, rng), scheme, drop)
        blocked += b
        calls += c
    return {"block_rate": blocked / trials, "calls_per_case": calls / (trials * n)}


def table(trials: int = 2000, seed: int = 18, quick: bool = False) -> list[dict[str, object]]:
    """Rows of (model, n, scheme, false block, power, calls with no change / with the drop)."""
    sequential.nominal_alpha = _nominal  # type: ignore[assignment] - memoised for the simulation only
    try:
        cells = [("binary", 200, s) for s in SCHEMES]
        cells += [("binary", 500, s) for s in ("k1", "k3", "auto")] + [("continuous", 200, s) for s in ("k1", "k3", "auto")]
        if quick:
            cells = [("binary", 200, s) for s in ("k1", "k3", "auto")]
        rows = []
        for kind, n, scheme in cells:
            null = simulate(kind, n, scheme, 0.0, trials, seed)
            alt = simulate(kind, n, scheme, TRUE_DROP, trials, seed)
            rows.append({"model": kind, "n": n, "scheme": scheme, "false_block": null["block_rate"], "power": alt["block_rate"],
                         "calls_null": null["calls_per_case"], "calls_drop": alt["calls_per_case"]})
        return rows
    finally:
        sequential.nominal_alpha = _exact_nominal  # type: ignore[assignment]


def false_block_limit(trials: int) -> float:
    """alpha plus three Monte Carlo standard errors of a rate of alpha."""
    return ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / trials)


GOAL_POWER, GOAL_CALLS = 0.85, 1.4  # issue 18, for auto at binary n=200


def report(rows: list[dict[str, object]], trials: int, seed: int) -> list[str]:
    """Print the table (as docs/gate.md shows it); return the cells outside their bound:
    any false-block rate above :func:`false_block_limit`, and for ``auto`` at binary n=200
    power below 85% or more than 1.4 calls per case under the drop."""
    limit = false_block_limit(trials)
    print(f"repeats=auto: {trials} trials a cell, seed {seed}; alpha {ALPHA}, allowed drop {ALLOWED_DROP}, "
          f"true drop {TRUE_DROP}; baseline {BASELINE_REPEATS} repeats")
    print(f"bounds: false block <= {limit:.4f}; auto at binary n=200: power >= {GOAL_POWER:.0%}, "
          f"<= {GOAL_CALLS} calls/case under the drop")
    print()
    header = f"{'metric':<10} {'n':>4}  {'scheme':<38} {'false block':>11} {'power 5pt':>9}  {'calls/case: unchanged':>21} {'drop':>5}  check"
    print(header)
    print("-" * len(header))
    outside = []
    for r in rows:
        name = f"{r['model']} n={r['n']} {r['scheme']}"
        problems = []
        if r["false_block"] > limit:
            problems.append(f"false block {r['false_block']:.4f} > {limit:.4f}")
        if (r["model"], r["n"], r["scheme"]) == ("binary", 200, "auto"):
            if r["power"] < GOAL_POWER:
                problems.append(f"power {r['power']:.1%} < {GOAL_POWER:.0%}")
            if r["calls_drop"] > GOAL_CALLS:
                problems.append(f"{r['calls_drop']:.2f} calls/case under the drop > {GOAL_CALLS}")
        outside += [f"{name}: {p}" for p in problems]
        print(f"{r['model']:<10} {r['n']:>4}  {LABELS[str(r['scheme'])]:<38} {r['false_block']:>11.1%} {r['power']:>9.1%}  "
              f"{r['calls_null']:>21.2f} {r['calls_drop']:>5.2f}  {'OUTSIDE' if problems else 'ok'}")
    return outside


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--quick", action="store_true", help="binary n=200, k1 / k3 / auto only")
    opts = parser.parse_args(argv)
    started = time.perf_counter()
    outside = report(table(opts.trials, opts.seed, opts.quick), opts.trials, opts.seed)
    print(f"({time.perf_counter() - started:.0f} s)")
    if outside:
        print("cells outside their bound:\n  " + "\n  ".join(outside))
    return 1 if outside else 0


if __name__ == "__main__":
    sys.exit(main())
