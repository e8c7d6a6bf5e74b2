"""Human review: each flag reason, the review file, and what a review changes in a run."""

from __future__ import annotations

import json

import pytest

from pytest_llmeval.core.review import ReviewError, ReviewFile, cut_text, flag_cases, output_similarity
from pytest_llmeval.models import CaseResult, SuiteSpec
from pytest_llmeval.testing import LoopbackLLMServer

SPEC = SuiteSpec("t.py::test_s", "d.jsonl", "sha256:0", 1)


def result(case_id: str, scores: dict, *, repeat: int = 0, output: str | None = "an answer", reasons: dict | None = None,
           notes: tuple[str, ...] = (), outcome: str = "passed") -> CaseResult:
    return CaseResult(SPEC, case_id, "h" + case_id, repeat, outcome, scores, output=output, reasons=reasons or {}, review_notes=notes)


def reasons_of(flags: dict) -> dict[str, list[str]]:
    return {case_id: [f.reason for f in found] for case_id, found in flags.items()}


def test_flaky_repeats_are_flagged_and_steady_ones_are_not():
    results = [result("a", {"m": 1.0}, repeat=0), result("a", {"m": 0.0}, repeat=1), result("b", {"m": 1.0}, repeat=0),
               result("b", {"m": 1.0}, repeat=1)]
    flags = flag_cases(results, {}, {}, {})
    assert reasons_of(flags) == {"a": ["flaky"]}
    assert flags["a"][0].detail == "repeats disagree: m 1, 0"


def test_judge_near_its_threshold_is_flagged():
    judged = {"judge:correctness": "partly right"}
    results = [result("near", {"judge:correctness": 0.75}, reasons=judged), result("far", {"judge:correctness": 0.25}, reasons=judged),
               result("not-a-judge", {"overlap": 0.75})]
    flags = flag_cases(results, {"judge:correctness": 0.8, "overlap": 0.8}, {}, {})
    assert reasons_of(flags) == {"near": ["judge_borderline"]}
    assert "judge judge:correctness 0.75 is within 0.1 of its threshold 0.8" in flags["near"][0].detail
    # a per-case minimum is the line that decides the case, when the marker sets one
    assert reasons_of(flag_cases(results[1:2], {"judge:correctness": 0.8}, {"judge:correctness": 0.3}, {})) == {"far": ["judge_borderline"]}


def test_notes_from_scorers_and_the_test_body_become_flags():
    results = [result("a", {"m": 1.0}, notes=("judge_retry: judge:correctness answered unparsably 1 time(s)",)),
               result("b", {"m": 1.0}, notes=("manual: tone",)), result("c", {"m": 1.0}, notes=("look at this",))]
    flags = flag_cases(results, {}, {}, {})
    assert [(f.reason, f.detail) for c in "abc" for f in flags[c]] == [
        ("judge_retry", "judge:correctness answered unparsably 1 time(s)"), ("manual", "tone"), ("manual", "look at this")]


def test_a_large_change_against_the_baseline_output_is_flagged():
    before = "Open Settings, choose Account, then Reset password and confirm by email."
    results = [result("same", {"m": 1.0}, output=before.replace("confirm", "verify")),
               result("changed", {"m": 1.0}, output="I cannot help with that request, sorry."),
               result("new", {"m": 1.0}, output="anything")]
    flags = flag_cases(results, {}, {}, {"same": before, "changed": before})
    assert reasons_of(flags) == {"changed": ["output_changed"]}
    assert "similar to the baseline's" in flags["changed"][0].detail


def test_output_similarity_compares_cut_texts_over_what_both_kept():
    long = "word " * 400
    assert output_similarity(cut_text(long, 100), long) == 1.0
    assert output_similarity("a b c d", "a b c d") == 1.0 and output_similarity("a b", "c d") == 0.0


