"""Variant comparison (gate/comparison.py) and its statistics, without pytest runs:
verdicts, Holm across metrics and variants, power analysis, resources, gates."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats as sps

from pytest_llmeval.gate import stats
from pytest_llmeval.gate.comparison import (
    BETTER,
    NO_DIFFERENCE,
    WORSE,
    CaseFigures,
    ComparisonPolicy,
    RouteInfo,
    compare_variants,
    summarize_variant,
)

N = 400


def _binary_run(seed: int, *, extra_failures: int = 0, flip: float = 0.0, tokens: float = 100.0) -> dict[str, CaseFigures]:
    """400 cases, 85% pass; ``extra_failures`` passing cases made to fail; ``flip`` the
    chance a case's outcome flips (noise between variants)."""
    base = random.Random(1)
    truth = [base.random() < 0.85 for _ in range(N)]
    rng = random.Random(seed)
    out = {}
    failed = 0
    for i, ok in enumerate(truth):
        if rng.random() < flip:
            ok = not ok
        if ok and failed < extra_failures and i % 3 == 0:
            ok, failed = False, failed + 1
        out[f"c{i:03d}"] = CaseFigures({"correct": float(ok)}, latency_ms=100 + i % 7, cost=tokens * 1e-5,
                                       input_tokens=50, output_tokens=tokens)
    return out


def test_a_variant_six_points_worse_is_worse_with_small_p():
    cases = {"control": _binary_run(0), "worse": _binary_run(0, extra_failures=24)}
    (pair,) = compare_variants(cases, "control")
    (m,) = pair.metrics
    assert m.verdict == WORSE
    assert m.change == pytest.approx(-0.06)
    assert m.p_adjusted < 0.05 and m.p_value < 0.05
    assert m.ci_high < 0


def test_an_equal_variant_with_fewer_tokens_is_no_difference_and_cheaper_with_needed_n():
    control = _binary_run(0, flip=0.05)
    concise = _binary_run(7, flip=0.05, tokens=60.0)
    (pair,) = compare_variants({"control": control, "concise": concise}, "control", ComparisonPolicy(min_effect=0.02))
    (m,) = pair.metrics
    assert m.verdict == NO_DIFFERENCE
    assert m.cases_needed is not None and m.cases_needed > N  # a 2-point change needs more than 400 cases here
    assert m.mde > 0.02
    cost = next(r for r in pair.resources if r.name == "cost")
    assert cost.label == "cheaper" and cost.difference.relative == pytest.approx(-0.4)
    tokens = next(r for r in pair.resources if r.name == "output_tokens")
    assert tokens.label == "fewer output tokens"
    assert "cheaper" in pair.headline() and "no detectable difference" in pair.headline()
    assert f"{m.cases_needed} paired cases needed to detect a change of 0.02" in m.describe()


def test_cases_needed_is_consistent_with_the_reported_mde():
    control = _binary_run(0, flip=0.05)
    other = _binary_run(3, flip=0.05)
    policy = ComparisonPolicy(min_effect=0.03)
    (pair,) = compare_variants({"control": control, "b": other}, "control", policy)
    (m,) = pair.metrics
    # m.mde is at this n: the needed n for an effect equal to the MDE is about this n.
    level = policy.alpha / 2
    c = stats.compare_paired([x.scores["correct"] for _, x in sorted(control.items())],
                             [x.scores["correct"] for _, x in sorted(other.items())], alpha=level)
    assert m.mde == pytest.approx(c.mde)
    needed = stats.cases_needed(c.noise, m.mde, alpha=level, binary=True, loss_size=c.loss_size)
    assert abs(needed - N) <= 2


def test_better_is_detected_two_sided():
    cases = {"control": _binary_run(0, extra_failures=30), "fixed": _binary_run(0)}
    (pair,) = compare_variants(cases, "control")
    assert pair.metrics[0].verdict == BETTER and pair.metrics[0].change > 0


def test_holm_runs_across_metrics_and_variants():
    rng = random.Random(5)
    cases: dict[str, dict[str, CaseFigures]] = {}
    for variant, shift in (("control", 0.0), ("a", -0.02), ("b", 0.0)):
        cases[variant] = {f"c{i}": CaseFigures({"m1": min(1.0, max(0.0, 0.6 + shift + rng.gauss(0, 0.1))),
                                                "m2": min(1.0, max(0.0, 0.5 + rng.gauss(0, 0.1)))}) for i in range(200)}
    pairs = compare_variants(cases, "control")
    ps = [m.p_value for p in pairs for m in p.metrics]
    assert [m.p_adjusted for p in pairs for m in p.metrics] == pytest.approx(stats.holm(ps))
    assert all(m.p_adjusted >= m.p_value for p in pairs for m in p.metrics)


