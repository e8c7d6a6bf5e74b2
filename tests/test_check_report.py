"""llm-eval-check against real reports, and the canary decision.

One real eval project is run once per module (a pytest subprocess, with the plugin's
ChatClient calling the loopback LLM server as anthropic:claude-sonnet-4, openai:gpt-4o and
openai:gpt-4o-mini on a 500-row golden dataset). Reports that should not ship are
copies of that report with one thing changed, validated against the report schema
before they are checked.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import sys
import xml.etree.ElementTree as ET
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_check_config import FULL, FULL_DATA, SEED, _mutate, _paths, _values

from pytest_llmeval.check import check_loaded, parse_config
from pytest_llmeval.check.canary import CanaryPolicy, cases_needed, decide, render_canary_junit
from pytest_llmeval.check.cli import main
from pytest_llmeval.check.findings import render_text
from pytest_llmeval.prompts import prompt_version
from pytest_llmeval.reporting.report import ReportError, validate
from pytest_llmeval.testing import LoopbackLLMServer

N_CASES = 500
TEMPLATE = "Answer briefly: {question}"
CLAUDE, GPT4O, MINI = "test_golden.py::test_claude", "test_golden.py::test_gpt4o", "test_golden.py::test_mini"

PROJECT = '''
import os
import pytest
from pytest_llmeval.prompts import render
from pytest_llmeval.providers import ChatClient

URL = os.environ["LOOPBACK_URL"]
CLIENTS = {
    "claude": ChatClient(provider="anthropic", model="claude-sonnet-4", base_url=URL + "/v1", api_key_env="NO_KEY"),
    "gpt4o": ChatClient(provider="openai", model="gpt-4o", base_url=URL + "/v1", api_key_env="NO_KEY"),
    "mini": ChatClient(provider="openai", model="gpt-4o-mini", base_url=URL + "/v1", api_key_env="NO_KEY"),
}
SCORERS = [("contains", {"name": "correctness"}), ("regex", {"pattern": "grounded", "name": "faithfulness"}),
           ("regex", {"pattern": r"\\w", "name": "relevance"})]
THRESHOLDS = {"correctness": 0.85, "faithfulness": 0.90, "relevance": 0.80}


def target(key):
    def app(question):
        return CLIENTS[key].complete(render("support", question=question))
    return app


@pytest.mark.llm_eval(dataset="evals/golden-v3.jsonl", target=target("claude"), scorers=SCORERS, thresholds=THRESHOLDS)
def test_claude(llm_case, llm_eval):
    pass


@pytest.mark.llm_eval(dataset="evals/golden-v3.jsonl", target=target("gpt4o"), scorers=SCORERS, thresholds=THRESHOLDS)
def test_gpt4o(llm_case, llm_eval):
    pass


@pytest.mark.llm_eval(dataset="evals/golden-v3.jsonl", target=target("mini"), scorers=SCORERS, thresholds=THRESHOLDS)
def test_mini(llm_case, llm_eval):
    pass
'''


def _answer(request: dict) -> str:
    """Deterministic answers: a shared per-case difficulty (6% of cases are wrong for every
    model) plus 3% model-specific misses, so two models disagree on a few cases only, as
    real models of similar quality do; 3% of cases are not grounded for anyone."""
    content = request["messages"][-1]["content"]
    n = int(str(content).rsplit(" ", 1)[1])
    shared = hashlib.sha256(f"case{n}".encode()).digest()[0] / 256
    own = hashlib.sha256(f"{request['model']}/{n}".encode()).digest()[0] / 256
    correct = not (shared < 0.06 or own < 0.03)
    return ("yes" if correct else "no") + (" grounded" if shared < 0.97 else "")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The eval project after one real run; its report is ``report.json``."""
    root = tmp_path_factory.mktemp("evalproject")
    (root / "evals").mkdir()
    (root / "evals" / "golden-v3.jsonl").write_text("".join(
        json.dumps({"id": f"g{i:04d}", "inputs": {"question": f"question {i}"}, "expected": "yes"}) + "\n"
        for i in range(N_CASES)))
    (root / "prompts").mkdir()
    (root / "prompts" / "support.yaml").write_text(f'template: "{TEMPLATE}"\nlabel: v3\n')
    (root / "pytest.ini").write_text("[pytest]\nllm_eval_concurrency = 8\n")
    (root / "test_golden.py").write_text(PROJECT)
    (root / "llmops-config.yaml").write_text(FULL)
    args = ["--llm-eval", "--llm-eval-report=report.json", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:randomly",
            "-p", "no:logging", "-p", "no:warnings", "-s", "-qq", "--assert=plain", "--rootdir", str(root), str(root)]
    modules, path, cwd = dict(sys.modules), list(sys.path), os.getcwd()
    try:
        with LoopbackLLMServer(_answer) as server:
            os.environ["LOOPBACK_URL"] = server.url
            os.chdir(root)
            code = pytest.main(args)  # in-process, as pytester's runpytest: no interpreter start-up
    finally:
        os.chdir(cwd)
        os.environ.pop("LOOPBACK_URL", None)
        sys.path[:] = path
        # Forget the project's own modules (test_golden), not the libraries the run imported:
        # a re-imported httpcore would no longer match the exception map httpx cached.
        for name in set(sys.modules) - set(modules):
            if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(root)):
                del sys.modules[name]
    assert code == 0, f"the eval project failed: exit {code}"
    return root


