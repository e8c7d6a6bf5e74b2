"""The stored baseline and the paired regression gate, through real pytest runs."""

from __future__ import annotations

import json

import pytest
from conftest import junit_cases

# A noisy app: per case, 75% always right, 5% always wrong, 20% a coin flip per run
# (seeded by APP_SEED), so two runs of the unchanged app disagree on ~10% of cases.
# Whether one given pair of unchanged runs passes is itself chance (the gate blocks about
# alpha of them; tests/test_calibration.py measures that): seeds 1 and 3 are such a pair.
# APP_DROP plants a true drop: that share of right answers turns wrong.
NOISY_APP = """
import collections, os, random, pytest

CALLS = collections.Counter()

def app(n):
    seed, drop = os.environ.get("APP_SEED", "0"), float(os.environ.get("APP_DROP", "0"))
    CALLS[n] += 1  # repeats of a case are independent draws
    kind = n % 20
    ok = kind < 15 or (kind > 15 and random.Random(f"{seed}-{n}-{CALLS[n]}").random() < 0.5)
    if ok and random.Random(f"drop-{n}").random() < drop / 0.85:
        ok = False
    return "yes" if ok else "no"

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"])
def test_support(llm_case, llm_eval):
    pass
"""
BASELINE = ".llm-eval/test_eval.py/test_support.json"


def rows(n: int) -> list[dict]:
    return [{"id": f"q{i:04d}", "inputs": {"n": i}, "expected": "yes"} for i in range(n)]


@pytest.fixture
def noisy(pytester, write_jsonl, monkeypatch):
    write_jsonl("data.jsonl", rows(300))
    pytester.makepyfile(test_eval=NOISY_APP)

    def run(*args: str, seed: int = 0, drop: float = 0.0):
        monkeypatch.setenv("APP_SEED", str(seed))
        monkeypatch.setenv("APP_DROP", str(drop))
        return pytester.runpytest(*args)

    return run


def baseline_cases(pytester) -> dict:
    return json.loads((pytester.path / BASELINE).read_text())["cases"]


def test_update_then_unchanged_noisy_app_passes_and_planted_drop_fails(pytester, noisy):
    blessed = noisy("--llm-eval-update", seed=1)
    assert blessed.ret == 0
    blessed.stdout.fnmatch_lines([f"*baseline written: {BASELINE} (300 case(s) from this run)*"])
    before = (pytester.path / BASELINE).read_text().splitlines()

    unchanged = noisy("--llm-eval", seed=3)
    assert unchanged.ret == 0
    unchanged.stdout.fnmatch_lines(["*300 case(s), 300 paired with the baseline  PASS", "*contains*mcnemar-exact*pass*"])

    dropped = noisy("--llm-eval", "--junitxml=junit.xml", seed=3, drop=0.10)
    assert dropped.ret == 1
    dropped.stdout.fnmatch_lines([
        "*contains regressed: significant drop of 0.1* > allowed 0.02*",
        "*contains vs baseline: 0.8* -> 0.7*, change -0.1* (95% CI -0.* to -0.*), mcnemar-exact one-sided p=*, n paired=300, minimum detectable drop 0.0* at 80% power; allowed drop 0.02*",
    ])
    dropped.stdout.fnmatch_lines(["*contains*0.8*-0.1*mcnemar-exact*fail*"])
    gate = junit_cases(pytester.path / "junit.xml")["llm_eval_gate[contains]"]
    assert "contains regressed" in gate["failure"]
    props = gate["properties"]
    assert float(props["llm_eval.p_value"]) < 0.001
    assert props["llm_eval.test"] == "mcnemar-exact"
    assert props["llm_eval.n_paired"] == "300"
    assert float(props["llm_eval.change"]) < -0.05
    assert 0 < float(props["llm_eval.mde"]) < 0.1

    reblessed = noisy("--llm-eval-update", seed=3, drop=0.10)
    assert reblessed.ret == 0
    after = (pytester.path / BASELINE).read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after)
    # Only the provenance line and the lines of cases whose score changed differ.
    assert all('"provenance"' in a or '"scores"' in a for a, _ in changed)
    case_lines = [b for a, b in changed if '"scores"' in a]
    assert 30 < len(case_lines) < 120
    assert noisy("--llm-eval", seed=3, drop=0.10).ret == 0


