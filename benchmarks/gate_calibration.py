"""Calibration of the regression gate by seeded simulation: `python benchmarks/gate_calibration.py`.

For binary and continuous metrics at n = 50, 200, 500 and 1000 paired cases it prints

* the false-block rate of the gate (the plugin's own decision functions:
  ``gate.stats.compare_paired`` then ``gate.verdicts.regression_decision``, alpha 0.05,
  allowed drop 0.02) and of the naive rule "block if the mean fell more than 2 points",
  on pairs of runs of the SAME app;
* the gate's power against a true 5-point drop;
* the median minimum detectable drop the gate prints on unchanged runs, and the gate's
  simulated power against a true drop of that size, which must lie in 70-90%.

It exits 1 when a cell is outside its bound (false-block rate above alpha plus three
Monte Carlo standard errors, or power at the printed MDE outside 70-90%).

Models (data generated with numpy, vectorised over trials; the decision is the gate's):

* binary: pass rate 0.85; 20% of cases are flaky (pass with probability 0.5 on every run),
  75% always pass, 5% always fail, so two runs of one app disagree on 10% of cases. A true
  drop d turns each passing answer of the current run into a failure with probability
  d / 0.85.
* continuous: a case's latent quality q ~ Beta(5, 2) (mean 5/7); 60% of cases vary between
  runs: score = q + min(q, 1 - q) * U(-1, 1), the others score q on every run (scores stay
  in [0, 1] and the mean stays 5/7). A true drop d makes each case of the current run fail
  (score 0) with probability d / (5/7); the column "even" instead scales every score by
  1 - d / (5/7), a drop spread over all cases, for which the printed MDE is conservative.

Two more sections run the simulations of their own scripts (importable, kept there):

* ``adaptive``: ``repeats="auto"`` against fixed k=1 and k=3 (false block, power against a
  5-point drop, calls per case), from ``benchmarks/sequential_calibration.py``;
* ``variants``: the A/B comparison's false "better"/"worse" rate when 3 variants equal the
  control (Holm across them), from ``benchmarks/variant_calibration.py``.

Sections are functions registered in ``SECTIONS``: each prints its own table and returns
the list of cells outside their bound. Seeded per cell, so adding a section changes no
other number. >= 2,000 trials a cell.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:  # imported from elsewhere (tests): find the siblings
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import sequential_calibration  # noqa: E402 - the adaptive section's simulation
import variant_calibration  # noqa: E402 - the variants section's simulation

from pytest_llmeval.gate.stats import compare_paired
from pytest_llmeval.gate.verdicts import GatePolicy, regression_decision

TRIALS = 2_000
SIZES = (50, 200, 500, 1000)
ALPHA = 0.05
ALLOWED_DROP = 0.02
FIVE_POINTS = 0.05
POWER_BAND = (0.70, 0.90)
SEED = 20241101

BINARY_PASS_RATE = 0.85
CONTINUOUS_MEAN = 5 / 7


def false_block_limit(trials: int) -> float:
    """alpha plus three Monte Carlo standard errors of a rate of alpha."""
    return ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / trials)


# --------------------------------------------------------------------------- models


def binary_runs(rng: np.random.Generator, trials: int, n: int, drop: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Baseline and current runs, shape (trials, n), of one binary app over the same cases."""
    kind = rng.random((trials, n))
    flaky, always = kind < 0.20, (kind >= 0.20) & (kind < 0.95)

    def run() -> np.ndarray:
        return np.where(flaky, rng.random((trials, n)) < 0.5, always)

    base, cur = run(), run()
    if drop:
        cur = cur & ~(rng.random((trials, n)) < drop / BINARY_PASS_RATE)
    return base.astype(float), cur.astype(float)