@pytest.fixture(scope="module")
def report(project) -> dict:
    doc = json.loads((project / "report.json").read_text())
    validate(doc)
    return doc


def still_valid(doc: dict) -> dict:
    """An edited copy must still be a valid report. Validating 1,500 cases takes a second,
    so the check runs on a copy with three cases per suite (the edits are elsewhere)."""
    trimmed = copy.deepcopy({**doc, "suites": []})
    trimmed["suites"] = [{**s, "cases": s["cases"][:3]} for s in doc["suites"]]
    validate(trimmed)
    return doc


def write_report(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(still_valid(doc)))
    return path


def suite(doc: dict, suite_id: str) -> dict:
    return next(s for s in doc["suites"] if s["suite_id"] == suite_id)


def check_text(project: Path, doc: dict, config: str = FULL) -> tuple[int, str]:
    """The checks through the API (the CLI adds only reading files): exit code and text."""
    result = check_loaded(parse_config(config, "llmops-config.yaml", project), still_valid(doc), "report.json")
    return result.exit_code, render_text(result)


def run_cli(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    assert "Traceback" not in out.getvalue() + err.getvalue()
    return code, out.getvalue() + err.getvalue()


def test_the_real_report_names_the_models_and_prompts(report):
    assert report["complete"] and report["verdict"] == "pass"
    models = {s["suite_id"]: s["models"] for s in report["suites"]}
    assert models == {CLAUDE: ["anthropic:claude-sonnet-4"], GPT4O: ["openai:gpt-4o"], MINI: ["openai:gpt-4o-mini"]}
    for s in report["suites"]:
        assert s["dataset"] == "evals/golden-v3.jsonl" and s["cases_run"] == N_CASES
        assert s["prompts"] == {"support": [prompt_version(TEMPLATE)]}
        assert s["usage"]["cost_mean"] > 0 and s["usage"]["latency_p95_ms"] > 0


def test_the_seed_config_with_a_passing_report_ships(project, report, tmp_path):
    (project / "seed.yaml").write_text(SEED)
    code, out = run_cli(project / "seed.yaml", "--report", project / "report.json")
    assert code == 0, out
    assert out.endswith("0 errors, 4 warnings: may ship (exit 0)\n")
    # the warnings: no baseline was compared, so block_on_regression could not be checked, and no traffic estimate
    assert [line.split()[2].rstrip(":") for line in out.splitlines()[:-1]] == ["LEC711"] * 3 + ["LEC713"]
    code, out = check_text(project, report, FULL)
    assert code == 0 and "LEC713" not in out and out.count("warning LEC711") == 3


def test_a_secondary_model_that_was_not_evaluated_blocks(project, report, tmp_path):
    doc = copy.deepcopy(report)
    doc["suites"] = [s for s in doc["suites"] if s["suite_id"] != GPT4O]
    (project / "seed.yaml").write_text(SEED)
    code, out = run_cli(project / "seed.yaml", "--report", write_report(tmp_path / "r.json", doc), "--format", "json")
    assert code == 1
    [finding] = [f for f in json.loads(out)["findings"] if f["severity"] == "error"]
    assert finding["code"] == "LEC703" and finding["line"] == 9 and finding["key"] == "routing.secondary"
    assert finding["message"].startswith("openai:gpt-4o (routing.secondary, 20% of traffic) was not evaluated: no suite "
                                         "on evals/golden-v3.jsonl called it")


def test_an_unevaluated_fallback_blocks_and_a_near_name_is_suggested(project, report):
    code, out = check_text(project, report, SEED.replace("model: gpt-4o-mini}", "model: gpt-4o-mini-2024-07-18}"))
    assert code == 1
    assert ("llmops-config.yaml:10: error LEC703: openai:gpt-4o-mini-2024-07-18 (routing.fallback, takes the traffic "
            "when failover triggers) was not evaluated") in out
    assert "the report has openai:gpt-4o-mini: name the model exactly as it was evaluated" in out


def test_a_routed_model_whose_gate_failed_blocks_with_the_failing_gate(project, report):
    doc = copy.deepcopy(report)
    s = suite(doc, CLAUDE)
    metric = next(m for m in s["metrics"] if m["name"] == "correctness")
    metric.update(mean=0.81, threshold_failed=True, verdict="fail", reasons=["correctness: mean 0.810 < threshold 0.85"])
    s["verdict"], doc["verdict"] = "fail", "fail"
    code, out = check_text(project, doc, SEED)
    assert code == 1
    assert ("llmops-config.yaml:8: error LEC704: anthropic:claude-sonnet-4 (routing.primary, 80% of traffic) failed its "
            f"gate in suite {CLAUDE}: correctness: mean 0.810 < threshold 0.85\n") in out


def test_suites_without_a_model_client_are_named(project, report):
    doc = copy.deepcopy(report)
    for s in doc["suites"]:
        s["models"] = []
        for case in s["cases"]:
            case["models"] = []
    code, out = check_text(project, doc, SEED)
    assert code == 1
    assert f"warning LEC705: suite {CLAUDE} (on evals/golden-v3.jsonl) used no model client" in out
    assert "3 suite(s) on evals/golden-v3.jsonl used no model client" in out
    assert out.count("error LEC703") == 3


def test_gate_strictness_examples_and_regressions(project, report):
    config = (SEED.replace("correctness: 0.85", "correctness: 0.90").replace("min_examples: 500", "min_examples: 1000")
              .replace("relevance: 0.80}", "relevance: 0.80, toxicity: 0.99}"))
    doc = copy.deepcopy(report)
    metric = next(m for m in suite(doc, GPT4O)["metrics"] if m["name"] == "faithfulness")
    metric.update(baseline_mean=0.99, change=-0.008, p_value=0.01, p_adjusted=0.02, regressed=True, test="mcnemar-exact")
    code, out = check_text(project, doc, config)
    assert code == 1
    lines = out.splitlines()
    looser = [line for line in lines if "LEC708: eval_gates.thresholds.correctness" in line]
    assert len(looser) == 3 and all(line.startswith("llmops-config.yaml:4: error LEC708: eval_gates.thresholds.correctness "
                                                    "is 0.9 but the gate that ran for ") for line in looser)
    mean = next(m["mean"] for m in suite(report, CLAUDE)["metrics"] if m["name"] == "correctness")
    assert any(f"for anthropic:claude-sonnet-4 was looser ({CLAUDE}: threshold 0.85, mean {mean:.3f})" in line
               for line in looser)
    assert sum("LEC708: eval_gates.thresholds.toxicity: no suite for" in line for line in lines) == 3
    assert sum(line.startswith("llmops-config.yaml:5: error LEC709: eval_gates.min_examples is 1000 but suite")
               and "ran 500 case(s)" in line for line in lines) == 3
    [regressed] = [line for line in lines if "LEC710" in line]
    assert regressed.startswith(f"llmops-config.yaml:6: error LEC710: suite {GPT4O}: faithfulness regressed against the "
                                "baseline: 0.990 -> ")
    assert "(change -0.008, p=0.02); eval_gates.block_on_regression is true" in regressed
    code, out = check_text(project, doc, SEED.replace("block_on_regression: true", "block_on_regression: false"))
    assert code == 0 and "warning LEC711" in out and "not blocking" in out


def test_the_run_must_enforce_thresholds(project, report):
    doc = copy.deepcopy(report)
    doc["run"]["options"]["enforce_thresholds"] = False
    code, out = check_text(project, doc, SEED)
    assert code == 1 and "the run ignored thresholds" in out


def test_a_partial_run_did_not_enforce_its_thresholds(project, report):
    """A -k selection reports thresholds without enforcing them (its suites say "pass" with
    a below-threshold mean): not evidence that the gate holds."""
    code, out = check_text(project, report, SEED)
    assert "LEC708" not in out
    doc = copy.deepcopy(report)
    suite(doc, GPT4O)["cases_run"] = 12
    code, out = check_text(project, doc, SEED)
    n_rows = suite(doc, GPT4O)["n_rows"]
    assert code == 1 and (f"error LEC708: eval_gates.thresholds: suite {GPT4O} ran 12 of its {n_rows} cases (a -k, "
                          "node id or --lf selection): its thresholds were reported, not enforced; run every case") in out
    doc["run"]["options"]["enforce_partial"] = True
    assert "ran 12 of its" not in check_text(project, doc, SEED)[1]


def test_projected_cost_above_the_alert_line_blocks_with_the_numbers(project, report):
    code, out = check_text(project, report, FULL.replace("requests_per_day: 100000", "requests_per_day: 20000000"))
    claude = suite(report, CLAUDE)["usage"]["cost_mean"]
    gpt4o = suite(report, GPT4O)["usage"]["cost_mean"]
    projected = 20_000_000 * (0.8 * claude + 0.2 * gpt4o)
    assert projected > 400 and code == 1
    line = next(line for line in out.splitlines() if "LEC712" in line)
    assert line.startswith(f"llmops-config.yaml:16: error LEC712: projected daily cost ${projected:,.2f} = "
                           "20,000,000 requests/day x (0.8 x $")
    assert line.endswith("exceeds the alert line $400.00 (cost_alert_threshold 0.8 x daily_cost_budget $500.00)")
    assert "LEC712" not in check_text(project, report, FULL)[1]  # 100,000 requests/day: a few dollars


def test_unknown_costs_are_warnings(project, report):
    doc = copy.deepcopy(report)
    suite(doc, GPT4O)["usage"]["unpriced_models"] = ["gpt-4o"]
    code, out = check_text(project, doc, FULL)
    assert code == 0 and "warning LEC713: monitoring.daily_cost_budget: cost per request unknown for openai:gpt-4o" in out


def test_p95_latency_above_the_alert_blocks(project, report):
    code, out = check_text(project, report, SEED.replace("latency_p95_alert_ms: 5000", "latency_p95_alert_ms: 0.001"))
    assert code == 1
    assert out.count("error LEC714") == 3  # primary, secondary and the fallback
    assert "openai:gpt-4o-mini (routing.fallback, takes the traffic when failover triggers): p95 latency" in out


def test_latency_replayed_from_the_cache_is_not_measured_unless_it_is_over_anyway(project, report):
    doc = copy.deepcopy(report)
    usage = suite(doc, GPT4O)["usage"]
    usage["app_cached_calls"] = 1  # one app call replayed: the provider's time is not all in the p95
    code, out = check_text(project, doc, SEED.replace("latency_p95_alert_ms: 5000", "latency_p95_alert_ms: 1000000000"))
    assert "warning LEC715: openai:gpt-4o (" in out and "app calls replayed from the cache): p95 not checked" in out
    code, out = check_text(project, doc, SEED.replace("latency_p95_alert_ms: 5000", "latency_p95_alert_ms: 0.001"))
    assert out.count("error LEC714") == 3  # over the alert even with replays
    usage["app_cached_calls"] = 0  # only judge calls replayed: the app's latency is measured
    usage["cached_calls"] = usage["calls"]
    code, out = check_text(project, doc, SEED.replace("latency_p95_alert_ms: 5000", "latency_p95_alert_ms: 1000000000"))
    assert "LEC715" not in out


def test_the_golden_dataset_must_match_by_path_and_fingerprint(project, report, tmp_path):
    code, out = check_text(project, report, SEED.replace("golden-v3", "golden-v4"))
    assert code == 1
    assert "llmops-config.yaml:3: error LEC706: eval_gates.golden_dataset: no suite in report.json ran on " \
           "evals/golden-v4.jsonl (suites ran on: evals/golden-v3.jsonl)" in out

    wrong = "sha256:" + "0" * 64
    config = SEED.replace("  min_examples: 500\n", f"  golden_dataset_fingerprint: {wrong}\n  min_examples: 500\n")
    code, out = check_text(project, report, config)
    assert code == 1 and out.count(":5: error LEC707:") == 3 and f"eval_gates.golden_dataset_fingerprint is {wrong}" in out

    right = suite(report, CLAUDE)["fingerprint"]
    assert check_text(project, report, config.replace(wrong, right))[0] == 0

    # without a fingerprint in the config, the file next to the config is hashed
    other = tmp_path / "elsewhere"
    (other / "evals").mkdir(parents=True)
    (other / "evals" / "golden-v3.jsonl").write_text('{"id": "x", "inputs": {"q": 1}}\n')
    result = check_loaded(parse_config(SEED, "c.yaml", other), report, "report.json")
    assert [f.code for f in result.findings if f.blocks] == ["LEC707"] * 3
    result = check_loaded(parse_config(SEED, "c.yaml", tmp_path), report, "report.json")
    assert "LEC717" in {f.code for f in result.findings} and result.ships  # no file: a warning


def test_incomplete_and_deferred_reports_block(project, report):
    doc = copy.deepcopy(report)
    doc["complete"], doc["verdict"] = False, "incomplete"
    doc["run"]["incomplete_reason"] = "stopping after 1 failures"
    code, out = check_text(project, doc, SEED)
    assert code == 1 and "llmops-config.yaml:2: error LEC701: the report report.json is incomplete (stopping after 1 " \
                         "failures)" in out
    assert "LEC704" not in out  # unjudged suites did not fail a gate: the report is not final
    doc = copy.deepcopy(report)
    doc["verdict"] = "deferred"
    for entry in doc["suites"]:  # a shard's suites: unjudged, some of the cases each
        entry["verdict"], entry["cases_run"] = None, entry["cases_run"] // 2
    code, out = check_text(project, doc, SEED)
    assert code == 1 and "error LEC702" in out and "llm-eval merge" in out
    assert "cases (a -k, node id or --lf selection)" not in out  # a shard is not a -k selection: LEC702 says what it is


def test_pinned_prompt_versions_against_the_report(project, report):
    rendered = prompt_version(TEMPLATE)
    pinned = SEED.replace("auto_eval: true}", "auto_eval: true,\n  prompts: {support: %s}}")
    assert check_text(project, report, pinned % rendered)[0] == 0  # the report's suites rendered it and passed

    doc = copy.deepcopy(report)
    for s in doc["suites"]:
        s["verdict"] = "fail"
    code, out = check_text(project, doc, pinned % rendered)
    assert f"error LEC603: prompt_registry.prompts.support: version {rendered} has no passing eval: the report's suites" in out

    unknown = prompt_version("never written")
    code, out = check_text(project, report, pinned % unknown)
    assert code == 1 and f"version {unknown} does not exist: " in out and f"is at version {rendered}" in out


def test_a_report_that_is_not_a_report_is_unusable(project, tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"schema_version": 1, "complete": True}))
    code, out = run_cli(project / "llmops-config.yaml", "--report", tmp_path / "r.json")
    assert code == 2 and "not a valid pytest-llmeval report" in out
    code, out = run_cli(project / "llmops-config.yaml", "--report", tmp_path / "none.json")
    assert code == 2 and "report not found" in out


