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


# --------------------------------------------------------------------------- degenerate statistics

def test_constant_continuous_drop_is_insufficient_evidence_not_a_block():
    """All differences equal: the t statistic has no variance. Before, p was 0 and this blocked."""
    base = scores([0.5, 0.75, 0.25, 0.5] * 5)
    cur = scores([0.45, 0.7, 0.2, 0.45] * 5)
    [v] = judge_suite(cur, {"m": 0.9}, {"m": 0.0}, GatePolicy(), base)
    assert not v.regressed and v.insufficient.startswith("all 20 paired differences are equal (-0.05)")
    assert v.comparison.p_value == 1.0
    assert any(n.startswith("m: insufficient evidence for the regression test (all 20 paired") and
               n.endswith("the regression check passes, thresholds still apply") for n in v.notes)
    # ... thresholds still apply
    assert v.threshold_failed and not v.passed and v.failures[0].startswith("m 0.450 < 0.9")
    # Insufficient comparisons stay out of the Holm family.
    assert v.p_adjusted is None


@pytest.mark.parametrize("non_inferiority", [False, True])
def test_one_pair_is_insufficient_evidence_in_both_modes(non_inferiority):
    [v] = judge_suite(scores([0.0]), {}, {"m": 0.0}, GatePolicy(non_inferiority=non_inferiority), scores([1.0]))
    assert v.passed and not v.regressed and v.insufficient == "only one paired case"


def test_non_inferiority_without_variance_is_insufficient_evidence():
    """Every pair concordant: the t bound has width 0, which claims a certainty no sample
    gives; it was 'pass' for no change and 'block' for an equal drop of every case."""
    [v] = judge_suite(scores([1.0] * 30), {}, {}, GatePolicy(non_inferiority=True), scores([1.0] * 30))
    assert v.passed and v.insufficient == "the differences have no variance: no confidence bound"
    [v] = judge_suite(scores([0.5] * 30), {}, {}, GatePolicy(non_inferiority=True), scores([0.6] * 30))
    assert v.passed and "paired differences are equal" in v.insufficient


def test_exact_mcnemar_is_never_insufficient_with_two_pairs_or_more():
    # 8 losses of 8: exact p = 0.5**8, no variance is estimated: a real block.
    [v] = judge_suite(scores([0.0] * 8), {}, {}, GatePolicy(), scores([1.0] * 8))
    assert v.regressed and v.insufficient == "" and v.comparison.p_value == pytest.approx(0.5**8)


# Hypothesis: small inputs through every path (exact McNemar, paired t, clustered repeats,
# non-inferiority); p in [0, 1], no NaN in a decision, never a block when the per-case
# scores are identical.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pytest_llmeval.gate.baseline import quantise  # noqa: E402
from pytest_llmeval.gate.stats import compare_paired, non_inferiority_lower_bound  # noqa: E402

binary_score = st.sampled_from([0.0, 1.0])
continuous_score = st.floats(0.0, 1.0, allow_nan=False)
small = {"min_size": 1, "max_size": 12}


def _pairs(score):
    return st.lists(st.tuples(score, score), **small)


def _repeat_means(score):
    """Per-case means of 1-4 repeats, averaged as the run does (quantised repeats)."""
    repeats = st.lists(score, min_size=1, max_size=4).map(lambda r: sum(map(quantise, r)) / len(r))
    return st.lists(st.tuples(repeats, repeats), **small)


PATHS = {
    "mcnemar": _pairs(binary_score),
    "paired-t": _pairs(continuous_score),
    "repeats": _repeat_means(binary_score),
    "repeats-continuous": _repeat_means(continuous_score),
}


def _check(pairs, non_inferiority, max_drop):
    base = scores([b for b, _ in pairs])
    cur = scores([c for _, c in pairs])
    policy = GatePolicy(non_inferiority=non_inferiority)
    [v] = judge_suite(cur, {}, {"m": max_drop}, policy, base)
    c = v.comparison
    assert 0.0 <= c.p_value <= 1.0
    assert v.p_adjusted is None or 0.0 <= v.p_adjusted <= 1.0
    if c.n >= 2:
        for value in (c.change, c.ci_low, c.ci_high, c.se, c.mde, c.mde_test):
            assert value == value, c  # no NaN once there are two pairs
        assert c.mde > 0
    if v.regressed:
        assert not v.insufficient and c.n >= 2
        assert non_inferiority or (c.p_value < policy.alpha and -c.change > max_drop)
        if non_inferiority:
            assert non_inferiority_lower_bound(c) <= -max_drop
    return v


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("non_inferiority", [False, True], ids=["test", "non-inferiority"])
def test_property_every_path_gives_a_probability_and_blocks_only_on_evidence(path, non_inferiority):
    @settings(max_examples=150, deadline=None)
    @given(PATHS[path], st.sampled_from([0.0, 0.02]))
    def run(pairs, max_drop):
        _check(pairs, non_inferiority, max_drop)

    run()


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("non_inferiority", [False, True], ids=["test", "non-inferiority"])
def test_property_identical_per_case_scores_never_block(path, non_inferiority):
    @settings(max_examples=100, deadline=None)
    @given(PATHS[path], st.sampled_from([0.0, 0.02]))
    def run(pairs, max_drop):
        same = [(b, b) for b, _ in pairs]
        v = _check(same, non_inferiority, max_drop)
        assert not v.regressed and v.passed
        assert v.comparison.change == 0.0 and v.comparison.p_value == 1.0

    run()


@settings(max_examples=200, deadline=None)
@given(st.lists(continuous_score, min_size=2, max_size=12), st.floats(-0.5, 0.5, allow_nan=False))
def test_property_equal_differences_are_insufficient_never_p_zero(base, shift):
    cur = [min(max(b + shift, 0.0), 1.0) for b in base]
    c = compare_paired(base, cur)
    diffs = {cb - bb for bb, cb in zip(base, cur)}
    if len(diffs) == 1 and c.test == "paired-t":
        assert c.insufficient and c.p_value == 1.0
