"""A/B variants through real pytest runs against the loopback server: every case under
every variant, paired verdicts in terminal, report, Markdown and junit, identical numbers
serially and under -n 2, -k selection, the variant's model reaching the plugin's client,
cache keys per variant, and the gates that may name a variant."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from conftest import junit_cases

from pytest_llmeval.prompts import prompt_version
from pytest_llmeval.testing import LoopbackLLMServer

N = 400
PROMPTS = {"support": "Answer: {question}", "support_worse": "Worse: {question}", "support_concise": "Concise: {question}"}

APP = """
import os, pytest
from pytest_llmeval.prompts import render
from pytest_llmeval.providers import ChatClient

client = ChatClient(base_url=os.environ["LOOPBACK_BASE_URL"], model="gpt-4o-mini", timeout=10)

def app(question, prompt="support"):
    return client.complete(render(prompt, question=question))

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], min_effect=0.02,
                      variants={variants}{extra})
def test_support(llm_case, llm_eval):
    pass
"""
VARIANTS = '{"control": {"prompt": "support"}, "worse": {"prompt": "support_worse"}, "concise": {"prompt": "support_concise"}}'


def _uniform(*parts: object) -> float:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:12], 16) / 16**12


def seeded_answer(request: dict) -> str:
    """Case i is right with probability 0.85; each prompt flips 3% of cases its own way;
    the worse prompt also gets 8.5% of the cases wrong (6 points at n=400); the concise one answers with 6 words
    instead of 10 (40% fewer output tokens)."""
    text = request["messages"][-1]["content"]
    kind, _, question = text.partition(": ")
    i = int(question.split()[-1])
    right = _uniform("truth", i) < 0.85
    if _uniform("flip", kind, i) < 0.03:
        right = not right
    if kind == "Worse" and _uniform("worse", i) < 0.085:
        right = False
    words = 6 if kind == "Concise" else 10
    return " ".join(["yes" if right else "no"] + ["word"] * (words - 1))


@pytest.fixture
def server(monkeypatch):
    with LoopbackLLMServer(seeded_answer) as running:
        monkeypatch.setenv("LOOPBACK_BASE_URL", running.base_url)
        yield running


@pytest.fixture
def ab_project(pytester, write_jsonl):
    def make(n: int = N, variants: str = VARIANTS, extra: str = "") -> None:
        write_jsonl("data.jsonl", [{"id": f"q{i:03d}", "inputs": {"question": f"question {i}"}, "expected": "yes"} for i in range(n)])
        for name, template in PROMPTS.items():
            (pytester.path / "prompts").mkdir(exist_ok=True)
            (pytester.path / "prompts" / f"{name}.txt").write_text(template, encoding="utf-8")
        pytester.makepyfile(test_ab=APP.format(variants=variants, extra=extra))

    return make


def _report(pytester, *args):
    path = pytester.path / "ab-report.json"
    result = pytester.runpytest("--llm-eval", f"--llm-eval-report={path}", "--llm-eval-markdown=ab.md",
                                "--junitxml=junit.xml", *args)
    return result, json.loads(path.read_text(encoding="utf-8"))


def _variant(report: dict, name: str) -> dict:
    return next(s for s in report["suites"] if s["variant"] == name)


def _numbers(suites: list) -> list:
    """What must not depend on how the run was split: per variant its verdicts, metric
    means and CIs, the summary's quality, cost and tokens, the comparison's numbers and
    verdicts, and every case's scores (not wall-clock latency, not retry counts)."""
    def comparison(c):
        if c is None:
            return None
        return {"metrics": c["metrics"], "gates": c["gates"],
                "resources": [{k: v for k, v in r.items()} for r in c["resources"] if r["name"] != "latency_ms"]}
    return [{"suite_id": s["suite_id"], "verdict": s["verdict"], "metrics": s["metrics"], "models": s["models"],
             "summary": {k: v for k, v in (s["summary"] or {}).items() if "latency" not in k},
             "comparison": comparison(s["comparison"]),
             "cases": sorted((c["case_id"], c["repeat"], c["variant"], c["scores"], c["outcome"]) for c in s["cases"])}
            for s in suites]