@settings(max_examples=30, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(st.tuples(_paths, _values), min_size=1, max_size=3))
def test_fuzz_cross_checks_never_crash(report, mutations):
    import yaml

    from pytest_llmeval.check import ConfigLoadError

    data = FULL_DATA
    for path, value in mutations:
        data = _mutate(data, path, value)
    try:
        config = parse_config(yaml.safe_dump(data), "fuzz.yaml")
    except ConfigLoadError:
        return
    result = check_loaded(config, report, "report.json")
    assert result.exit_code in (0, 1)


# --------------------------------------------------------------------------- canary

POLICY = CanaryPolicy.from_config(parse_config(FULL))


def _plant_drop(doc: dict, metric: str, cases: int) -> dict:
    """The candidate loses ``cases`` cases it had right: a drop of cases / n."""
    doc = copy.deepcopy(doc)
    planted = 0
    for case in suite(doc, GPT4O)["cases"]:
        if planted < cases and case["scores"][metric] == 1.0:
            case["scores"][metric] = 0.0
            planted += 1
    assert planted == cases
    return doc


def _pair_only(doc: dict, n: int | None = None) -> dict:
    """The control and candidate suites (and their first n cases)."""
    doc = copy.deepcopy(doc)
    doc["suites"] = [s for s in doc["suites"] if s["suite_id"] in (CLAUDE, GPT4O)]
    if n is not None:
        for s in doc["suites"]:
            keep = sorted({c["case_id"] for c in s["cases"]})[:n]
            s["cases"] = [c for c in s["cases"] if c["case_id"] in keep]
    return doc