def test_rewriting_an_unchanged_baseline_keeps_its_bytes(pytester, noisy):
    assert noisy("--llm-eval-update", seed=1).ret == 0
    first = (pytester.path / BASELINE).read_bytes()
    again = noisy("--llm-eval-update", seed=1)
    again.stdout.fnmatch_lines([f"*baseline unchanged: {BASELINE}*"])
    assert (pytester.path / BASELINE).read_bytes() == first


def test_xdist_gives_the_same_p_values(pytester, noisy):
    assert noisy("--llm-eval-update", seed=1).ret == 0
    serial = noisy("--llm-eval", "--junitxml=serial.xml", seed=2, drop=0.05)
    dist = noisy("--llm-eval", "-n", "2", "--junitxml=dist.xml", seed=2, drop=0.05)
    assert serial.ret == dist.ret
    a = junit_cases(pytester.path / "serial.xml")["llm_eval_gate[contains]"]
    b = junit_cases(pytester.path / "dist.xml")["llm_eval_gate[contains]"]
    assert a["properties"] == b["properties"]
    assert "llm_eval.p_value" in a["properties"]


def test_narrowed_update_touches_only_the_cases_that_ran(pytester, noisy, write_jsonl):
    assert noisy("--llm-eval-update", seed=1).ret == 0
    full = baseline_cases(pytester)
    partial = noisy("--llm-eval-update", "-k", "q0001 or q0002", seed=1, drop=1.0)
    assert partial.ret == 0
    partial.stdout.fnmatch_lines(["*2 case(s) from this run, others kept*"])
    updated = baseline_cases(pytester)
    assert set(updated) == set(full)
    assert {c for c in full if full[c] != updated[c]} == {"q0001", "q0002"}
    assert updated["q0002"]["scores"]["contains"] == [0.0]

    # Rows removed from the dataset are pruned by a full run only.
    write_jsonl("data.jsonl", rows(250))
    assert noisy("--llm-eval-update", "-k", "q0001", seed=1).ret == 0
    assert len(baseline_cases(pytester)) == 300
    assert noisy("--llm-eval-update", seed=1).ret == 0
    assert len(baseline_cases(pytester)) == 250


def test_interrupted_runs_write_no_baseline_and_run_no_gate(pytester, write_jsonl):
    write_jsonl("data.jsonl", rows(10))
    pytester.makepyfile(test_eval="""
        import pytest

        def app(n):
            if n == 3:
                raise KeyboardInterrupt
            return "yes"

        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], thresholds={"contains": 0.5})
        def test_support(llm_case, llm_eval):
            assert llm_case.inputs["n"] != 1
    """)
    stopped = pytester.runpytest("--llm-eval-update", "-x")
    stopped.stdout.fnmatch_lines(["*llm-eval: run incomplete*", "*stopping after 1 failures*it wrote no baseline or log*no verdict is final*"])
    stopped.stdout.no_fnmatch_line("*llm_eval_gate*")
    assert not (pytester.path / ".llm-eval").exists()

    interrupted = pytester.runpytest_subprocess("--llm-eval-update", "-p", "no:xdist")  # Ctrl-C would stop an in-process run's host too
    assert interrupted.ret == pytest.ExitCode.INTERRUPTED
    assert not (pytester.path / ".llm-eval").exists()


