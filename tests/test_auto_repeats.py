"""repeats="auto": the group-sequential design (boundaries against published values and
simulation) and real pytest runs that stop after one round when the evidence is clear and
never run more than the maximum number of rounds, serially and under -n 2."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pytest_llmeval.gate import sequential
from pytest_llmeval.gate.sequential import FUTILITY_Z, SequentialDesign, boundaries, crossing_probabilities, decide, half_round

# -- the design ----------------------------------------------------------------------------


def test_obrien_fleming_type_boundaries_match_the_published_values():
    # Lan-DeMets O'Brien-Fleming-type spending, 3 equally spaced looks, one-sided 0.025:
    # 3.7103, 2.5114, 1.9930 (e.g. gsDesign::sfLDOF; Jennison & Turnbull 2000, table 7.6 design).
    assert boundaries([1, 2, 3], 0.025, "obrien-fleming", 3) == pytest.approx([3.7103, 2.5114, 1.9930], abs=2e-4)


@pytest.mark.parametrize("looks, constant", [(2, 2.178), (3, 2.289), (4, 2.361), (5, 2.413)])
def test_the_recursion_reproduces_pococks_constants(looks, constant):
    # Pocock (1977) / Jennison & Turnbull table 2.1: two-sided 0.05 -> one-sided crossing 0.025.
    total = sum(crossing_probabilities(list(range(1, looks + 1)), [constant] * looks))
    assert total == pytest.approx(0.025, abs=3e-4)


@pytest.mark.parametrize("looks, constant", [(2, 1.977), (3, 2.004), (4, 2.024)])
def test_the_recursion_reproduces_obrien_flemings_constants(looks, constant):
    # O'Brien & Fleming (1979) / Jennison & Turnbull table 2.3: c_k = C_B(K) sqrt(K / k), two-sided 0.05.
    critical = [constant * math.sqrt(looks / k) for k in range(1, looks + 1)]
    assert sum(crossing_probabilities(list(range(1, looks + 1)), critical)) == pytest.approx(0.025, abs=3e-4)


@pytest.mark.parametrize("boundary", ["pocock", "obrien-fleming"])
@pytest.mark.parametrize("looks", [2, 3, 4])
def test_spending_boundaries_agree_with_scipys_multivariate_normal(boundary, looks):
    # An independent computation (Genz's algorithm in scipy): the chance of crossing first at
    # look k is the alpha the spending function gives look k, at alpha 0.05 and K = 2..4.
    from scipy.stats import multivariate_normal

    info = [1.0 + 0.6 * k for k in range(looks)]  # unequal information, as repeats give
    c = boundaries(info, 0.05, boundary, looks)
    cov = np.array([[math.sqrt(min(a, b) / max(a, b)) for b in info] for a in info])
    def below(k):  # P(Z_1 < c_1, ..., Z_k < c_k)
        return 1.0 if k == 0 else float(multivariate_normal.cdf(c[:k], np.zeros(k), cov[:k, :k], abseps=1e-8, releps=1e-8, rng=1))

    total = 0.0
    for k in range(1, looks + 1):
        first = below(k - 1) - below(k)  # P(Z_1 < c_1 .. Z_{k-1} < c_{k-1}, Z_k >= c_k)
        spent = sequential.spent(boundary, 0.05, k / looks) - sequential.spent(boundary, 0.05, (k - 1) / looks)
        assert first == pytest.approx(spent, abs=2e-5)
        total += first
    assert total == pytest.approx(0.05, abs=5e-5)


def test_half_rounds_spend_alpha_by_the_share_of_calls():
    design = SequentialDesign()  # the default: 5 looks, half rounds, at most 3 calls per case
    assert (design.max_rounds, design.rerun, design.boundary) == (5, "half", "pocock")
    assert design.times(5) == pytest.approx([1 / 3, 1 / 2, 2 / 3, 5 / 6, 1.0])
    assert SequentialDesign(3, "pocock", "all").times(3) == pytest.approx([1 / 3, 2 / 3, 1.0])
    # The first look spends what a 3-look design of whole rounds spends (same calls so far).
    first = sequential.next_level({"m": 0.02}, {}, 0.05, design, 1)[1]
    assert first == pytest.approx(sequential.spent("pocock", 0.05, 1 / 3))
    with pytest.raises(ValueError, match="spending times"):
        boundaries([1.0, 2.0], 0.05, "pocock", 3, times=[0.5, 0.4])


def test_half_rounds_hold_alpha_by_simulation():
    # Information of 5 looks of half rounds against a 3-repeat baseline grows about 1 : 1.3 : 1.6 : 1.8 : 2.
    design = SequentialDesign()
    info = [3.0, 3.9, 4.8, 5.4, 6.0]
    c = boundaries(info, 0.05, design.boundary, design.max_rounds, design.times(5))
    rng = np.random.default_rng(12)
    trials = 400_000
    increments = rng.standard_normal((trials, 5)) * np.sqrt(np.diff([0.0, *info]))
    z = np.cumsum(increments, axis=1) / np.sqrt(info)
    assert (z >= np.array(c)).any(axis=1).mean() == pytest.approx(0.05, abs=4 * math.sqrt(0.05 * 0.95 / trials))


def test_half_round_takes_the_halves_in_turn_whatever_the_input_order():
    ids = [f"q{i:02d}" for i in range(21)]
    first, second = half_round(ids, 2), half_round(ids, 3)
    assert len(first) == 11 and len(second) == 10 and sorted(first + second) == ids
    assert half_round(list(reversed(ids)), 2) == first and half_round(ids, 4) == first and half_round(ids, 5) == second
    assert first != ids[:11]  # hash order, not the dataset's (often grouped) order
    with pytest.raises(ValueError):
        half_round(ids, 1)


@pytest.mark.parametrize("boundary", ["pocock", "obrien-fleming"])
def test_spending_boundaries_hold_alpha_for_unequal_information_by_simulation(boundary):
    info = [3.0, 4.8, 6.0]  # re-running every case against a 3-repeat baseline: info grows 1 : 1.6 : 2
    c = boundaries(info, 0.05, boundary, 3)
    rng = np.random.default_rng(11)
    trials = 400_000
    increments = rng.standard_normal((trials, 3)) * np.sqrt(np.diff([0.0, *info]))
    z = np.cumsum(increments, axis=1) / np.sqrt(info)
    crossed = (z >= np.array(c)).any(axis=1).mean()
    assert crossed == pytest.approx(0.05, abs=4 * math.sqrt(0.05 * 0.95 / trials))
    spent = [sequential.spent(boundary, 0.05, k / 3) for k in (1, 2, 3)]
    firsts = crossing_probabilities(info, c)
    assert np.cumsum(firsts) == pytest.approx(spent, abs=1e-6)


@pytest.mark.parametrize("info", [[5.0, 5.0, 5.0], [5.0, 5.1, 8.0], [5.0, 5.0, 5.2]])
def test_little_or_no_new_information_keeps_the_level(info):
    # A look that adds (almost) nothing, e.g. deterministic cases, must not be a fresh chance to block.
    c = boundaries(info, 0.05, "pocock", 3)
    rng = np.random.default_rng(5)
    trials = 400_000
    increments = rng.standard_normal((trials, 3)) * np.sqrt(np.diff([0.0, *info]))
    z = np.cumsum(increments, axis=1) / np.sqrt(info)
    assert (z >= np.array(c)).any(axis=1).mean() <= 0.05 + 4 * math.sqrt(0.05 * 0.95 / trials)


def test_decisions():
    design = SequentialDesign(max_rounds=3)
    inconclusive = {"contains": (0.05, 0.02, 0.02)}
    assert decide(1, design, regressed=True, drops=inconclusive).stop
    assert decide(1, design, regressed=False, drops={"contains": (0.01, 0.02, 0.02)}).stop
    # The futility bound: a drop just within the allowed drop, by less than FUTILITY_Z standard
    # errors, can still turn out larger than allowed; a drop further within it stops.
    se = 0.02
    assert not decide(1, design, regressed=False, drops={"contains": (0.02 - 0.5 * FUTILITY_Z * se, 0.02, se)}).stop
    assert decide(1, design, regressed=False, drops={"contains": (0.02 - 1.5 * FUTILITY_Z * se, 0.02, se)}).stop
    assert decide(1, design, regressed=False, drops={"contains": (0.019, 0.02, math.nan)}).stop
    assert decide(1, design, regressed=False, drops={}).stop
    assert not decide(1, design, regressed=False, drops=inconclusive).stop
    assert not decide(2, design, regressed=False, drops=inconclusive).stop
    last = decide(3, design, regressed=False, drops=inconclusive)
    assert last.stop and "maximum of 3" in last.reason
    assert not decide(1, design, regressed=True, drops={}, update=True).stop  # blessing runs every round
    with pytest.raises(ValueError):
        SequentialDesign(max_rounds=0)
    with pytest.raises(ValueError):
        SequentialDesign(boundary="haybittle")


# -- real runs -----------------------------------------------------------------------------

ROWS = [{"id": f"q{i:02d}", "inputs": {"n": i}, "expected": "yes"} for i in range(20)]

APP = """
import os, pytest