def canary_cli(project: Path, tmp_path: Path, doc: dict, *extra: str) -> tuple[int, str]:
    return run_cli(project / "llmops-config.yaml", "--canary", "--report", write_report(tmp_path / "canary.json", doc),
                   "--control", CLAUDE, "--candidate", GPT4O, *extra)


def test_canary_an_unchanged_candidate_promotes(project, report, tmp_path):
    code, out = canary_cli(project, tmp_path, _pair_only(report))
    assert code == 0, out
    assert "decision: PROMOTE to 5% (exit 0)" in out and "500 paired case(s)" in out
    decision = decide(report, CLAUDE, GPT4O, POLICY, current_stage=25)
    data = decision.to_dict()
    assert decision.exit_code == 0 and data["decision"] == "promote" and data["target_stage"] == 50
    assert {m["metric"]: m["status"] for m in data["metrics"]} == {"correctness": "ok", "faithfulness": "ok", "relevance": "ok"}
    decision = decide(report, CLAUDE, GPT4O, POLICY, current_stage=100)
    assert decision.decision == "promote" and decision.target_stage is None
    assert decision.reasons[-1].endswith("paired cases: promote: the rollout is complete")


def test_canary_a_planted_8_point_drop_on_500_cases_rolls_back(project, report, tmp_path):
    doc = _plant_drop(_pair_only(report), "correctness", 40)  # 40 / 500 = 8 points
    code, out = canary_cli(project, tmp_path, doc, "--current-stage", "5")
    assert code == 1, out
    assert "decision: ROLL BACK (exit 1)" in out
    before = next(m["mean"] for m in suite(report, GPT4O)["metrics"] if m["name"] == "correctness")
    control = next(m["mean"] for m in suite(report, CLAUDE)["metrics"] if m["name"] == "correctness")
    # the candidate lost 8 points against itself; against the control that adds what it lacked before
    assert f"correctness: dropped {control - before + 0.08:.3f} ({control:.3f} -> {before - 0.08:.3f}, p=" in out
    assert "beyond the allowed 0.05" in out
    data = decide(doc, CLAUDE, GPT4O, POLICY).to_dict()
    correctness = next(m for m in data["metrics"] if m["metric"] == "correctness")
    assert data["decision"] == "rollback" and data["target_stage"] == 0 and data["exit_code"] == 1
    assert correctness["status"] == "regressed" and correctness["p_adjusted"] < 0.05
    assert correctness["test"] == "mcnemar-exact"
    assert correctness["control_mean"] - correctness["candidate_mean"] == pytest.approx(0.08 + correctness["control_mean"]
                                                                                       - before)

    small = _plant_drop(report, "correctness", 10)  # 2 points: within the allowed 5
    assert decide(small, CLAUDE, GPT4O, POLICY).decision == "promote"


