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
    # In dataset order -x stops at case 1 before case 3's KeyboardInterrupt reaches pytest;
    # pytest-randomly's order could let it through and interrupt this (host) process.
    stopped = pytester.runpytest("--llm-eval-update", "-x", "-p", "no:randomly")
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


EVERY_SCORER_APP = """
import pytest
from pytest_llmeval.scorers.registry import builtin_scorers

ANSWERS = {
    0: "The capital of France is Paris, a city of about two million people",
    1: '{"city": "Madrid", "country": "Spain", "population": 3.3}',
    2: "Rome 2753 years old, the eternal city on seven hills",
    3: "Berlin, 3.7 million, capital since reunification in 1990",
    4: "Lisbon sits on the Tagus; it has roughly 545000 inhabitants",
    5: "Vienna on the Danube, home of 1.9 million residents",
    6: "I think the answer is Warsaw with 1.8 million people",
}

def app(question, n):
    return ANSWERS[n % 7] + " " + " ".join(["word"] * (n % 5))

SCORERS = ["exact_match", "contains", "not_contains", ("regex", {"pattern": "[0-9]+"}), "numeric", "json_valid",
           ("json_schema", {"schema": {"type": "object", "required": ["city"]}}), "token_f1", "rouge_l", "bleu",
           "levenshtein", "context_overlap", "question_overlap", ("judge:correctness", {"samples": 3}),
           "judge:faithfulness", "judge:relevance"]
# The test covers every built-in scorer: a new one must be added here.
assert {s if isinstance(s, str) else s[0] for s in SCORERS} == {s.name for s in builtin_scorers()}

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=SCORERS)
def test_every_scorer(llm_case, llm_eval):
    pass
"""


def fractional_judge(request: dict) -> str:
    """A deterministic judge whose scores are floats with no short decimal form (1 + 4 * k / 7)."""
    import json as _json

    answer = request["messages"][-1]["content"].rsplit("ANSWER:\n", 1)[-1]
    return _json.dumps({"score": 1 + 4 * (len(answer) % 7) / 7, "reason": "length class"})


@pytest.mark.parametrize("dist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_identical_rerun_compares_equal_for_every_builtin_scorer(pytester, write_jsonl, monkeypatch, dist):
    """Baselines store scores rounded to 6 decimals; the rerun's raw floats go through the
    same quantisation before the comparison, so nothing can regress, even with max_drop 0."""
    from pytest_llmeval.testing import LoopbackLLMServer

    server = LoopbackLLMServer(fractional_judge).start()
    try:
        monkeypatch.setenv("LLM_EVAL_JUDGE_BASE_URL", server.base_url)
        pytester.makeini("[pytest]\nllm_eval_judge_model = gpt-4o-mini\nllm_eval_max_drop = 0\n")
        write_jsonl("data.jsonl", [
            {"id": f"c{i:02d}", "inputs": {"question": f"what is the capital number {i} and its population", "n": i},
             "expected": ["Paris 2", "Madrid 3.3", "Rome 2753", "Berlin 3.7", "Lisbon 545000", "Vienna 1.9", "Warsaw 1.8"][i % 7],
             "context": "Capitals of Europe: Paris, Madrid, Rome, Berlin, Lisbon, Vienna and Warsaw, with populations"}
            for i in range(40)
        ])
        pytester.makepyfile(test_eval=EVERY_SCORER_APP)
        assert pytester.runpytest("--llm-eval-update", *dist).ret == 0
        result = pytester.runpytest("--llm-eval", "--llm-eval-report=report.json", *dist)
    finally:
        server.stop()
    assert result.ret == 0, result.stdout.str()
    report = json.loads((pytester.path / "report.json").read_text())
    (suite,) = report["suites"]
    metrics = {m["name"]: m for m in suite["metrics"]}
    assert len(metrics) == 16
    for name, m in metrics.items():
        assert (m["n_paired"], m["change"], m["p_value"], m["regressed"], m["verdict"]) == (40, 0.0, 1.0, False, "pass"), name
    # The check is not vacuous: raw scores of this run differ from the stored (rounded) ones.
    stored = json.loads((pytester.path / ".llm-eval/test_eval.py/test_every_scorer.json").read_text())["cases"]
    raw = {(c["case_id"], k): v for c in suite["cases"] for k, v in c["scores"].items()}
    assert any(v != stored[case]["scores"][k][0] for (case, k), v in raw.items())


CONSTANT_DROP_APP = """
import os, pytest

@pytest.mark.llm_eval(dataset="data.jsonl", thresholds={"quality": 0.33})
def test_support(llm_case, llm_eval):
    # every case loses exactly the same amount: the paired t statistic has no variance
    llm_eval.record("quality", (llm_case.inputs["n"] % 4) / 4 * 0.8 + 0.1 - float(os.environ.get("SHIFT", "0")))
"""


@pytest.mark.parametrize("dist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_degenerate_statistics_say_insufficient_evidence_everywhere(pytester, write_jsonl, monkeypatch, dist):
    write_jsonl("data.jsonl", rows(20))
    pytester.makepyfile(test_eval=CONSTANT_DROP_APP)
    pytester.makeini("[pytest]\nllm_eval_max_drop = 0\n")
    assert pytester.runpytest("--llm-eval-update", *dist).ret == 0
    monkeypatch.setenv("SHIFT", "0.05")
    result = pytester.runpytest("--llm-eval", "--junitxml=junit.xml", "--llm-eval-report=report.json",
                                "--llm-eval-markdown=summary.md", *dist)
    assert result.ret == 0, result.stdout.str()
    reason = "all 20 paired differences are equal (-0.05): the paired t-test has no variance to judge"
    result.stdout.fnmatch_lines([
        "*quality*paired-t*pass*",
        f"*note: quality: insufficient evidence for the regression test ({reason}); "
        "the regression check passes, thresholds still apply*",
    ])
    assert "insufficient" in next(line for line in result.stdout.lines if line.strip().startswith("quality "))
    (metric,) = json.loads((pytester.path / "report.json").read_text())["suites"][0]["metrics"]
    assert metric["insufficient_evidence"] == reason and metric["regressed"] is False and metric["p_value"] == 1.0
    assert metric["change"] == pytest.approx(-0.05)
    markdown = (pytester.path / "summary.md").read_text()
    assert "| insufficient evidence | ✅ pass |" in markdown
    assert f"- quality: insufficient evidence for the regression test ({reason})" in markdown
    gate = junit_cases(pytester.path / "junit.xml")["llm_eval_gate[quality]"]
    assert gate["properties"]["llm_eval.evidence"] == f"insufficient: {reason}"
    # Thresholds still apply to such a metric.
    monkeypatch.setenv("SHIFT", "0.1")
    assert pytester.runpytest("--llm-eval", *dist).ret == 1
