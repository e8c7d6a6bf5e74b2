"""Gate decisions on per-case scores (no pytest run): thresholds, regression, notes."""

from __future__ import annotations

import pytest

from pytest_llmeval.gate.verdicts import GatePolicy, judge_suite


def scores(values: list[float], metric: str = "m") -> dict[str, dict[str, float]]:
    return {f"c{i:03d}": {metric: v} for i, v in enumerate(values)}


def test_threshold_pass_and_fail_messages():
    [ok] = judge_suite(scores([1.0] * 9 + [0.0]), {"m": 0.8}, {}, GatePolicy())
    assert ok.passed and ok.estimate.mean == pytest.approx(0.9)
    [bad] = judge_suite(scores([1.0] * 7 + [0.0] * 3), {"m": 0.8}, {}, GatePolicy())
    assert not bad.passed and bad.threshold_failed
    assert bad.failures[0].startswith("m 0.700 < 0.8 (95% CI 0.40-0.89, n=10)")


def test_threshold_for_a_metric_nobody_recorded_fails():
    verdicts = judge_suite(scores([1.0]), {"other": 0.5}, {}, GatePolicy())
    other = next(v for v in verdicts if v.metric == "other")
    assert not other.passed and "no case recorded this metric" in other.failures[0]


def test_ignored_thresholds_become_notes():
    [v] = judge_suite(scores([0.0] * 5), {"m": 0.5}, {}, GatePolicy(enforce_thresholds=False))
    assert v.passed and v.threshold_failed and "not enforced" in v.notes[0]


def test_regression_needs_significance_and_a_drop_above_the_allowed_one():
    base = scores([1.0] * 200)
    # 6 losses, no wins: p = 0.5**6 = 0.016 < 0.05, drop 0.03 > 0.02 -> blocked.
    cur = scores([0.0] * 6 + [1.0] * 194)
    [v] = judge_suite(cur, {}, {}, GatePolicy(), base)
    assert v.regressed and not v.passed
    assert v.comparison.p_value == pytest.approx(0.5**6)
    # The same drop with an allowed drop of 0.05 passes.
    [v] = judge_suite(cur, {}, {"m": 0.05}, GatePolicy(), base)
    assert v.passed
    # Per-metric allowance from the ini policy, when the suite sets none.
    [v] = judge_suite(cur, {}, {}, GatePolicy(max_drop_by_metric={"m": 0.05}), base)
    assert v.passed and v.allowed_drop == 0.05
    # Significant but tiny: 5 losses of 1000 (p=0.031, drop 0.005) passes.
    [v] = judge_suite(scores([0.0] * 5 + [1.0] * 995), {}, {}, GatePolicy(), scores([1.0] * 1000))
    assert v.comparison.p_value < 0.05 and v.passed


def test_improvements_never_block():
    [v] = judge_suite(scores([1.0] * 50), {}, {}, GatePolicy(), scores([0.0] * 50))
    assert v.passed and v.comparison.change == 1.0


def test_small_suite_says_it_cannot_see_the_allowed_drop():
    [v] = judge_suite(scores([1.0, 0.0] * 10), {}, {}, GatePolicy(), scores([0.0, 1.0] * 10))
    assert any("the suite is too small" in note for note in v.notes)


def test_holm_is_applied_across_the_suite_metrics_that_can_move():
    # a: 6 losses; b: 3 losses, 3 wins; c: never differs (cannot reject: not in the family).
    cur = {f"c{i}": {"a": 0.0 if i < 6 else 1.0, "b": 0.0 if i < 3 else 1.0, "c": 1.0} for i in range(100)}
    base = {f"c{i}": {"a": 1.0, "b": 1.0 if i < 97 else 0.0, "c": 1.0} for i in range(100)}
    a, b, c = judge_suite(cur, {}, {}, GatePolicy(), base)
    assert a.comparison.p_value == pytest.approx(0.5**6)
    assert a.p_adjusted == pytest.approx(min(1.0, 2 * a.comparison.p_value))  # Holm over {a, b}
    assert b.p_adjusted == pytest.approx(max(a.p_adjusted, b.comparison.p_value))
    assert c.p_adjusted is None
    assert a.regressed  # 0.031 < 0.05 after Holm


def test_non_inferiority_fails_when_the_bound_is_below_minus_the_allowed_drop():
    base = scores([1.0, 0.0] * 20)
    cur = scores([0.0, 1.0] * 20)  # same mean, maximally noisy pairs
    [default] = judge_suite(cur, {}, {}, GatePolicy(), base)
    [strict] = judge_suite(cur, {}, {}, GatePolicy(non_inferiority=True), base)
    assert default.passed and not strict.passed
    assert "non-inferiority" in strict.failures[0]


def test_no_pairs_skips_the_regression_check_with_a_note():
    [v] = judge_suite(scores([1.0]), {}, {}, GatePolicy(), {})
    assert v.passed and "no case pairs" in v.notes[0]