def test_two_sided_p_matches_scipy_for_continuous_metrics():
    rng = random.Random(2)
    control = {f"c{i}": CaseFigures({"s": rng.random()}) for i in range(60)}
    other = {k: CaseFigures({"s": min(1.0, max(0.0, v.scores["s"] + rng.gauss(0.03, 0.1)))}) for k, v in control.items()}
    (pair,) = compare_variants({"control": control, "v": other}, "control")
    ids = sorted(control)
    expected = sps.ttest_rel([other[i].scores["s"] for i in ids], [control[i].scores["s"] for i in ids]).pvalue
    assert pair.metrics[0].p_value == pytest.approx(expected)


def test_non_inferiority_gate_passes_within_the_margin_and_fails_beyond_it():
    cases = {"control": _binary_run(0), "same": _binary_run(0), "worse": _binary_run(0, extra_failures=40)}
    pairs = {p.variant: p for p in compare_variants(cases, "control", ComparisonPolicy(non_inferiority={"correct": 0.02}))}
    assert pairs["same"].passed and pairs["same"].gates[0].kind == "non_inferiority"
    assert not pairs["worse"].passed
    assert "not shown to be within 0.02 of control control" in pairs["worse"].gates[0].message


def test_a_gate_with_too_few_pairs_cannot_pass():
    cases = {"control": {"a": CaseFigures({"x": 1.0})}, "v": {"a": CaseFigures({"x": 1.0})}}
    (pair,) = compare_variants(cases, "control", ComparisonPolicy(non_inferiority={"x": 0.1}))
    assert not pair.passed and "needs at least 2" in pair.gates[0].message


def test_parity_gate_names_the_routed_model_and_its_share():
    route = RouteInfo("routing.secondary", "openai:gpt-4o-mini", 0.2)
    cases = {"primary": _binary_run(0), "secondary": _binary_run(0, extra_failures=40)}
    policy = ComparisonPolicy(parity_margin=0.03, routes={"secondary": route})
    (pair,) = compare_variants(cases, "primary", policy)
    assert not pair.passed
    assert pair.gates[0].kind == "parity"
    assert "openai:gpt-4o-mini (routing.secondary, 20% of traffic)" in pair.gates[0].message


def test_summary_gives_latency_cost_and_tokens():
    cases = {f"c{i}": CaseFigures({"x": 1.0}, latency_ms=float(i), cost=0.001 * i, input_tokens=10, output_tokens=i)
             for i in range(1, 101)}
    s = summarize_variant("control", cases, metrics=("y",))
    assert s.n == 100
    assert s.latency_mean_ms == pytest.approx(50.5) and s.latency_p50_ms == pytest.approx(50.5)
    assert s.latency_p95_ms == pytest.approx(95.05)
    assert s.cost_mean == pytest.approx(0.0505) and s.cost_p95 == pytest.approx(0.09505)
    assert s.output_tokens_mean == pytest.approx(50.5)
    assert s.metrics["x"].mean == 1.0 and s.metrics["y"].n == 0


def test_paired_difference_agrees_with_scipy():
    rng = random.Random(9)
    a = [rng.uniform(100, 200) for _ in range(50)]
    b = [x * 0.8 + rng.gauss(0, 5) for x in a]
    d = stats.paired_difference(a, b)
    assert d.p_value == pytest.approx(sps.ttest_rel(b, a).pvalue)
    assert d.ci_low < d.change < d.ci_high < 0
    assert stats.paired_difference([1.0, 1.0], [2.0, 2.0]).p_value == 0.0
    with pytest.raises(ValueError):
        stats.paired_difference([1.0], [math.nan])


def test_unknown_control_is_refused():
    with pytest.raises(ValueError, match="control variant 'nope'"):
        compare_variants({"a": {}, "b": {}}, "nope")


def test_no_difference_gives_false_verdicts_at_most_alpha_across_three_variants():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    try:
        from variant_calibration import false_verdict_rate
    finally:
        sys.path.pop(0)
    result = false_verdict_rate(trials=300, n=200, variants=3)
    assert result["false_rate"] <= result["limit"]
    assert result["false_better"] + result["false_worse"] > 0  # the test does reject sometimes: it is not inert