def test_canary_40_cases_hold_and_say_how_many_are_needed(project, report, tmp_path):
    from scipy import stats

    from pytest_llmeval.gate.stats import minimum_detectable_drop

    doc = _pair_only(report, 40)
    code, out = canary_cli(project, tmp_path, doc, "--current-stage", "5", "--format", "json")
    data = json.loads(out)
    assert code == 3 and data["decision"] == "hold" and data["target_stage"] == 5
    correctness = next(m for m in data["metrics"] if m["metric"] == "correctness")
    assert correctness["status"] == "underpowered" and correctness["mde"] > 0.05

    # the gate's formula (Connor 1987), by hand: the smallest n whose MDE of the test is
    # at most the allowed drop, for the discordance a drop does not explain (wins + min)
    pairs = [(c["scores"]["correctness"], d["scores"]["correctness"])
             for c, d in zip(sorted(suite(doc, CLAUDE)["cases"], key=lambda c: c["case_id"]),
                             sorted(suite(doc, GPT4O)["cases"], key=lambda c: c["case_id"]))]
    losses = sum(1 for a, b in pairs if a == 1 and b == 0)
    wins = sum(1 for a, b in pairs if a == 0 and b == 1)
    psi0, za, zb = (wins + min(losses, wins)) / 40, stats.norm.ppf(0.95), stats.norm.ppf(0.80)

    def connor_n(d):
        return (za * math.sqrt(psi0 + d) + zb * math.sqrt(psi0 + d - d * d)) ** 2 / d**2

    expected = math.ceil(connor_n(0.05))
    assert correctness["mde"] == pytest.approx(minimum_detectable_drop(40, discordance=psi0))
    assert correctness["cases_needed"] == expected >= 100
    assert data["cases_needed"] == max(m["cases_needed"] or 0 for m in data["metrics"])
    assert f"about {expected} paired cases are needed ({expected - 40} more)" in correctness["message"]

    code, out = canary_cli(project, tmp_path, doc, "--current-stage", "5")
    assert code == 3 and "decision: HOLD at 5% (exit 3)" in out and "with 40 paired case(s)" in out