def test_worse_and_cheaper_variants_get_paired_verdicts_everywhere(pytester, ab_project, server):
    ab_project()
    result, report = _report(pytester)
    # every case under every variant, ids ending in the variant; a passing gate per comparison
    result.assert_outcomes(passed=3 * N + 3 + 2)
    assert server.requests == 3 * N
    assert report["schema_version"] == 2

    worse = _variant(report, "worse")
    assert worse["suite_id"] == "test_ab.py::test_support@worse" and worse["variant_of"] == "test_ab.py::test_support"
    (m,) = worse["comparison"]["metrics"]
    assert m["verdict"] == "worse" and m["p_adjusted"] < 0.05
    assert m["change"] == pytest.approx(-0.06) and m["p_value"] < 0.01

    concise = _variant(report, "concise")
    (m,) = concise["comparison"]["metrics"]
    assert m["verdict"] == "no detectable difference"
    assert m["cases_needed"] > N and m["min_effect"] == 0.02
    cost = next(r for r in concise["comparison"]["resources"] if r["name"] == "cost")
    assert cost["label"] == "cheaper" and cost["change"] < 0
    tokens = next(r for r in concise["comparison"]["resources"] if r["name"] == "output_tokens")
    assert tokens["relative"] == pytest.approx(-0.4)
    assert concise["summary"]["output_tokens_mean"] == pytest.approx(6.0)
    assert _variant(report, "control")["summary"]["output_tokens_mean"] == pytest.approx(10.0)
    assert _variant(report, "control")["comparison"] is None
    assert concise["prompts"] == {"support_concise": [prompt_version(PROMPTS["support_concise"])]}

    needed = m["cases_needed"]
    result.stdout.fnmatch_lines([
        "*test_ab.py::test_support  variants (control control, baseline gate on control)  PASS",
        "*worse vs control*contains*-0.0*worse*",
        f"*concise vs control*contains*no detectable difference (MDE * at n=400; {needed} paired cases needed to detect a change of 0.02*",
        "*concise vs control: cheaper: $* -> $* per case (-40%)*",
    ])
    markdown = (pytester.path / "ab.md").read_text(encoding="utf-8")
    assert "| worse vs control | contains |" in markdown and "worse" in markdown
    assert f"{needed} paired cases needed" in markdown and "cheaper" in markdown
    cases = junit_cases(pytester.path / "junit.xml")
    gate = cases["llm_eval_gate[concise-vs-control]"]
    assert gate["failure"] is None
    assert gate["properties"]["llm_eval.contains.verdict"] == "no detectable difference"
    assert gate["properties"]["llm_eval.contains.cases_needed"] == str(needed)
    assert cases["llm_eval_gate[worse-vs-control]"]["properties"]["llm_eval.contains.verdict"] == "worse"
    assert "test_support[q007-concise]" in cases


def test_the_same_numbers_serially_and_under_xdist(pytester, ab_project, server):
    ab_project(n=120)
    _, serial = _report(pytester, "-p", "no:xdist")
    result, distributed = _report(pytester, "-n", "2")
    result.assert_outcomes(passed=3 * 120 + 3 + 2)
    assert _numbers(distributed["suites"]) == _numbers(serial["suites"])


def test_k_selects_one_variant_and_the_comparison_says_what_did_not_run(pytester, ab_project, server):
    ab_project(n=20)
    result = pytester.runpytest("--llm-eval", "-k", "concise or control")
    assert server.requests == 40
    result.stdout.fnmatch_lines(["*note: variant(s) worse did not run (deselected?): not compared*"])