def continuous_runs(rng: np.random.Generator, trials: int, n: int, drop: float = 0.0,
                    even: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Baseline and current runs, shape (trials, n), of one continuous-metric app."""
    q = rng.beta(5, 2, (trials, n))
    varies = rng.random((trials, n)) < 0.6
    width = np.minimum(q, 1 - q) * varies

    def run() -> np.ndarray:
        return q + width * rng.uniform(-1, 1, (trials, n))

    base, cur = run(), run()
    if drop and even:
        cur = cur * (1 - drop / CONTINUOUS_MEAN)
    elif drop:
        cur = np.where(rng.random((trials, n)) < drop / CONTINUOUS_MEAN, 0.0, cur)
    return np.clip(base, 0.0, 1.0), np.clip(cur, 0.0, 1.0)


# --------------------------------------------------------------------------- the gate


@dataclass
class Rates:
    gate: float  # share of trials the gate blocked
    naive: float  # share of trials with an observed drop above the allowed drop
    mde: float  # median printed minimum detectable drop


def judge(base: np.ndarray, cur: np.ndarray) -> Rates:
    """The gate's decision on every trial (row), through its own functions."""
    policy = GatePolicy(alpha=ALPHA, max_drop=ALLOWED_DROP)
    blocked, naive, mdes = 0, 0, []
    for b, c in zip(base.tolist(), cur.tolist()):
        comparison = compare_paired(b, c, alpha=ALPHA, allowed_drop=ALLOWED_DROP)
        blocked += regression_decision(comparison, None, ALLOWED_DROP, policy)[0]
        naive += -comparison.change > ALLOWED_DROP  # the exact change: 4 of 200 is not above 0.02
        mdes.append(comparison.mde)
    return Rates(blocked / len(base), naive / len(base), float(np.median(mdes)))


def rng_for(*key: object) -> np.random.Generator:
    return np.random.default_rng([SEED, zlib.crc32(repr(key).encode())])


# --------------------------------------------------------------------------- sections


def calibration_section(trials: int) -> list[str]:
    """False blocks, power at 5 points and at the printed MDE, per metric kind and n."""
    limit = false_block_limit(trials)
    print(f"gate: exact McNemar (binary) / paired t (continuous), alpha {ALPHA}, allowed drop {ALLOWED_DROP}; "
          f"{trials} trials a cell")
    print(f"bounds: gate false-block <= {limit:.4f}; power at the printed MDE in "
          f"{POWER_BAND[0]:.0%}-{POWER_BAND[1]:.0%}")
    print()
    header = (f"{'metric':<10} {'n':>5}  {'false-block gate':>16} {'naive':>6}  {'power 5pt':>9}  "
              f"{'printed MDE':>11} {'power@MDE':>9} {'even':>6}  check")
    print(header)
    print("-" * len(header))
    outside = []
    models: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {"binary": binary_runs, "continuous": continuous_runs}
    for kind, runs in models.items():
        for n in SIZES:
            null = judge(*runs(rng_for(kind, n, "null"), trials, n))
            five = judge(*runs(rng_for(kind, n, "five"), trials, n, FIVE_POINTS))
            at_mde = judge(*runs(rng_for(kind, n, "mde"), trials, n, null.mde))
            even = "-"
            if kind == "continuous":
                even = f"{judge(*runs(rng_for(kind, n, 'even'), trials, n, null.mde, even=True)).gate:.1%}"
            problems = []
            if null.gate > limit:
                problems.append(f"false-block {null.gate:.4f} > {limit:.4f}")
            if not POWER_BAND[0] <= at_mde.gate <= POWER_BAND[1]:
                problems.append(f"power at MDE {at_mde.gate:.1%} outside {POWER_BAND[0]:.0%}-{POWER_BAND[1]:.0%}")
            outside += [f"{kind} n={n}: {p}" for p in problems]
            print(f"{kind:<10} {n:>5}  {null.gate:>16.1%} {null.naive:>6.1%}  {five.gate:>9.1%}  "
                  f"{null.mde:>11.3f} {at_mde.gate:>9.1%} {even:>6}  {'OUTSIDE' if problems else 'ok'}")
    return outside


def adaptive_section(trials: int) -> list[str]:
    """repeats="auto" against fixed repeats (benchmarks/sequential_calibration.py)."""
    return sequential_calibration.report(sequential_calibration.table(trials), trials, 18)


def variants_section(trials: int) -> list[str]:
    """False "better"/"worse" verdicts of the variant comparison (benchmarks/variant_calibration.py)."""
    r = variant_calibration.false_verdict_rate(trials)
    print(f"variants: {r['variants']} variants equal to the control, n={r['n']}, two-sided exact McNemar, Holm across "
          f"the variants, alpha {r['alpha']}; {r['trials']} trials")
    print(f"false verdict rate {r['false_rate']:.1%} (better {r['false_better']:.1%}, worse {r['false_worse']:.1%}); "
          f"limit {r['limit']:.4f}  {'ok' if r['false_rate'] <= r['limit'] else 'OUTSIDE'}")
    return [] if r["false_rate"] <= r["limit"] else [f"variants: false verdict rate {r['false_rate']:.4f} > {r['limit']:.4f}"]


SECTIONS: dict[str, Callable[[int], list[str]]] = {"calibration": calibration_section, "adaptive": adaptive_section,
                                                   "variants": variants_section}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=TRIALS, help=f"trials a cell (default {TRIALS}; at least 2000 for the bounds)")
    parser.add_argument("--section", choices=sorted(SECTIONS), action="append", help="run only these sections")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    outside: list[str] = []
    for name in args.section or list(SECTIONS):
        outside += SECTIONS[name](args.trials)
        print()
    print(f"finished in {time.perf_counter() - start:.0f} s")
    if outside:
        print("cells outside their bound:\n  " + "\n  ".join(outside))
        return 1
    print("every cell within its bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
