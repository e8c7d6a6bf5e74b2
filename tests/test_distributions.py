"""The gate's pure-Python distribution functions against scipy.stats (relative 1e-9), and
proof that a full eval run with a baseline never imports scipy or numpy."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from conftest import junit_cases
from scipy import stats as sps

from pytest_llmeval.gate import distributions as D
from pytest_llmeval.providers.accounting import _percentiles

RTOL = 1e-9
DFS = [*range(1, 41), 49, 50, 75, 99, 100, 199, 200, 499, 1000, 4999, 10_000, 49_999]
QS = [1e-12, 1e-8, 1e-5, 1e-3, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.45, 0.5, 0.55, 0.8, 0.9, 0.95, 0.975, 0.99, 0.999, 1 - 1e-6]
TS = [-1e4, -200.0, -40.0, -10.0, -5.0, -3.0, -2.0, -1.5, -1.0, -0.5, -0.1, 0.0, 0.3, 1.0, 2.0, 4.0, 9.0, 50.0]


def close(ours: float, reference: float) -> bool:
    return math.isclose(ours, float(reference), rel_tol=RTOL, abs_tol=1e-300)


@pytest.mark.parametrize("df", DFS)
def test_t_quantiles_match_scipy(df):
    bad = [(q, D.t_ppf(q, df), sps.t.ppf(q, df)) for q in QS if not close(D.t_ppf(q, df), sps.t.ppf(q, df))]
    assert not bad


@pytest.mark.parametrize("df", DFS)
def test_t_cdf_and_sf_match_scipy(df):
    bad = [(t, D.t_cdf(t, df), sps.t.cdf(t, df)) for t in TS if not close(D.t_cdf(t, df), sps.t.cdf(t, df))]
    bad += [(t, D.t_sf(t, df), sps.t.sf(t, df)) for t in TS if not close(D.t_sf(t, df), sps.t.sf(t, df))]
    assert not bad


def test_t_cdf_near_zero_is_exact_for_the_cauchy_case():
    # df = 1 is the Cauchy distribution: cdf(t) = 1/2 + atan(t)/pi exactly.
    for t in (1e-6, -1e-6, 0.01, -3.0):
        assert D.t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, rel=1e-14)


def test_large_df_uses_the_rare_path_and_still_agrees():
    assert close(D.t_ppf(0.975, 10**6), sps.t.ppf(0.975, 10**6))
    assert close(D.t_cdf(-1.7, 10**6), sps.t.cdf(-1.7, 10**6))


@pytest.mark.parametrize("q", QS)
def test_normal_quantile_and_cdf_match_scipy(q):
    assert close(D.norm_ppf(q), sps.norm.ppf(q))
    x = sps.norm.ppf(q)
    assert close(D.norm_cdf(x), sps.norm.cdf(x))


def test_exact_binomial_tail_matches_scipy():
    rng = random.Random(18)
    bad = []
    for n in [*range(0, 80), 100, 199, 200, 201, 500, 1000, 5000, 9999, 10_000, 20_001]:
        for k in {0, 1, 2, n // 2, n // 2 + 1, n - 1, n, n + 1, *(rng.randint(0, n) for _ in range(8))}:
            reference = 1.0 if k <= 0 else sps.binom.sf(k - 1, n, 0.5)
            if not close(D.binom_sf_half(k, n), reference):
                bad.append((k, n, D.binom_sf_half(k, n), reference))
    assert not bad
    assert D.binom_sf_half(5, 5) == 0.5**5  # five losses, no wins: the McNemar floor


def test_binomial_tail_is_the_mcnemar_p_value_scipy_gives():
    for losses, wins in [(5, 0), (12, 4), (30, 29), (0, 7), (60, 0)]:
        reference = sps.binomtest(losses, losses + wins, 0.5, alternative="greater").pvalue
        assert close(D.binom_sf_half(losses, losses + wins), reference)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 37, 200, 1000])
@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_wilson_interval_matches_scipy(n, confidence):
    for k in range(0, n + 1, max(1, n // 25)):
        ci = sps.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
        low, high = D.wilson_interval(k, n, confidence)
        assert close(low, ci.low) and close(high, ci.high), (k, n, confidence)


def test_bad_arguments_raise():
    for call in (lambda: D.t_ppf(0.0, 5), lambda: D.t_ppf(0.5, 0), lambda: D.norm_ppf(1.0),
                 lambda: D.binom_sf_half(1, -1), lambda: D.wilson_interval(3, 2, 0.95)):
        with pytest.raises(ValueError):
            call()


def test_latency_percentiles_match_numpy():
    rng = random.Random(7)
    for n in [1, 2, 3, 10, 101]:
        values = [rng.expovariate(1 / 300) for _ in range(n)]
        np.testing.assert_allclose(_percentiles(values, (50, 95, 99)), np.percentile(values, [50, 95, 99]), rtol=1e-12)


def test_an_eval_run_with_a_baseline_imports_neither_scipy_nor_numpy(pytester, write_jsonl, monkeypatch):
    """The whole gate (Wilson CI, McNemar, paired t, MDE, usage percentiles) without the
    seconds a scipy.stats import costs; serially and under -n 2."""
    write_jsonl("data.jsonl", [{"id": f"q{i:03d}", "inputs": {"n": i}, "expected": "yes"} for i in range(40)])
    pytester.makeconftest(
        """
        import sys
        def pytest_unconfigure(config):
            if not hasattr(config, "workerinput"):
                print("HEAVY-MODULES:", sorted({m.split(".")[0] for m in sys.modules} & {"scipy", "numpy"}))
        """
    )
    pytester.makepyfile(test_eval="""
        import os, pytest
        SHIFT = int(os.environ.get("SHIFT", "0"))
        def app(n):
            return "no" if (n + SHIFT) % 7 == 0 else "yes"
        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], thresholds={"contains": 0.5})
        def test_support(llm_case, llm_eval):
            llm_eval.record("quality", ((llm_case.inputs["n"] + SHIFT) % 10) / 10)
        """)
    pytester.runpytest_subprocess("--llm-eval", "--llm-eval-update", "-p", "no:xdist").assert_outcomes(passed=42)
    monkeypatch.setenv("SHIFT", "1")
    for extra in (["-p", "no:xdist"], ["-n", "2"]):
        # pytest-randomly (a dev dependency) imports numpy itself, to reseed it: this run checks ours.
        result = pytester.runpytest_subprocess("--llm-eval", "-s", "--junitxml=out.xml", "-p", "no:randomly", *extra)
        result.stdout.fnmatch_lines(["HEAVY-MODULES: []"])
        gates = [case["properties"] for case in junit_cases(pytester.path / "out.xml").values()
                 if "llm_eval.test" in case["properties"]]
        assert sorted(props["llm_eval.test"] for props in gates) == ["mcnemar-exact", "paired-t"]
        for props in gates:
            assert 0.0 < float(props["llm_eval.p_value"]) <= 1.0
            assert float(props["llm_eval.ci_low"]) < float(props["llm_eval.mean"]) < float(props["llm_eval.ci_high"])
