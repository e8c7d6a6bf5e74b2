"""Unit tests for pytest_llmeval.gate.stats.

Expected values are computed independently in the tests (hand formulas,
math.comb sums, scipy distributions on hand-computed statistics) rather than
by calling the code under test a second way.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy import stats as sps

from pytest_llmeval.gate import stats
from pytest_llmeval.gate.stats import (
    DEFAULT_ALPHA,
    DEFAULT_CONFIDENCE,
    DEFAULT_POWER,
    MeanEstimate,
    PairedComparison,
    compare_paired,
    holm,
    is_binary,
    mean_ci,
    minimum_detectable_drop,
    non_inferiority_lower_bound,
)

Z95 = 1.6448536269514722  # norm.ppf(0.95)
Z80 = 0.8416212335729143  # norm.ppf(0.80)


def mcnemar_greater(b: int, c: int) -> float:
    """P(Binom(b + c, 1/2) >= b), by hand."""
    m = b + c
    return sum(math.comb(m, k) for k in range(b, m + 1)) / 2**m


def paired(pairs: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Split [(baseline, current), ...] into two lists."""
    return [b for b, _ in pairs], [c for _, c in pairs]


def binary_pairs(n11: int = 0, n10: int = 0, n01: int = 0, n00: int = 0):
    """Baseline/current lists with the given counts of (baseline, current) pairs."""
    pairs = [(1.0, 1.0)] * n11 + [(1.0, 0.0)] * n10 + [(0.0, 1.0)] * n01 + [(0.0, 0.0)] * n00
    return paired(pairs)


# --------------------------------------------------------------------------- module


def test_constants_and_all():
    assert (DEFAULT_CONFIDENCE, DEFAULT_ALPHA, DEFAULT_POWER) == (0.95, 0.05, 0.80)
    assert set(stats.__all__) >= {
        "DEFAULT_CONFIDENCE", "DEFAULT_ALPHA", "DEFAULT_POWER", "is_binary", "MeanEstimate",
        "mean_ci", "PairedComparison", "compare_paired", "non_inferiority_lower_bound",
        "holm", "minimum_detectable_drop",
    }
    for name in stats.__all__:
        assert hasattr(stats, name)


