#!/usr/bin/env python
"""Calibration of the A/B variant comparison: its false "better"/"worse" rate when no
variant differs from the control.

Seeded simulation, the same case mixture as the regression gate's calibration: a binary
metric with pass rate 0.85 where 20% of cases are flaky (pass with p = 0.5 on every
run), 75% always pass and 5% always fail, so two runs of the same app disagree on 10%
of cases. A control and ``variants`` other variants all run the SAME app on the same n
cases; each trial calls :func:`pytest_llmeval.gate.comparison.compare_variants` (two-sided
exact McNemar per variant, Holm across the variants) and counts a false verdict when any
variant is called "better" or "worse". With Holm the family-wise rate must stay <= alpha.

Usage: python benchmarks/variant_calibration.py [--trials T] [--cases N] [--variants K]
``false_verdict_rate`` is the function the calibration suite imports.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from typing import Any

FLAKY, ALWAYS_PASS = 0.20, 0.75  # the remaining 5% always fail
SEED = 20241201


def false_verdict_rate(trials: int = 2000, n: int = 400, variants: int = 3, alpha: float = 0.05,
                       seed: int = SEED) -> dict[str, Any]:
    """Run ``trials`` simulated A/B comparisons with no true difference.

    Returns ``{"trials", "n", "variants", "alpha", "false_rate", "false_better",
    "false_worse", "limit"}``: the share of trials with at least one false verdict (any
    variant), the shares by direction, and ``limit`` = alpha + 3 Monte Carlo standard
    errors (the bound a test of "rate <= alpha" should use)."""
    from pytest_llmeval.gate.comparison import BETTER, WORSE, CaseFigures, ComparisonPolicy, compare_variants

    rng = random.Random(seed)
    policy = ComparisonPolicy(alpha=alpha)
    names = ["control"] + [f"v{k}" for k in range(1, variants + 1)]
    any_false = better = worse = 0
    for _ in range(trials):
        kinds = [rng.random() for _ in range(n)]
        cases: dict[str, dict[str, CaseFigures]] = {}
        for name in names:
            cases[name] = {
                f"c{i}": CaseFigures({"correct": float(rng.random() < 0.5 if k < FLAKY else k < FLAKY + ALWAYS_PASS)})
                for i, k in enumerate(kinds)
            }
        verdicts = [m.verdict for pair in compare_variants(cases, "control", policy) for m in pair.metrics]
        any_false += any(v in (BETTER, WORSE) for v in verdicts)
        better += BETTER in verdicts
        worse += WORSE in verdicts
    return {
        "trials": trials,
        "n": n,
        "variants": variants,
        "alpha": alpha,
        "false_rate": any_false / trials,
        "false_better": better / trials,
        "false_worse": worse / trials,
        "limit": alpha + 3 * math.sqrt(alpha * (1 - alpha) / trials),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--variants", type=int, default=3)
    args = parser.parse_args(argv)
    result = false_verdict_rate(args.trials, args.cases, args.variants)
    print(f"{result['trials']} trials, n={result['n']}, {result['variants']} variants vs control, alpha {result['alpha']}: "
          f"false verdict rate {result['false_rate']:.3f} (better {result['false_better']:.3f}, worse "
          f"{result['false_worse']:.3f}); limit {result['limit']:.3f}")
    return 0 if result["false_rate"] <= result["limit"] else 1


if __name__ == "__main__":
    sys.exit(main())