def test_corrupt_baseline_is_an_error_not_a_missing_one(pytester, noisy):
    assert noisy("--llm-eval-update", seed=1).ret == 0
    path = pytester.path / BASELINE
    path.write_text(path.read_text()[:200])
    result = noisy("--llm-eval", seed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*{BASELINE}:*corrupt baseline (not JSON*restore it from version control or delete it*"])
    result.stdout.fnmatch_lines(["FAILED test_eval.py::test_support::llm_eval_gate[[]baseline[]]*"])
    # Update mode refuses to overwrite it too: the file is left as it was.
    truncated = path.read_text()
    assert noisy("--llm-eval-update", seed=1).ret == 1
    assert path.read_text() == truncated


def test_missing_baseline_is_reported_and_thresholds_still_apply(pytester, write_jsonl):
    write_jsonl("data.jsonl", rows(20))
    pytester.makepyfile(test_eval=NOISY_APP.replace('scorers=["contains"]', 'scorers=["contains"], thresholds={"contains": 0.99}'))
    result = pytester.runpytest("--llm-eval")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*no baseline at .llm-eval/test_eval.py/test_support.json: regression check skipped*"])


def test_changed_new_and_missing_cases_are_reported(pytester, noisy, write_jsonl):
    assert noisy("--llm-eval-update", seed=1).ret == 0
    changed = rows(300)[5:] + [{"id": "new-1", "inputs": {"n": 1}, "expected": "yes"}]
    changed[0]["expected"] = "y"  # q0005 content changed
    write_jsonl("data.jsonl", changed)
    result = noisy("--llm-eval", seed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*294 paired with the baseline*",
        "*dataset changed since the baseline*",
        "*1 case(s) new since the baseline: new-1*",
        "*5 case(s) in the baseline but not in this run: q0000, q0001, q0002, q0003, q0004*",
        "*1 case(s) changed content since the baseline (not compared): q0005*",
    ])


def test_repeats_are_averaged_per_case_and_flaky_cases_labelled(pytester, noisy):
    result = noisy("--llm-eval-update", "--llm-eval-repeats", "3", "--junitxml=junit.xml", seed=1)
    assert result.ret == 0
    result.assert_outcomes(passed=900 + 1)
    result.stdout.fnmatch_lines(["*300 case(s) x 3 repeats*", "*flaky case(s) (repeats disagree): q0017*"])
    cases = baseline_cases(pytester)
    assert len(cases) == 300 and all(len(c["scores"]["contains"]) == 3 for c in cases.values())
    props = junit_cases(pytester.path / "junit.xml")
    assert props["test_support[q0016-r2]"]["properties"]["llm_eval.repeat"] == "2"
    assert "q0017" in props["llm_eval_gate[contains]"]["properties"]["llm_eval.flaky_cases"]
    # Averaged repeats are not binary: the paired t-test runs, over 300 cases, not 900 rows.
    compared = noisy("--llm-eval", "--llm-eval-repeats", "3", "--junitxml=junit2.xml", seed=2)
    gate = junit_cases(pytester.path / "junit2.xml")["llm_eval_gate[contains]"]["properties"]
    assert gate["llm_eval.test"] == "paired-t" and gate["llm_eval.n_paired"] == "300"
    assert compared.ret == 0


def test_non_inferiority_mode_is_stricter_on_a_small_suite(pytester, noisy, write_jsonl):
    write_jsonl("data.jsonl", rows(40))
    assert noisy("--llm-eval-update", seed=1).ret == 0
    assert noisy("--llm-eval", seed=1).ret == 0
    strict = noisy("--llm-eval", "--llm-eval-non-inferiority", seed=2)
    assert strict.ret == 1
    strict.stdout.fnmatch_lines(["*lower 95% bound of the change * is not above -0.02 (non-inferiority)*"])


def test_holm_adjusts_across_the_metrics_of_a_suite(pytester, write_jsonl, monkeypatch):
    write_jsonl("data.jsonl", rows(300))
    pytester.makepyfile(test_eval=NOISY_APP.replace('scorers=["contains"]', 'scorers=["contains", "json_valid", ("regex", {"pattern": "y"})]'))
    monkeypatch.setenv("APP_SEED", "1")
    assert pytester.runpytest("--llm-eval-update").ret == 0
    monkeypatch.setenv("APP_DROP", "0.03")
    pytester.runpytest("--llm-eval", "--junitxml=junit.xml")
    props = junit_cases(pytester.path / "junit.xml")["llm_eval_gate[contains]"]["properties"]
    # contains and regex move together; json_valid is 0 on both sides (no discordant pair,
    # it cannot reject), so it is left out of the Holm family: two tests, not three.
    assert float(props["llm_eval.p_holm"]) == pytest.approx(min(1.0, 2 * float(props["llm_eval.p_value"])))
