"""Calibration of the regression gate by seeded simulation.

Binary metric, pass rate 0.85, and each case discordant between two runs of
the SAME app with probability 0.10.  Modelled as a mixture of case types:
20% flaky (pass with p = 0.5 on every run), 75% always pass, 5% always fail
-> mean 0.75 + 0.2 * 0.5 = 0.85, discordance 0.2 * 2 * 0.5 * 0.5 = 0.10.

Gate rule (the plugin):  block when p_value < 0.05 AND observed drop > 0.02.
Naive rule:              block when observed drop > 0.02.

The naive rule blocks an unchanged app far more often than 5% because
flakiness alone moves the pass rate by a couple of points; the paired test
keeps false blocks at or below alpha while still catching a real 5-point drop.
Run with ``pytest -s`` to see the measured rates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from pytest_llmeval.gate.stats import compare_paired, minimum_detectable_drop
from pytest_llmeval.gate.verdicts import GatePolicy, regression_decision

TRIALS = 2_000
ALPHA = 0.05
DROP_THRESHOLD = 0.02
PASS_RATE = 0.85
FLAKY, ALWAYS_PASS = 0.20, 0.75  # the remaining 5% always fail
TRUE_DROP = 0.05
SEED = 20241101

# 3-sigma Monte Carlo allowance around a 5% rate with 2,000 trials.
FALSE_BLOCK_LIMIT = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / TRIALS)


def simulate_runs(rng: np.random.Generator, n: int, *, true_drop: float = 0.0):
    """Baseline and current runs, shape (TRIALS, n), over the same sampled cases."""
    kind = rng.random((TRIALS, n))
    flaky = kind < FLAKY
    always_pass = (kind >= FLAKY) & (kind < FLAKY + ALWAYS_PASS)

    def run() -> np.ndarray:
        return np.where(flaky, rng.random((TRIALS, n)) < 0.5, always_pass)

    baseline, current = run(), run()
    if true_drop:
        # turn each passing case into a failure with probability drop / pass rate
        current = current & ~(rng.random((TRIALS, n)) < true_drop / PASS_RATE)
    return baseline.astype(float), current.astype(float)


def gate(baseline: np.ndarray, current: np.ndarray) -> dict:
    """Run compare_paired on every trial; return block rates and the raw results."""
    results = [compare_paired(b, c, allowed_drop=DROP_THRESHOLD) for b, c in zip(baseline.tolist(), current.tolist())]
    p = np.array([r.p_value for r in results])
    drop = -np.array([r.change for r in results])
    policy = GatePolicy(alpha=ALPHA, max_drop=DROP_THRESHOLD)
    blocked = [regression_decision(r, None, DROP_THRESHOLD, policy)[0] for r in results]
    return {
        "plugin": float(np.mean(blocked)),
        "rule": float(np.mean((p < ALPHA) & (drop > DROP_THRESHOLD))),
        "naive": float(np.mean(drop > DROP_THRESHOLD)),
        "p": p,
        "losses": np.array([r.losses for r in results]),
        "wins": np.array([r.wins for r in results]),
        "mde": float(np.mean([r.mde for r in results])),
        "median_mde": float(np.median([r.mde for r in results])),
    }


@pytest.fixture(scope="module")
def outcomes() -> dict:
    rng = np.random.default_rng(SEED)
    out = {}
    for n in (200, 500):
        base, cur = simulate_runs(rng, n)
        out[("null", n)] = (gate(base, cur), base, cur)
    base, cur = simulate_runs(rng, 500, true_drop=TRUE_DROP)
    out[("drop", 500)] = (gate(base, cur), base, cur)
    # A true drop of the MDE the gate prints on unchanged runs of n=200, and of the one
    # the old formula (z_a + z_b) * sqrt(psi0 / n) printed for the same noise.
    printed = out[("null", 200)][0]["median_mde"]
    out["printed_mde"] = printed
    out[("at_mde", 200)] = (gate(*simulate_runs(rng, 200, true_drop=printed)), None, None)
    old_formula = (sps.norm.ppf(0.95) + sps.norm.ppf(0.80)) * math.sqrt(0.10 / 200)
    out[("at_old_mde", 200)] = (gate(*simulate_runs(rng, 200, true_drop=old_formula)), None, None)

    print()
    for n in (200, 500):
        g = out[("null", n)][0]
        print(
            f"unchanged app, n={n}: plugin false-block {g['plugin']:.4f} "
            f"(limit {FALSE_BLOCK_LIMIT:.4f}), naive false-block {g['naive']:.4f}, "
            f"mean mde {g['mde']:.4f}"
        )
    g = out[("drop", 500)][0]
    print(f"true 5-point drop, n=500: plugin power {g['plugin']:.4f}, naive {g['naive']:.4f}")
    return out


def test_simulation_matches_the_stated_model(outcomes):
    _, base, cur = outcomes[("null", 500)]
    assert base.mean() == pytest.approx(PASS_RATE, abs=0.005)
    assert cur.mean() == pytest.approx(PASS_RATE, abs=0.005)
    assert (base != cur).mean() == pytest.approx(0.10, abs=0.005)

    _, base, cur = outcomes[("drop", 500)]
    assert (base.mean() - cur.mean()) == pytest.approx(TRUE_DROP, abs=0.005)


@pytest.mark.parametrize("n", [200, 500])
def test_plugin_false_block_rate_is_at_most_alpha(outcomes, n):
    assert outcomes[("null", n)][0]["plugin"] <= FALSE_BLOCK_LIMIT


@pytest.mark.parametrize("n, expected", [(200, 0.15), (500, 0.07)])
def test_naive_rule_false_blocks_often(outcomes, n, expected):
    g = outcomes[("null", n)][0]
    assert g["naive"] == pytest.approx(expected, abs=0.03)
    assert g["naive"] > g["plugin"]


def test_power_against_a_five_point_drop(outcomes):
    assert outcomes[("drop", 500)][0]["plugin"] >= 0.85


@pytest.mark.parametrize("key", [("null", 200), ("null", 500), ("drop", 500)])
def test_p_values_match_vectorised_mcnemar(outcomes, key):
    """Independent check: P(Binom(b + c, 1/2) >= b) computed from the raw arrays."""
    g, base, cur = outcomes[key]
    b = ((base == 1) & (cur == 0)).sum(axis=1)
    c = ((base == 0) & (cur == 1)).sum(axis=1)
    np.testing.assert_array_equal(g["losses"], b)
    np.testing.assert_array_equal(g["wins"], c)
    expected = np.where(b + c == 0, 1.0, sps.binom.sf(b - 1, b + c, 0.5))
    np.testing.assert_allclose(g["p"], expected, rtol=1e-9, atol=0)


def test_the_gate_decision_is_the_documented_rule(outcomes):
    for key in [("null", 200), ("null", 500), ("drop", 500)]:
        assert outcomes[key][0]["plugin"] == outcomes[key][0]["rule"]


def test_power_at_the_printed_mde_is_about_80_percent(outcomes):
    """The MDE is the drop the whole rule catches with 80% power (Connor 1987 plus the
    allowed-drop condition); the old formula's value was caught about half the time."""
    assert outcomes["printed_mde"] == pytest.approx(minimum_detectable_drop(200, discordance=0.10, allowed_drop=0.02), abs=0.006)
    assert 0.70 <= outcomes[("at_mde", 200)][0]["plugin"] <= 0.90
    assert outcomes[("at_old_mde", 200)][0]["plugin"] < 0.62