def test_cases_needed_matches_the_mde_formula():
    from pytest_llmeval.gate.stats import minimum_detectable_drop

    for noise, allowed, binary in [(0.3, 0.05, False), (0.2, 0.02, True), (0.0, 0.05, True), (0.1, 0.2, False)]:
        n = cases_needed(noise, allowed, alpha=0.05, power=0.8, binary=binary)
        kw = {"discordance": noise} if binary else {"sd_diff": noise}
        assert minimum_detectable_drop(n, **kw) <= allowed
        assert n == 2 or minimum_detectable_drop(n - 1, **kw) > allowed


def test_canary_counts_cases_not_repeats(report):
    """Repeats of a case are averaged into it: three repeats of 42 control cases are 42
    pairs, and the MDE is the gate's formula for that n, never one for 126 rows."""
    from pytest_llmeval.gate.stats import compare_paired, minimum_detectable_drop

    doc = copy.deepcopy(_pair_only(report, 42))
    control = suite(doc, CLAUDE)
    control["cases"] = [{**c, "repeat": r} for c in control["cases"] for r in range(3)]
    decision = decide(doc, CLAUDE, GPT4O, POLICY)
    assert decision.n_pairs == 42
    correctness = next(m for m in decision.metrics if m.metric == "correctness")
    assert correctness.n == 42
    by_id = lambda s: {c["case_id"]: c["scores"]["correctness"] for c in s["cases"]}  # noqa: E731
    before, after = by_id(control), by_id(suite(doc, GPT4O))
    cmp = compare_paired([before[c] for c in sorted(before)], [after[c] for c in sorted(before)])
    assert correctness.mde == pytest.approx(cmp.mde_test)
    assert correctness.mde == pytest.approx(minimum_detectable_drop(42, discordance=cmp.noise))