def test_a_variant_model_reaches_the_plugins_client_and_the_cache_keeps_variants_apart(pytester, write_jsonl, server):
    write_jsonl("data.jsonl", [{"id": f"q{i}", "inputs": {"question": f"question {i}"}, "expected": "yes"} for i in range(6)])
    server.answer = lambda request: "yes " + request["model"]
    pytester.makepyfile(test_ab="""
        import os, pytest
        from pytest_llmeval.providers import ChatClient

        client = ChatClient(base_url=os.environ["LOOPBACK_BASE_URL"], model="gpt-4o")

        def app(question):
            return client.complete(question)

        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"],
                              variants={"control": {}, "small": {"model": "gpt-4o-mini"}, "again": {"model": "gpt-4o-mini"}})
        def test_models(llm_case, llm_eval):
            assert llm_eval.output.endswith(llm_eval.variant.model or "gpt-4o")
        """)
    path = pytester.path / "r.json"
    result = pytester.runpytest("--llm-eval", "--llm-eval-cache", "readwrite", f"--llm-eval-report={path}")
    result.assert_outcomes(passed=18 + 3 + 2)
    report = json.loads(path.read_text())
    assert {s["variant"]: s["models"] for s in report["suites"]} == {
        "control": ["openai:gpt-4o"], "small": ["openai:gpt-4o-mini"], "again": ["openai:gpt-4o-mini"]}
    assert server.requests == 18  # "again" asks what "small" asks, but under its own cache key
    pytester.runpytest("--llm-eval", "--llm-eval-cache", "strict").assert_outcomes(passed=23)
    assert server.requests == 18


def test_a_model_setting_that_never_reaches_the_app_fails_the_comparison(pytester, write_jsonl, server):
    write_jsonl("data.jsonl", [{"id": f"q{i}", "inputs": {"question": "q"}, "expected": "yes"} for i in range(4)])
    pytester.makepyfile(test_ab="""
        import pytest

        def app(question):
            return "yes"  # calls no model through the plugin's clients

        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"],
                              variants={"control": {}, "big": {"model": "gpt-4o"}})
        def test_models(llm_case, llm_eval):
            pass
        """)
    result = pytester.runpytest("--llm-eval")
    result.assert_outcomes(passed=8 + 2, failed=1)
    result.stdout.fnmatch_lines(["*variant big sets model gpt-4o, but its cases called no model*cannot be judged*"])


def test_target_kwargs_and_the_recorder_carry_the_variant(pytester, write_jsonl):
    write_jsonl("data.jsonl", [{"id": f"q{i}", "inputs": {"n": i}, "expected": "x"} for i in range(3)])
    pytester.makepyfile(test_ab="""
        import pytest

        def app(n, style="plain"):
            return f"{style}:{n}"

        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["exact_match"],
                              variants={"control": {"style": "plain"}, "fancy": {"style": "fancy"}})
        def test_kwargs(llm_case, llm_eval):
            assert llm_eval.output == f"{llm_eval.variant.settings['style']}:{llm_case.inputs['n']}"
            assert llm_case.variant == llm_eval.variant.name
        """)
    result = pytester.runpytest("--llm-eval", "-v")
    result.assert_outcomes(passed=6 + 2 + 1)
    for line in ("*test_kwargs?q0-control? PASSED*", "*test_kwargs?q0-fancy? PASSED*"):
        result.stdout.fnmatch_lines([line])  # each on its own: pytest-randomly may run them in any order


@pytest.mark.parametrize("variants, message", [
    ('{"control": {"temperatur": 0.2}, "b": {}}', "variant 'control': setting 'temperatur' would change nothing"),
    ('{"control": {}}', "needs at least two variants"),
    ('{"control": {"prompt": "nope"}, "b": {}}', "prompt 'nope': unknown prompt 'nope'"),
    ('{"control": {"prompt": "support@v9"}, "b": {}}', "the registry's support is version"),
    ('{"control": {"model": object()}, "b": {}}', "must be a JSON value"),
    ('{"control": {}, "b": {}}, control="c"', "control='c' is not a variant"),
])
def test_bad_variants_fail_collection_naming_the_setting(pytester, ab_project, variants, message, monkeypatch):
    monkeypatch.setenv("LOOPBACK_BASE_URL", "http://127.0.0.1:9/v1")  # never called: collection fails first
    ab_project(n=3, variants=variants)
    result = pytester.runpytest("--llm-eval")
    assert result.ret != 0
    assert message in result.stdout.str()