def _benchmark(name: str):
    """A module of benchmarks/ (scripts, importable: gate_calibration.py imports its siblings)."""
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def test_the_auto_simulation_counts_calls_and_flags_cells_outside_their_bound(capsys):
    sc = _benchmark("sequential_calibration")
    rows = sc.table(trials=20, quick=True)  # binary n=200: k1, k3, auto; both scenarios
    assert [r["scheme"] for r in rows] == ["k1", "k3", "auto"]
    k1, k3, auto = rows
    assert (k1["calls_null"], k1["calls_drop"], k3["calls_null"], k3["calls_drop"]) == (1, 1, 3, 3)
    # auto: one call, plus half a call per half round, at most 3 calls per case
    for calls in (auto["calls_null"], auto["calls_drop"]):
        assert 1 <= calls <= 3 and round(calls * 20 * 200) % 100 == 0
    assert sc.report(rows[:2], 2000, 18) == []
    bad = dict(auto, false_block=0.08, power=0.80, calls_drop=1.45)
    outside = sc.report([bad], 2000, 18)
    assert [o.split(": ")[1].split()[0] for o in outside] == ["false", "power", "1.45"]
    assert "auto (default: half rounds, Pocock)" in capsys.readouterr().out


def test_gate_calibration_runs_the_variant_section_of_its_sibling():
    gc = _benchmark("gate_calibration")
    assert list(gc.SECTIONS) == ["calibration", "adaptive", "variants"]
    assert gc.variants_section(60) == []  # 60 trials: limit 0.134