def test_a_judge_and_a_check_that_disagree_are_flagged():
    why = {"judge:correctness": "misses the point"}
    results = [result("split", {"contains": 1.0, "judge:correctness": 0.25}, reasons=why),
               result("agree", {"contains": 1.0, "judge:correctness": 1.0}, reasons=why),
               result("no-line", {"contains": 1.0, "rouge_l": 0.1}),
               result("two-checks", {"contains": 0.0, "non_empty": 1.0})]  # a wrong answer, not a question
    flags = flag_cases(results, {"judge:correctness": 0.7}, {}, {})
    assert reasons_of(flags) == {"split": ["scorer_disagreement"]}
    assert flags["split"][0].detail == "passes on contains 1.00 but fails on judge:correctness 0.25"


@pytest.mark.parametrize(("line", "message"), [
    ("not json", ":2: not JSON"),
    ('["a"]', ":2: expected a JSON object, got list"),
    ('{"suite": "s", "case": "c", "hash": "h"}', ":2: field 'verdict': required"),
    ('{"suite": "s", "case": "c", "hash": "h", "verdict": "maybe"}', ":2: field 'verdict': 'maybe' is not one of pass, fail"),
    ('{"suite": "s", "case": "c", "hash": "h", "verdict": "pass", "score": 1}', ":2: field 'score': unknown field"),
    ('{"suite": "s", "case": "c", "hash": "h", "verdict": "pass", "note": 3}', ":2: field 'note': must be a string"),
])
def test_a_bad_review_line_names_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "reviews.jsonl"
    path.write_text('{"suite": "s", "case": "ok", "hash": "h", "verdict": "pass"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ReviewError, match=str(path).replace(".", r"\.") + message):
        ReviewFile(path)


def test_the_last_decision_for_a_case_wins_and_a_missing_file_is_empty(tmp_path):
    path = tmp_path / "reviews.jsonl"
    assert len(ReviewFile(path)) == 0
    path.write_text("# decisions\n"
                    '{"suite": "s", "case": "c", "hash": "h", "verdict": "fail", "note": "wrong"}\n'
                    '{"suite": "s", "case": "c", "hash": "h", "verdict": "pass", "note": "fine after all", "reviewer": "ana"}\n')
    review = ReviewFile(path).get("s", "c")
    assert (review.verdict, review.note, review.reviewer, review.line) == ("pass", "fine after all", "ana", 3)


# -- through pytest ----------------------------------------------------------------------

APP = """
import pytest

ANSWERS = {"a": "The refund takes 14 days.", "b": "Please contact support.", "c": "14 days, by card."}

def app(key):
    return ANSWERS[key]

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], case_thresholds={"contains": 1.0})
def test_refunds(llm_case, llm_eval):
    if llm_case.id == "c":
        llm_eval.flag_for_review("mentions the card")
"""


@pytest.fixture
def refunds(pytester, write_jsonl):
    write_jsonl("data.jsonl", [{"id": k, "inputs": {"key": k}, "expected": "14 days"} for k in "abc"])
    pytester.makepyfile(test_eval=APP)
    return pytester


def case_hash(pytester, case_id: str) -> str:
    report = json.loads((pytester.path / "r.json").read_text())
    return next(c["content_hash"] for c in report["suites"][0]["cases"] if c["case_id"] == case_id)


def write_reviews(pytester, *lines: dict) -> None:
    (pytester.path / ".llm-eval").mkdir(exist_ok=True)
    (pytester.path / ".llm-eval" / "reviews.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_flag_for_review_and_a_review_file_show_in_summary_and_report(refunds):
    first = refunds.runpytest("--llm-eval", "--llm-eval-report=r.json")
    first.assert_outcomes(failed=1, passed=3 - 1 + 1)  # case b is below its case minimum; one gate passes
    first.stdout.fnmatch_lines(["*review: 1 case(s) flagged for a person (manual 1): c"])
    suite = json.loads((refunds.path / "r.json").read_text())["suites"][0]
    assert suite["review"] == [{"case_id": "c", "content_hash": case_hash(refunds, "c"), "human": None,
                                "flags": [{"reason": "manual", "detail": "mentions the card"}]}]

    write_reviews(refunds, {"suite": "test_eval.py::test_refunds", "case": "b", "hash": case_hash(refunds, "b"), "verdict": "pass",
                            "note": "asking support is right here"},
                  {"suite": "test_eval.py::test_refunds", "case": "a", "hash": "0ld0ld0ld0ld", "verdict": "fail", "note": "old row"})
    second = refunds.runpytest("--llm-eval", "--llm-eval-report=r.json")
    second.assert_outcomes(failed=1, passed=3)  # shown, not applied: no override asked for
    second.stdout.fnmatch_lines(["*reviewed by a person: 1 case(s) (pass 1); 1 review(s) stale (the case changed since): a"])
    review = {e["case_id"]: e for e in json.loads((refunds.path / "r.json").read_text())["suites"][0]["review"]}
    assert review["b"]["human"] == {"verdict": "pass", "note": "asking support is right here", "reviewer": None, "at": None,
                                    "content_hash": case_hash(refunds, "b"), "applies": True}
    assert review["a"]["human"]["applies"] is False and review["a"]["flags"] == []


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_with_override_a_reviewer_verdict_decides_the_case(refunds, xdist):
    refunds.runpytest("--llm-eval", "--llm-eval-report=r.json")
    suite_id = "test_eval.py::test_refunds"
    write_reviews(refunds, {"suite": suite_id, "case": "b", "hash": case_hash(refunds, "b"), "verdict": "pass", "note": "fine"},
                  {"suite": suite_id, "case": "a", "hash": case_hash(refunds, "a"), "verdict": "fail", "note": "too curt"})
    result = refunds.runpytest("--llm-eval", "--llm-eval-review-override", "-rf", *xdist)
    result.assert_outcomes(failed=1, passed=3)
    result.stdout.fnmatch_lines(["a reviewer marked this case fail (reviews.jsonl:2): too curt", "*reviewed by a person: 2 case(s) (fail 1, pass 1)",
                                 "FAILED test_eval.py::test_refunds?a? - *"])


def test_an_unreadable_review_file_stops_the_run_before_any_case(refunds):
    write_reviews(refunds, {"suite": "s", "case": "c", "hash": "h", "verdict": "unsure"})
    result = refunds.runpytest("--llm-eval")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*reviews.jsonl:1: field 'verdict': 'unsure' is not one of pass, fail"])


def test_a_judge_answer_parsed_only_on_retry_flags_the_case(pytester, write_jsonl, monkeypatch):
    asked: dict[str, int] = {}

    def judge(request: dict) -> str:
        answer = request["messages"][-1]["content"].split("ANSWER:\n")[1]
        asked[answer] = asked.get(answer, 0) + 1
        if answer == "ROME" and asked[answer] == 1:
            return "Looks fine to me."
        return json.dumps({"score": 5, "reason": "right"})

    with LoopbackLLMServer(judge) as server:
        monkeypatch.setenv("LLM_EVAL_JUDGE_BASE_URL", server.base_url)
        pytester.makeini("[pytest]\nllm_eval_judge_model = gpt-4o-mini\n")
        write_jsonl("data.jsonl", [{"id": "it", "inputs": {"question": "capital of Italy"}, "expected": "Rome"},
                                   {"id": "fr", "inputs": {"question": "capital of France"}, "expected": "Paris"}])
        pytester.makepyfile(test_eval="""
import pytest

@pytest.mark.llm_eval(dataset="data.jsonl", target=lambda question: "ROME" if "Italy" in question else "PARIS",
                      scorers=["judge:correctness"])
def test_capitals(llm_case, llm_eval):
    pass
""")
        result = pytester.runpytest("--llm-eval", "--llm-eval-report=r.json")
    assert result.ret == 0 and asked == {"ROME": 2, "PARIS": 1}
    [entry] = json.loads((pytester.path / "r.json").read_text())["suites"][0]["review"]
    assert entry["case_id"] == "it" and [f["reason"] for f in entry["flags"]] == ["judge_retry"]
    assert "'Looks fine to me.'" in entry["flags"][0]["detail"]