def test_canary_rolls_back_on_a_failed_candidate_gate_error_rate_or_latency(report):
    doc = copy.deepcopy(report)
    s = suite(doc, GPT4O)
    s["verdict"] = "fail"
    s["usage_gates"] = [{"name": "max_cost_per_case", "verdict": "fail", "message": "cost per case above budget",
                         "properties": {}}]
    decision = decide(still_valid(doc), CLAUDE, GPT4O, POLICY)
    assert decision.decision == "rollback"
    assert decision.reasons == (f"the candidate suite {GPT4O} failed its gate: cost per case above budget",)

    doc = copy.deepcopy(report)
    suite(doc, GPT4O)["usage"]["error_rate"] = 0.05
    decision = decide(still_valid(doc), CLAUDE, GPT4O, POLICY)
    assert decision.reasons == ("candidate error rate 5.0% is above canary.rollback.max_error_rate 2.0%",)

    doc = copy.deepcopy(report)
    suite(doc, GPT4O)["usage"]["latency_p95_ms"] = 9000.0
    decision = decide(still_valid(doc), CLAUDE, GPT4O, POLICY)
    assert decision.reasons == ("candidate p95 latency 9,000 ms is above canary.rollback.max_latency_p95_ms 8,000 ms",)


def test_canary_holds_until_the_stage_has_run_its_time_and_on_incomplete_reports(report):
    decision = decide(report, CLAUDE, GPT4O, POLICY, current_stage=25, stage_minutes=10)
    assert decision.decision == "hold" and decision.exit_code == 3
    assert decision.reasons == ("the 25% stage has run 10 of its minimum 60 minutes (canary.min_stage_duration_minutes)",)
    assert decide(report, CLAUDE, GPT4O, POLICY, current_stage=25, stage_minutes=61).decision == "promote"
    doc = copy.deepcopy(report)
    doc["complete"], doc["verdict"] = False, "incomplete"
    decision = decide(doc, CLAUDE, GPT4O, POLICY)
    assert decision.decision == "hold" and "the report is incomplete" in decision.reasons[0]