def test_import_is_cheap_and_pytest_free():
    """Loading the module must not import scipy, numpy or pytest."""
    code = textwrap.dedent(
        """
        import sys
        import pytest_llmeval.gate.stats
        heavy = sorted(m for m in ("scipy", "numpy", "pytest", "_pytest") if m in sys.modules)
        print(",".join(heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_dataclasses_are_frozen():
    est = mean_ci([1.0, 0.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.mean = 0.3  # type: ignore[misc]
    cmp_ = compare_paired([1.0, 0.0], [1.0, 1.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        cmp_.p_value = 0.0  # type: ignore[misc]


# --------------------------------------------------------------------------- is_binary


@pytest.mark.parametrize(
    "values, expected",
    [
        ([], False),
        ([0.0], True),
        ([1.0], True),
        ([0.0, 1.0, 1.0], True),
        ([1, 0, True], True),
        ([0.0, 0.5], False),
        ([1.0, 0.999999], False),
        ([1.0, float("nan")], False),
        (np.array([0.0, 1.0]), True),
        (np.array([]), False),
    ],
)
def test_is_binary(values, expected):
    assert is_binary(values) is expected


# --------------------------------------------------------------------------- mean_ci


def wilson_by_hand(k: int, n: int, confidence: float) -> tuple[float, float]:
    z = sps.norm.ppf((1 + confidence) / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k, n, confidence", [(17, 20, 0.95), (3, 50, 0.90), (99, 100, 0.99)])
def test_mean_ci_wilson_matches_hand_formula(k, n, confidence):
    est = mean_ci([1.0] * k + [0.0] * (n - k), confidence=confidence)
    low, high = wilson_by_hand(k, n, confidence)
    assert est.method == "wilson"
    assert est.n == n
    assert est.mean == k / n
    assert est.ci_low == pytest.approx(low, rel=1e-9)
    assert est.ci_high == pytest.approx(high, rel=1e-9)


def test_mean_ci_wilson_extremes_stay_in_unit_interval():
    all_pass = mean_ci([1.0] * 10)
    assert all_pass.mean == 1.0
    assert all_pass.ci_high == pytest.approx(1.0)
    assert all_pass.ci_low == pytest.approx(wilson_by_hand(10, 10, 0.95)[0])
    all_fail = mean_ci([0.0] * 10)
    assert all_fail.ci_low == pytest.approx(0.0, abs=1e-12)
    assert 0.0 < all_fail.ci_high < 0.35


def test_mean_ci_t_matches_hand_formula():
    values = [0.2, 0.9, 0.55, 0.7, 0.35, 0.8, 0.6]
    n = len(values)
    mean = sum(values) / n
    sd = statistics.stdev(values)
    half = sps.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    est = mean_ci(values)
    assert est.method == "t"
    assert est.n == n
    assert est.mean == pytest.approx(mean, rel=1e-12)
    assert est.ci_low == pytest.approx(mean - half, rel=1e-12)
    assert est.ci_high == pytest.approx(mean + half, rel=1e-12)


def test_mean_ci_t_is_clipped_to_unit_interval():
    values = [1.0, 0.98, 0.6]
    n = len(values)
    mean = sum(values) / n
    half = sps.t.ppf(0.975, n - 1) * statistics.stdev(values) / math.sqrt(n)
    assert mean + half > 1.0  # the raw interval leaves [0, 1]
    est = mean_ci(values)
    assert est.ci_high == 1.0
    assert est.ci_low == pytest.approx(mean - half)


def test_mean_ci_degenerate_cases():
    empty = mean_ci([])
    assert empty.n == 0 and empty.method == "none"
    assert math.isnan(empty.mean) and math.isnan(empty.ci_low) and math.isnan(empty.ci_high)

    one = mean_ci([0.4])
    assert (one.n, one.mean, one.method) == (1, 0.4, "t")
    assert math.isnan(one.ci_low) and math.isnan(one.ci_high)

    const = mean_ci([0.7, 0.7, 0.7])
    assert const.method == "t"
    assert const.ci_low == const.ci_high == const.mean == pytest.approx(0.7)

    single_binary = mean_ci([1.0])
    assert single_binary.method == "wilson" and single_binary.mean == 1.0


@pytest.mark.parametrize("bad", [[0.5, 1.5], [-0.1], [float("nan")], [float("inf")]])
def test_mean_ci_rejects_values_outside_unit_interval(bad):
    with pytest.raises(ValueError):
        mean_ci(bad)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95, -0.5])
def test_mean_ci_rejects_bad_confidence(confidence):
    with pytest.raises(ValueError):
        mean_ci([0.5, 0.6], confidence=confidence)


# --------------------------------------------------------------------------- McNemar


def test_mcnemar_five_losses_no_wins():
    base, cur = binary_pairs(n11=40, n10=5, n00=5)
    res = compare_paired(base, cur)
    assert res.test == "mcnemar-exact"
    assert (res.losses, res.wins) == (5, 0)
    assert res.p_value == pytest.approx(0.5**5, rel=1e-12)
    assert res.n == 50
    assert res.baseline_mean == 45 / 50
    assert res.current_mean == 40 / 50
    assert res.change == -5 / 50


def test_mcnemar_seven_losses_two_wins():
    base, cur = binary_pairs(n11=30, n10=7, n01=2, n00=11)
    res = compare_paired(base, cur)
    assert (res.losses, res.wins) == (7, 2)
    expected = mcnemar_greater(7, 2)
    assert expected == pytest.approx((36 + 9 + 1) / 512)
    assert res.p_value == pytest.approx(expected, rel=1e-12)
    assert res.change == -5 / 50


def test_mcnemar_ties_do_not_change_the_p_value():
    """Concordant pairs (ties) carry no information for McNemar."""
    few = compare_paired(*binary_pairs(n10=6, n01=3))
    many = compare_paired(*binary_pairs(n11=500, n10=6, n01=3, n00=200))
    assert few.p_value == many.p_value == pytest.approx(mcnemar_greater(6, 3), rel=1e-12)


def test_mcnemar_improvement_has_large_p_value():
    res = compare_paired(*binary_pairs(n11=10, n10=1, n01=6))
    assert res.change > 0
    assert res.p_value == pytest.approx(mcnemar_greater(1, 6), rel=1e-12)
    assert res.p_value > 0.9


def test_mcnemar_all_pairs_equal():
    res = compare_paired(*binary_pairs(n11=20, n00=5))
    assert res.test == "mcnemar-exact"
    assert (res.losses, res.wins) == (0, 0)
    assert res.p_value == 1.0
    assert res.change == 0.0
    assert res.ci_low == res.ci_high == 0.0
    assert res.se == 0.0
    assert res.insufficient == ""  # the exact test is valid: no discordance is evidence
    # The t bound of non-inferiority has no variance to work with: no bound.
    assert math.isnan(non_inferiority_lower_bound(res))


def test_mcnemar_single_pair():
    res = compare_paired([1.0], [0.0])
    assert res.test == "mcnemar-exact"
    assert res.n == 1 and (res.losses, res.wins) == (1, 0)
    assert res.p_value == pytest.approx(0.5)
    assert math.isnan(res.ci_low) and math.isnan(res.ci_high)
    assert math.isnan(res.mde) and math.isnan(res.se)
    assert math.isnan(non_inferiority_lower_bound(res))
    assert res.insufficient == "only one paired case"


def test_binary_ci_is_t_interval_on_differences():
    base, cur = binary_pairs(n11=30, n10=7, n01=2, n00=11)
    d = [c - b for b, c in zip(base, cur)]
    n = len(d)
    mean = sum(d) / n
    se = statistics.stdev(d) / math.sqrt(n)
    half = sps.t.ppf(0.975, n - 1) * se
    res = compare_paired(base, cur)
    assert res.se == pytest.approx(se, rel=1e-12)
    assert res.ci_low == pytest.approx(mean - half, rel=1e-12)
    assert res.ci_high == pytest.approx(mean + half, rel=1e-12)


def test_change_is_exact_at_threshold():
    """A net loss of exactly 10 of 500 binary cases is a drop of exactly 0.02.

    Naive float subtraction of the two means can overshoot (0.83 - 0.85 is
    -0.020000000000000018), which would trip a "drop > 0.02" gate.
    """
    base, cur = binary_pairs(n11=415, n10=10, n00=75)
    res = compare_paired(base, cur)
    assert res.change == -0.02
    assert not (-res.change > 0.02)
    assert res.change == pytest.approx(res.current_mean - res.baseline_mean, abs=1e-15)


# --------------------------------------------------------------------------- paired t


def test_paired_t_matches_hand_statistic():
    base = [0.80, 0.75, 0.90, 0.60, 0.70, 0.85, 0.65, 0.95, 0.50, 0.72]
    cur = [0.78, 0.70, 0.91, 0.52, 0.66, 0.80, 0.66, 0.90, 0.49, 0.60]
    d = [c - b for b, c in zip(base, cur)]
    n = len(d)
    mean = sum(d) / n
    sd = statistics.stdev(d)
    t_stat = mean / (sd / math.sqrt(n))
    expected_p = sps.t.sf(-t_stat, n - 1)  # P(T <= t_stat)

    res = compare_paired(base, cur)
    assert res.test == "paired-t"
    assert res.losses is None and res.wins is None
    assert res.p_value == pytest.approx(expected_p, rel=1e-9)
    assert res.p_value == pytest.approx(
        sps.ttest_rel(cur, base, alternative="less").pvalue, rel=1e-9
    )
    assert res.change == pytest.approx(mean, rel=1e-12)
    assert res.se == pytest.approx(sd / math.sqrt(n), rel=1e-12)
    half = sps.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert res.ci_low == pytest.approx(mean - half, rel=1e-9)
    assert res.ci_high == pytest.approx(mean + half, rel=1e-9)


def test_paired_t_p_value_agrees_with_ci():
    """p < alpha exactly when the one-sided (1 - alpha) upper bound is below 0."""
    rng = np.random.default_rng(7)
    for shift in (-0.08, -0.03, 0.0, 0.02):
        base = rng.uniform(0.3, 0.9, size=40)
        cur = np.clip(base + shift + rng.normal(0, 0.08, size=40), 0, 1)
        res = compare_paired(base, cur)
        upper = res.change + sps.t.ppf(0.95, res.n - 1) * res.se
        assert (res.p_value < 0.05) == (upper < 0)


def test_paired_t_with_ties():
    """Pairs with d == 0 stay in the t-test (they shrink the mean and the sd)."""
    base = [0.5, 0.6, 0.7, 0.8, 0.4, 0.3]
    cur = [0.5, 0.6, 0.7, 0.6, 0.3, 0.25]
    d = [c - b for b, c in zip(base, cur)]
    t_stat = statistics.mean(d) / (statistics.stdev(d) / math.sqrt(len(d)))
    res = compare_paired(base, cur)
    assert res.p_value == pytest.approx(sps.t.sf(-t_stat, len(d) - 1), rel=1e-9)


def test_paired_t_all_pairs_equal():
    values = [0.3, 0.55, 0.9, 0.1]
    res = compare_paired(values, list(values))
    assert res.test == "paired-t"
    assert res.p_value == 1.0
    assert res.change == 0.0
    assert res.ci_low == res.ci_high == 0.0
    assert res.se == 0.0
    assert res.insufficient == "all 4 paired differences are equal (+0): the paired t-test has no variance to judge"
    assert math.isnan(non_inferiority_lower_bound(res))


def test_paired_t_constant_negative_and_positive_shift():
    base = [0.5, 0.75, 0.25, 0.5]
    down = compare_paired(base, [b - 0.25 for b in base])
    # Zero variance: the t statistic is undefined, so no evidence either way (never p = 0).
    assert down.p_value == 1.0 and "paired differences are equal (-0.25)" in down.insufficient
    assert down.change == -0.25
    assert down.ci_low == down.ci_high == -0.25
    assert math.isnan(non_inferiority_lower_bound(down))

    up = compare_paired(base, [b + 0.25 for b in base])
    assert up.p_value == 1.0
    assert up.ci_low == up.ci_high == 0.25


def test_paired_t_single_pair():
    res = compare_paired([0.8], [0.3])
    assert res.test == "paired-t" and res.n == 1
    assert res.p_value == 1.0
    assert res.change == pytest.approx(-0.5)
    assert math.isnan(res.ci_low) and math.isnan(res.ci_high)
    assert math.isnan(res.mde) and math.isnan(res.se)
    assert res.insufficient == "only one paired case"


def test_mixed_binary_and_continuous_uses_t():
    res = compare_paired([1.0, 0.0, 1.0], [0.9, 0.1, 0.5])
    assert res.test == "paired-t"
    assert res.losses is None and res.wins is None


def test_empty_comparison():
    res = compare_paired([], [])
    assert res.n == 0 and res.test == "none" and res.p_value == 1.0
    assert res.losses is None and res.wins is None
    for name in ("baseline_mean", "current_mean", "change", "ci_low", "ci_high", "mde", "se"):
        assert math.isnan(getattr(res, name)), name
    assert math.isnan(non_inferiority_lower_bound(res))


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="paired"):
        compare_paired([1.0, 0.0], [1.0])


@pytest.mark.parametrize(
    "kwargs", [{"alpha": 0.0}, {"alpha": 1.0}, {"power": 1.5}, {"confidence": 0.0}]
)
def test_compare_paired_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        compare_paired([1.0, 0.0], [1.0, 1.0], **kwargs)


def test_compare_paired_rejects_bad_scores():
    with pytest.raises(ValueError):
        compare_paired([0.5, 2.0], [0.5, 0.5])
    with pytest.raises(ValueError):
        compare_paired([0.5, 0.5], [0.5, float("nan")])


def test_confidence_changes_the_ci_width():
    base = [0.2, 0.5, 0.9, 0.4, 0.7, 0.6]
    cur = [0.1, 0.5, 0.7, 0.45, 0.5, 0.6]
    narrow = compare_paired(base, cur, confidence=0.80)
    wide = compare_paired(base, cur, confidence=0.99)
    assert wide.ci_low < narrow.ci_low < narrow.change < narrow.ci_high < wide.ci_high
    half80 = sps.t.ppf(0.90, 5) * narrow.se
    assert narrow.ci_high - narrow.change == pytest.approx(half80, rel=1e-9)


# --------------------------------------------------------------------------- mde


def _rule_mde(n, noise, *, binary, loss_size=1.0, alpha=0.05, power=0.80, allowed=0.0):
    """Independent solution of the MDE equation with scipy's brentq (see stats docstring)."""
    from scipy.optimize import brentq

    q = sps.norm.ppf(1 - alpha) if binary else sps.t.ppf(1 - alpha, n - 1)
    z = sps.norm.ppf(power)

    def shortfall(d):
        if binary:
            crit, spread = q * math.sqrt((noise + d) / n), math.sqrt(max(noise + d - d * d, 0) / n)
        else:
            spread = math.sqrt(max(noise ** 2 + loss_size * d - d * d, 0) / n)
            crit = q * spread
        return max(crit, allowed) + z * spread - d

    return brentq(shortfall, 1e-12, 0.9)


@pytest.mark.parametrize("n, expected", [(200, 0.073), (500, 0.042), (1000, 0.028)])
def test_binary_mde_is_connors_formula(n, expected):
    """Discordance 0.10 (e.g. 10 losses and 10 wins in 200): Connor (1987) gives
    0.073 / 0.042 / 0.028; the old (z_a + z_b) * sqrt(psi0 / n) said 0.056 at n=200."""
    got = minimum_detectable_drop(n, discordance=0.10)
    assert got == pytest.approx(expected, abs=0.0006)
    assert got == pytest.approx(_rule_mde(n, 0.10, binary=True), rel=1e-6)
    # Closed form of Connor's sample size at that drop gives back n.
    psi = 0.10 + got
    n_connor = (Z95 * math.sqrt(psi) + Z80 * math.sqrt(psi - got**2)) ** 2 / got**2
    assert n_connor == pytest.approx(n, rel=1e-6)


def test_mde_includes_the_allowed_drop_condition():
    # n=1000, discordance 0.1: the test alone sees 0.028, but the rule also needs an
    # observed drop above 0.02, which binds: 0.02 + z_0.8 * spread.
    test_only = minimum_detectable_drop(1000, discordance=0.10)
    rule = minimum_detectable_drop(1000, discordance=0.10, allowed_drop=0.02)
    assert rule > test_only
    assert rule == pytest.approx(_rule_mde(1000, 0.10, binary=True, allowed=0.02), rel=1e-6)
    assert rule == pytest.approx(0.02 + Z80 * math.sqrt((0.10 + rule - rule**2) / 1000), rel=1e-6)
    # A larger allowed drop always moves the MDE above it.
    assert minimum_detectable_drop(200, sd_diff=0.05, allowed_drop=0.1) > 0.1


def test_continuous_mde_adds_the_variance_a_drop_brings():
    got = minimum_detectable_drop(500, sd_diff=0.15, loss_size=0.8)
    assert got == pytest.approx(_rule_mde(500, 0.15, binary=False, loss_size=0.8), rel=1e-6)
    shift_only = (sps.t.ppf(0.95, 499) + Z80) * 0.15 / math.sqrt(500)
    assert got > shift_only
    # No noise at all: failing cases alone still make the drop uncertain (not an MDE of 0).
    assert minimum_detectable_drop(100, sd_diff=0.0) == pytest.approx(_rule_mde(100, 0.0, binary=False), rel=1e-6)
    assert minimum_detectable_drop(100, sd_diff=0.0) > 0.05


def test_minimum_detectable_drop_edges():
    assert math.isnan(minimum_detectable_drop(1, sd_diff=0.3))
    assert math.isnan(minimum_detectable_drop(0, discordance=0.3))
    # k_min for alpha = 0.05 is 5 (0.5**4 = 0.0625 > 0.05 >= 0.5**5): exact McNemar needs
    # 5 net losses. At 80% power Connor asks for more; at 50% power the floor binds.
    assert minimum_detectable_drop(1000, discordance=0.0) == pytest.approx(_rule_mde(1000, 0.0, binary=True), rel=1e-6)
    assert minimum_detectable_drop(1000, discordance=0.0) > 5 / 1000
    assert minimum_detectable_drop(1000, discordance=0.0, power=0.5) == pytest.approx(5 / 1000)
    assert minimum_detectable_drop(1000, discordance=0.0, alpha=0.01, power=0.5) == pytest.approx(7 / 1000)
    # Above 1: nothing is detectable at this n.
    assert minimum_detectable_drop(3, discordance=0.5) > 1
    for bad in ({"sd_diff": -0.1}, {}, {"sd_diff": 0.1, "discordance": 0.1}, {"sd_diff": 0.1, "allowed_drop": -1}):
        with pytest.raises(ValueError):
            minimum_detectable_drop(10, **bad)


def test_binary_mde_uses_the_noise_discordance_not_the_drop():
    # 12 losses, 8 wins: a drop adds losses, never wins, so the discordance the noise
    # explains is (8 + 8) / n; the extra 4 losses may be the drop itself.
    base, cur = binary_pairs(n11=150, n10=12, n01=8, n00=30)
    n = len(base)
    res = compare_paired(base, cur, allowed_drop=0.02)
    assert res.noise == pytest.approx(16 / n)
    assert res.mde == pytest.approx(minimum_detectable_drop(n, discordance=16 / n, allowed_drop=0.02))
    assert res.mde_test == pytest.approx(minimum_detectable_drop(n, discordance=16 / n))
    # A large real drop leaves the MDE where the noise puts it.
    base2, cur2 = binary_pairs(n11=100, n10=60, n01=8, n00=32)
    assert compare_paired(base2, cur2, allowed_drop=0.02).mde == pytest.approx(res.mde)
    # An improvement (more wins than losses) counts all discordance as noise.
    base3, cur3 = binary_pairs(n11=150, n10=8, n01=12, n00=30)
    assert compare_paired(base3, cur3).noise == pytest.approx(20 / n)


def test_continuous_mde_uses_sd_of_differences_and_loss_size():
    base = [0.2, 0.5, 0.9, 0.4, 0.7, 0.3, 0.8, 0.6]
    cur = [0.25, 0.4, 0.95, 0.35, 0.7, 0.2, 0.85, 0.5]
    d = [c - b for b, c in zip(base, cur)]
    res = compare_paired(base, cur)
    assert res.noise == pytest.approx(statistics.stdev(d))
    assert res.loss_size == pytest.approx(sum(b * b for b in base) / sum(base))
    assert res.mde == pytest.approx(_rule_mde(8, statistics.stdev(d), binary=False, loss_size=res.loss_size), rel=1e-6)


# --------------------------------------------------------------------------- non-inferiority


def test_non_inferiority_lower_bound():
    base = [0.8, 0.6, 0.9, 0.7, 0.75, 0.65, 0.85, 0.55]
    cur = [0.78, 0.62, 0.85, 0.69, 0.7, 0.66, 0.8, 0.5]
    d = [c - b for b, c in zip(base, cur)]
    n = len(d)
    mean = sum(d) / n
    se = statistics.stdev(d) / math.sqrt(n)
    res = compare_paired(base, cur)
    assert non_inferiority_lower_bound(res) == pytest.approx(
        mean - sps.t.ppf(0.95, n - 1) * se, rel=1e-9
    )
    assert non_inferiority_lower_bound(res, alpha=0.025) == pytest.approx(
        mean - sps.t.ppf(0.975, n - 1) * se, rel=1e-9
    )
    # The 1 - alpha/2 one-sided bound is the lower end of the two-sided CI.
    assert non_inferiority_lower_bound(res, alpha=0.025) == pytest.approx(res.ci_low, rel=1e-12)


# --------------------------------------------------------------------------- holm


def test_holm_textbook_example():
    # Wikipedia "Holm-Bonferroni method" example: four hypotheses.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_monotone_capped_and_order_preserving():
    raw = [0.5, 0.001, 0.02, 0.3, 0.019]
    adj = holm(raw)
    # by hand: sorted 0.001*5, 0.019*4, 0.02*3, 0.3*2, 0.5*1 -> running max
    assert adj == pytest.approx([0.6, 0.005, 0.076, 0.6, 0.076])
    order = sorted(range(len(raw)), key=raw.__getitem__)
    assert [adj[i] for i in order] == sorted(adj)
    assert all(a >= p for a, p in zip(adj, raw))
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([]) == []
    assert holm([0.03]) == [0.03]


def test_holm_rejects_invalid_p_values():
    with pytest.raises(ValueError):
        holm([0.1, float("nan")])
    with pytest.raises(ValueError):
        holm([1.2])


# --------------------------------------------------------------------------- JSON safety


def _float_fields(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
            if f.type in ("float", float)}


def test_results_are_plain_python_floats():
    # numpy inputs must not leak numpy scalars into the results
    base = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    cur = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    results = [
        mean_ci(base),
        mean_ci(np.array([0.2, 0.4, 0.9])),
        compare_paired(base, cur),
        compare_paired(np.array([0.2, 0.4, 0.9]), np.array([0.1, 0.5, 0.6])),
        compare_paired([], []),
    ]
    for res in results:
        floats = _float_fields(res)
        assert floats, res
        for name, value in floats.items():
            assert type(value) is float, (type(res).__name__, name, type(value))
        json.dumps(dataclasses.asdict(res))
    binary = results[2]
    assert type(binary.losses) is int and type(binary.wins) is int
    assert type(binary.n) is int
    assert type(non_inferiority_lower_bound(binary)) is float
    assert type(minimum_detectable_drop(50, sd_diff=np.float64(0.3))) is float
    assert all(type(p) is float for p in holm(np.array([0.01, 0.2])))


def test_dataclass_field_names_are_stable():
    assert [f.name for f in dataclasses.fields(MeanEstimate)] == [
        "n", "mean", "ci_low", "ci_high", "method",
    ]
    assert [f.name for f in dataclasses.fields(PairedComparison)][:11] == [
        "n", "baseline_mean", "current_mean", "change", "ci_low", "ci_high",
        "p_value", "test", "mde", "losses", "wins",
    ]