DROP = int(os.environ.get("DROP", "0"))  # how many cases now fail for good
CALLS = {}

def app(n):
    CALLS[n] = CALLS.get(n, 0) + 1
    if n < DROP:
        return "no"
    if os.environ.get("FLAKY") and n % 4 == 3:  # these cases alternate between runs
        return "yes" if CALLS[n] % 2 else "no"
    return "yes"

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], repeats=REPEATS)
def test_support(llm_case, llm_eval):
    pass
"""


@pytest.fixture
def project(pytester, write_jsonl):
    write_jsonl("data.jsonl", ROWS)
    pytester.makepyfile(test_eval=APP.replace('REPEATS', "'auto'"))
    pytester.makeini("[pytest]\n")  # the default design: 5 looks, half rounds (at most 3 calls per case)
    return pytester


def run(pytester, monkeypatch, *args, drop=0, flaky=False):
    monkeypatch.setenv("DROP", str(drop))
    if flaky:
        monkeypatch.setenv("FLAKY", "1")
    else:
        monkeypatch.delenv("FLAKY", raising=False)
    result = pytester.runpytest(*args, "--llm-eval-report=r.json", "-p", "no:cacheprovider")
    report = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    (suite,) = report["suites"]
    return result, suite


def rounds_note(suite) -> str:
    (note,) = [n for n in suite["notes"] if n.startswith("repeats auto:")]
    return note


@pytest.mark.parametrize("xdist", [["-p", "no:xdist"], ["-n", "2"]])
def test_clear_evidence_stops_after_one_round(project, monkeypatch, xdist):
    result, suite = run(project, monkeypatch, "--llm-eval-update", *xdist)
    assert result.ret == 0
    assert len(suite["cases"]) == 3 * 20  # blessing runs every round: 4 half rounds, 3 repeats per case in the baseline
    stored = json.loads((project.path / ".llm-eval/test_eval.py/test_support.json").read_text())
    assert {len(case["scores"]["contains"]) for case in stored["cases"].values()} == {3}

    # Unchanged app: no drop at all, so one round and a pass.
    result, suite = run(project, monkeypatch, "--llm-eval", *xdist)
    assert result.ret == 0
    assert len(suite["cases"]) == 20
    assert "1 round(s) of at most 5" in rounds_note(suite) and "every drop is within the allowed drop" in rounds_note(suite)
    result.stdout.fnmatch_lines(["*note: repeats auto: 1 round(s) of at most 5*0 case run(s) after the first round*"
                                 "stopped: every drop is within the allowed drop*"])

    # Half the cases broken: a clear block after one round.
    result, suite = run(project, monkeypatch, "--llm-eval", *xdist, drop=10)
    assert result.ret == 1
    assert len(suite["cases"]) == 20
    assert suite["verdict"] == "fail"
    assert "1 round(s) of at most 5" in rounds_note(suite) and "stopped: a significant drop" in rounds_note(suite)
    result.stdout.fnmatch_lines(["*contains regressed: significant drop of 0.500*",
                                 "*note: repeats auto: 1 round(s) of at most 5*stopped: a significant drop*"])


@pytest.mark.parametrize("xdist", [["-p", "no:xdist"], ["-n", "2"]])
def test_inconclusive_evidence_never_exceeds_the_maximum_rounds(project, monkeypatch, xdist):
    run(project, monkeypatch, "--llm-eval-update", "-p", "no:xdist")
    # Two cases of 20 fail for good: a 10-point drop, more than allowed but not significant
    # with 20 cases, and more rounds cannot change that. The design stops at its maximum,
    # each further round re-running half of the cases, the halves in turn.
    result, suite = run(project, monkeypatch, "--llm-eval", *xdist, drop=2)
    # Rounds 2-5 ran the first half, the second, the first, the second: 3 runs of every case.
    assert len(suite["cases"]) == 20 + 4 * 10
    ids = sorted(row["id"] for row in ROWS)
    assert {k: sorted(c["case_id"] for c in suite["cases"] if c["repeat"] == k) for k in (0, 1, 2)} == {0: ids, 1: ids, 2: ids}
    note = rounds_note(suite)
    assert "5 round(s) of at most 5" in note and "maximum of 5 round(s) reached" in note and "nominal level" in note
    assert "re-running half the cases a round; 40 case run(s) after the first round" in note
    assert suite["verdict"] == "pass" and result.ret == 0  # not significant: no block, and it says why
    (metric,) = suite["metrics"]
    assert metric["p_value"] > 0.05
    result.stdout.fnmatch_lines(["*note: repeats auto: 5 round(s) of at most 5 (pocock boundaries, re-running half the cases a "
                                 "round; 40 case run(s) after the first round); stopped: maximum of 5 round(s) reached*"])


def test_a_half_round_runs_the_half_its_number_picks(project, monkeypatch):
    project.makeini("[pytest]\nllm_eval_auto_max_rounds = 2\n")
    run(project, monkeypatch, "--llm-eval-update", "-p", "no:xdist")
    ids = sorted(row["id"] for row in ROWS)
    stored = json.loads((project.path / ".llm-eval/test_eval.py/test_support.json").read_text())
    assert sorted(c for c, case in stored["cases"].items() if len(case["scores"]["contains"]) == 2) == half_round(ids, 2)
    result, suite = run(project, monkeypatch, "--llm-eval", "-p", "no:xdist", drop=2)
    assert sorted(c["case_id"] for c in suite["cases"] if c["repeat"] == 1) == half_round(ids, 2)
    assert len(suite["cases"]) == 30
    assert "2 round(s) of at most 2 (pocock boundaries, re-running half the cases a round; 10 case run(s)" in rounds_note(suite)


def test_rounds_of_every_case_on_request(project, monkeypatch):
    project.makeini("[pytest]\nllm_eval_auto_max_rounds = 3\nllm_eval_auto_rerun = all\n")
    run(project, monkeypatch, "--llm-eval-update", "-p", "no:xdist")
    result, suite = run(project, monkeypatch, "--llm-eval", "-p", "no:xdist", drop=2)
    assert sorted(c["repeat"] for c in suite["cases"]) == [0] * 20 + [1] * 20 + [2] * 20
    assert "3 round(s) of at most 3 (pocock boundaries, re-running every case; 40 case run(s)" in rounds_note(suite)


def test_flaky_rerun_runs_only_the_cases_the_baseline_marks_flaky(project, monkeypatch):
    project.makeini("[pytest]\nllm_eval_auto_max_rounds = 3\nllm_eval_auto_rerun = flaky\n")
    run(project, monkeypatch, "--llm-eval-update", "-p", "no:xdist", flaky=True)
    stored = json.loads((project.path / ".llm-eval/test_eval.py/test_support.json").read_text())
    flaky = sorted(c for c, case in stored["cases"].items() if len(set(case["scores"]["contains"])) > 1)
    assert flaky == ["q03", "q07", "q11", "q15", "q19"]
    # Four cases broken (q03 among them): an 12-point drop, not significant after round 1.
    result, suite = run(project, monkeypatch, "--llm-eval", "-p", "no:xdist", drop=4, flaky=True)
    note = rounds_note(suite)
    rounds = int(note.split("repeats auto: ")[1].split(" round")[0])
    assert rounds >= 2 and "re-running baseline-flaky cases" in note
    extra = sorted({case["case_id"] for case in suite["cases"] if case["repeat"] > 0})
    assert extra == flaky
    assert len(suite["cases"]) == 20 + (rounds - 1) * len(flaky)


def test_the_command_line_turns_auto_on_for_suites_with_a_target(pytester, write_jsonl, monkeypatch):
    write_jsonl("data.jsonl", ROWS)
    pytester.makepyfile(test_eval=APP.replace('REPEATS', '1'))
    result, suite = run(pytester, monkeypatch, "--llm-eval", "--llm-eval-repeats", "auto")
    assert result.ret == 0
    assert "stopped: nothing to compare with a baseline" in rounds_note(suite)
    bad = pytester.runpytest("--llm-eval", "--llm-eval-repeats", "twice")
    assert "expected a positive integer or auto" in bad.stderr.str()


def test_auto_on_a_marker_without_target_is_a_collection_error(pytester, write_jsonl):
    write_jsonl("data.jsonl", ROWS)
    pytester.makepyfile(test_eval="""
        import pytest
        @pytest.mark.llm_eval(dataset="data.jsonl", scorers=["contains"], repeats="auto")
        def test_support(llm_case, llm_eval):
            llm_eval.score("yes")
        """)
    result = pytester.runpytest("--llm-eval")
    result.stdout.fnmatch_lines(["*repeats='auto' needs target=*"])
    assert result.ret != 0