def test_canary_junit_output_parses(report):
    decision = decide(_plant_drop(report, "correctness", 40), CLAUDE, GPT4O, POLICY)
    root = ET.fromstring(render_canary_junit(decision))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"canary[correctness]", "canary[faithfulness]", "canary[relevance]", "canary decision: rollback"}
    assert cases["canary[correctness]"].find("failure") is not None
    assert cases["canary[relevance]"].find("failure") is None
    assert root.find("testsuite").get("failures") == "2"


def test_canary_unusable_questions_exit_2(project, report, tmp_path):
    from pytest_llmeval.check.canary import CanaryError

    small = _pair_only(report, 5)
    code, out = run_cli(project / "llmops-config.yaml", "--canary", "--report", write_report(tmp_path / "s.json", small),
                        "--control", CLAUDE, "--candidate", "test_golden.py::test_gpt4")
    assert code == 2 and "did you mean 'test_golden.py::test_gpt4o'?" in out
    with pytest.raises(CanaryError, match=r"--current-stage 30 is not one of canary.stages \(5, 25, 50, 100\)"):
        decide(small, CLAUDE, GPT4O, POLICY, current_stage=30)
    with pytest.raises(CanaryError, match="the config has no canary section"):
        CanaryPolicy.from_config(parse_config(SEED))
    odd = _pair_only(report, 5)
    suite(odd, GPT4O)["cases"][0]["scores"]["relevance"] = 2.0  # valid JSON, but no score: the schema refuses it
    with pytest.raises(ReportError, match=r"case 'g0000' at suites/\d/cases/0/scores/relevance: 2.0 is greater than the maximum of 1"):
        still_valid(odd)
    with pytest.raises(CanaryError, match=r"metric relevance: current\[0\] = 2.0 is not a score in \[0, 1\]"):
        decide(odd, CLAUDE, GPT4O, POLICY)  # and a document that skipped validation is still refused
    (project / "broken.yaml").write_text(FULL.replace("[5, 25, 50, 100]", "[5, 50, 25, 100]"))
    code, out = run_cli(project / "broken.yaml", "--canary", "--report", tmp_path / "s.json", "--control", CLAUDE,
                        "--candidate", GPT4O)
    assert code == 2 and "error LEC301" in out and "fix the config before deciding a canary" in out
    err = io.StringIO()
    with redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        main([str(project / "llmops-config.yaml"), "--canary", "--report", str(tmp_path / "s.json")])
    assert exit_.value.code == 2 and "--canary needs --control, --candidate" in err.getvalue()


def test_canary_holds_when_the_paired_test_has_insufficient_evidence(report):
    """Every case lost exactly 0.1: the t statistic has no variance. The gate would not
    block on that, and the canary must not promote on it either: it holds and says why."""
    doc = copy.deepcopy(_pair_only(report, 40))
    for name, value in ((CLAUDE, 0.6), (GPT4O, 0.5)):
        for case in suite(doc, name)["cases"]:
            case["scores"]["correctness"] = value
    decision = decide(doc, CLAUDE, GPT4O, POLICY)
    correctness = next(m for m in decision.metrics if m.metric == "correctness")
    assert correctness.status == "underpowered" and correctness.cases_needed is None
    assert "insufficient evidence (all 40 paired differences are equal (-0.1)" in correctness.message
    assert decision.decision == "hold" and correctness.message in decision.reasons