def test_non_inferiority_gate_fails_a_variant_worse_than_control(pytester, ab_project, server):
    ab_project(extra=', non_inferiority={"contains": 0.02}')
    result, report = _report(pytester)
    result.assert_outcomes(passed=3 * N + 3 + 1, failed=1)
    gates = _variant(report, "worse")["comparison"]["gates"]
    assert [g["verdict"] for g in gates] == ["fail"]
    assert _variant(report, "worse")["verdict"] == "fail"
    cases = junit_cases(pytester.path / "junit.xml")
    assert "not shown to be within 0.02 of control control" in cases["llm_eval_gate[worse-vs-control]"]["failure"]


def test_the_baseline_gate_applies_to_the_named_variant_only(pytester, ab_project, server):
    ab_project(n=60, extra=', baseline_variant="concise"')
    result = pytester.runpytest("--llm-eval", "--llm-eval-update")
    result.stdout.fnmatch_lines(["*test_ab.py::test_support@concise*", "*baseline written: *"])
    baseline = pytester.path / ".llm-eval" / "test_ab.py" / "test_support.json"
    assert "support_concise" in baseline.read_text() and "support_worse" not in baseline.read_text()
    result = pytester.runpytest("--llm-eval")
    out = result.stdout.str()
    assert re.search(r"test_support@concise .*60 paired with the baseline", out)
    assert not re.search(r"test_support@worse .*paired with the baseline", out)


def test_sharded_variant_runs_merge_to_the_unsplit_comparison(pytester, ab_project, server, monkeypatch):
    from pytest_llmeval.cli import main as llm_eval_main

    ab_project(n=90)
    _, whole = _report(pytester, "-p", "no:xdist")
    for i in (1, 2):
        shard = pytester.runpytest("--llm-eval", f"--llm-eval-shard={i}/2", f"--llm-eval-report=shard{i}.json")
        assert shard.ret == 0
    monkeypatch.chdir(pytester.path)
    assert llm_eval_main(["merge", "shard1.json", "shard2.json", "-o", "merged.json"]) == 0
    merged = json.loads((pytester.path / "merged.json").read_text())
    assert [s["suite_id"] for s in merged["suites"]] == [s["suite_id"] for s in whole["suites"]]
    assert _numbers(merged["suites"]) == _numbers(whole["suites"])


def test_a_variants_file_applies_to_suites_without_variants(pytester, write_jsonl):
    write_jsonl("data.jsonl", [{"id": f"q{i}", "inputs": {"n": i}, "expected": "x"} for i in range(4)])
    (pytester.path / "variants.yaml").write_text("control: {style: plain}\nshouty: {style: SHOUT}\n")
    pytester.makeini("[pytest]\nllm_eval_variants = variants.yaml\n")
    pytester.makepyfile(test_ab="""
        import pytest

        def app(n, style):
            return style

        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["exact_match"])
        def test_file(llm_case, llm_eval):
            pass
        """)
    result = pytester.runpytest("--llm-eval", "-v")
    result.assert_outcomes(passed=8 + 2 + 1)
    result.stdout.fnmatch_lines(["*test_file?q3-shouty? PASSED*", "*shouty vs control*exact_match*"])
    (pytester.path / "variants.yaml").write_text("control: {style: plain}\nshouty: [1, 2]\n")
    result = pytester.runpytest("--llm-eval")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*variants.yaml:2: variant 'shouty': settings must be a mapping, got ?1, 2?*"])


def test_a_prompt_setting_the_app_ignores_fails_the_comparison(pytester, ab_project, monkeypatch):
    ab_project(n=4)
    pytester.makepyfile(test_ab="""
        import pytest
        from pytest_llmeval.prompts import render

        def app(question, prompt="support"):
            return "yes " + render("support", question=question)  # ignores the variant's prompt

        @pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"],
                              variants={"control": {"prompt": "support"}, "concise": {"prompt": "support_concise"}})
        def test_support(llm_case, llm_eval):
            pass
        """)
    result = pytester.runpytest("--llm-eval")
    result.assert_outcomes(passed=8 + 2, failed=1)
    result.stdout.fnmatch_lines(["*variant concise sets prompt support_concise, but its cases rendered support*"])
