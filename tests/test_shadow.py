"""``llm-eval shadow``: blue/green outputs of logged traffic scored with the same scorers,
compared with the gate's paired test overall and per segment, the window's extra cost,
and the JSON document ``llm-eval-check --shadow`` reads to allow a cutover."""

from __future__ import annotations

import json
import random
import time

import pytest
from test_custom_and_judge_scorers import judge_answer

from pytest_llmeval.check.cli import main as check_main
from pytest_llmeval.cli import main
from pytest_llmeval.monitoring.shadow import ShadowSettings, load_pairs
from pytest_llmeval.testing import LoopbackLLMServer

SEGMENTS = ("consumer", "enterprise", "free", "partner")
BLUE_MODEL, GREEN_MODEL = "gpt-4o-mini", "gpt-4o"
CONFIG = """\
eval_gates:
  thresholds: {exact_match: 0.8}
routing:
  primary: {provider: openai, model: gpt-4o, weight: 1.0}
  fallback: {provider: anthropic, model: claude-haiku-3.5}
"""


def _records(worse_segment: str | None, *, seed: int = 7) -> list[dict]:
    """2,000 requests, 500 per segment, blue right 85% of the time. Green gives blue's answer
    except for symmetric flips (15 each way per segment); on ``worse_segment`` 20 more of
    blue's right answers are wrong: 4 points worse there."""
    rng = random.Random(seed)
    records = []
    for s, segment in enumerate(SEGMENTS):
        ids = [f"{segment}-{i:04d}" for i in range(500)]
        blue_right = {rid: rng.random() < 0.85 for rid in ids}
        green_right = dict(blue_right)
        right = [rid for rid in ids if blue_right[rid]]
        wrong = [rid for rid in ids if not blue_right[rid]]
        flips = rng.sample(right, 15 + (20 if segment == worse_segment else 0))
        for rid in flips:
            green_right[rid] = False
        for rid in rng.sample(wrong, 15):
            green_right[rid] = True
        for k, rid in enumerate(ids):
            base = {"request_id": rid, "segment": segment, "inputs": {"question": f"q {rid}"}, "expected": "yes",
                    "timestamp": f"2026-04-0{1 + k % 3}T10:{k % 60:02d}:00Z"}
            records.append({**base, "variant": "blue", "model": BLUE_MODEL, "output": "yes" if blue_right[rid] else "no",
                            "usage": {"input_tokens": 400, "output_tokens": 50 + k % 7}})
            records.append({**base, "variant": "green", "model": GREEN_MODEL,
                            "output": "yes" if green_right[rid] else "no",
                            "usage": {"input_tokens": 400, "output_tokens": 60 + k % 5}})
    return records


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _green_cost(records):
    return sum(r["usage"]["input_tokens"] * 2.5 + r["usage"]["output_tokens"] * 10.0
               for r in records if r["variant"] == "green") / 1e6


def test_green_4_points_worse_on_one_segment_blocks_the_cutover_naming_the_segment(tmp_path, capsys):
    records = _records("enterprise")
    log = _write(tmp_path / "shadow.jsonl", records)
    out = tmp_path / "shadow.json"
    code = main(["shadow", str(log), "--scorer", "exact_match", "-o", str(out), "--rootdir", str(tmp_path)])
    text = capsys.readouterr().out
    assert code == 1
    doc = json.loads(out.read_text())
    assert doc["decision"] == "block" and doc["pairs"] == 2000
    (enterprise,) = [s for s in doc["segments"] if s["decision"] == "block"]
    assert enterprise["segment"] == "enterprise" and enterprise["pairs"] == 500
    (metric,) = enterprise["metrics"]
    assert metric["change"] == pytest.approx(-0.04) and metric["test"] == "mcnemar-exact" and metric["p_value"] < 0.05
    assert any(r.startswith("segment enterprise: exact_match regressed") for r in doc["reasons"])
    assert "segment enterprise (500 pairs): block" in text
    assert "decision: block: the cutover is BLOCKED" in text
    assert f"extra inference cost ${_green_cost(records):,.2f}" in text
    assert doc["cost"]["extra_cost"] == pytest.approx(_green_cost(records))
    assert doc["cost"]["green"]["models"] == [GREEN_MODEL] and doc["cost"]["window_start"] == "2026-04-01T10:00:00"

    config = tmp_path / "llmops-config.yaml"
    config.write_text(CONFIG)
    assert check_main([str(config), "--shadow", str(out)]) == 1
    checked = capsys.readouterr().out
    assert "LEC801" in checked and "segment enterprise" in checked


def test_equal_logs_allow_the_cutover_and_print_the_window_cost(tmp_path, capsys):
    records = _records(None)
    log = _write(tmp_path / "shadow.jsonl", records)
    out = tmp_path / "shadow.json"
    # 2,000 pairs with 6% symmetric flips can see a drop of 0.025 at 80% power (the honest
    # MDE, Connor 1987), not the default 0.02: the team allows 0.03 here.
    code = main(["shadow", str(log), "--scorer", "exact_match", "--max-drop", "0.03", "-o", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    doc = json.loads(out.read_text())
    assert doc["decision"] == "allow" and doc["metrics"][0]["change"] == pytest.approx(0.0)
    assert "decision: allow: green >= blue: the cutover may go ahead" in text
    assert f"extra inference cost ${_green_cost(records):,.2f}" in text
    config = tmp_path / "llmops-config.yaml"
    config.write_text(CONFIG)
    assert check_main([str(config), "--shadow", str(out)]) == 0
    assert "LEC80" not in capsys.readouterr().out


def test_two_logs_parquet_and_sampling(tmp_path, capsys):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    records = _records("enterprise")
    blue = [{k: v for k, v in r.items() if k != "variant"} for r in records if r["variant"] == "blue"]
    green = [{k: v for k, v in r.items() if k != "variant"} for r in records if r["variant"] == "green"][:-10]
    pq.write_table(pyarrow.Table.from_pylist(blue), tmp_path / "blue.parquet")
    _write(tmp_path / "green.jsonl", green)
    code = main(["shadow", str(tmp_path / "blue.parquet"), str(tmp_path / "green.jsonl"), "--scorer", "exact_match",
                 "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["pairs"] == 1990 and doc["left_out"]["blue_only"] == 10

    settings = ShadowSettings(sample=0.25)
    first, counts = load_pairs([tmp_path / "blue.parquet", tmp_path / "green.jsonl"], settings)
    again, _ = load_pairs([tmp_path / "blue.parquet", tmp_path / "green.jsonl"], settings)
    assert [p.request_id for p in first] == [p.request_id for p in again]  # the same requests on a rerun
    assert 400 < len(first) < 600 and counts["sampled_out"] == 1990 - len(first)
    capped, _ = load_pairs([tmp_path / "blue.parquet", tmp_path / "green.jsonl"], ShadowSettings(max_pairs=100))
    assert len(capped) == 100


def test_too_few_pairs_decide_nothing(tmp_path, capsys):
    log = _write(tmp_path / "shadow.jsonl", _records(None)[:40])
    assert main(["shadow", str(log), "--scorer", "exact_match"]) == 3
    assert "decision: insufficient" in capsys.readouterr().out


@pytest.mark.parametrize("records", [2, 40 + 2], ids=["one-pair", "one-pair-segment"])
def test_a_single_pair_has_no_confidence_interval_and_decides_nothing(tmp_path, capsys, records):
    """One pair (overall, or in a segment) gives a change but no interval: 'n/a', not a crash
    whose exit status 1 would read as a block."""
    rows = _records(None)[:40] if records > 2 else []
    rows += [{**row, "segment": "vip"} for row in _records(None)[-2:]]
    log = _write(tmp_path / "shadow.jsonl", rows)
    assert main(["shadow", str(log), "--scorer", "exact_match"]) == 3
    out = capsys.readouterr().out
    assert "(95% CI n/a), mcnemar-exact p=1, n=1\n" in out and "decision: insufficient" in out


@pytest.mark.parametrize("line, message", [
    ('{"variant": "blue", "output": "x"}', "shadow.jsonl:1: field 'request_id': missing"),
    ('{"request_id": 1, "variant": "red", "output": "x"}', "shadow.jsonl:1: field 'variant': must be blue or green"),
    ('{"request_id": 1, "variant": "blue"}', "shadow.jsonl:1: field 'output': missing"),
    ('{"request_id": 1, "variant": "blue", "output": "x"}\n{"request_id": 1, "variant": "blue", "output": "y"}',
     "shadow.jsonl:2: field 'request_id': blue request '1' is logged twice (first on line 1)"),
    ('[1]', "shadow.jsonl:1: a record must be a JSON object"),
    ('{"request_id": 1, "variant": "blue", "output": "x", "usage": {"input_tokens": -3}}\n'
     '{"request_id": 1, "variant": "green", "output": "x"}', "field 'usage.input_tokens': must be a non-negative integer"),
])
def test_bad_records_name_file_line_and_field(tmp_path, capsys, line, message):
    (tmp_path / "shadow.jsonl").write_text(line + "\n")
    assert main(["shadow", str(tmp_path / "shadow.jsonl"), "--scorer", "exact_match"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("scorer, message", [
    ('regex={"pattern": ', "--scorer regex={\"pattern\": : options: not JSON: Expecting value"),
    ('regex=["^OK"]', "--scorer regex=[\"^OK\"]: options: expected a JSON object, got list"),
])
def test_bad_scorer_options_are_a_usage_error(tmp_path, capsys, scorer, message):
    log = _write(tmp_path / "shadow.jsonl", _records(None)[:4])
    assert main(["shadow", str(log), "--scorer", scorer]) == 2
    assert message in capsys.readouterr().err


def test_a_shadow_document_that_is_not_one_is_unusable_for_the_checker(tmp_path, capsys):
    config = tmp_path / "llmops-config.yaml"
    config.write_text(CONFIG)
    (tmp_path / "x.json").write_text('{"decision": "allow"}')
    assert check_main([str(config), "--shadow", str(tmp_path / "x.json")]) == 2
    assert "not a shadow comparison" in capsys.readouterr().err


def test_judge_scorers_grade_both_outputs_with_the_project_s_judge(tmp_path, capsys, monkeypatch):
    """judge:correctness on the loopback judge (5 when the answer holds the reference, else
    2), configured as a pytest run of the project would be: LLM_EVAL_JUDGE_BASE_URL and the
    ini llm_eval_judge_model of --rootdir's pyproject.toml. 80 pairs; on segment b green
    misses 12 of 40 references: blocked there, each output graded once."""
    records = []
    for k in range(80):
        segment, capital = ("a", "Paris") if k < 40 else ("b", "Madrid")
        base = {"request_id": f"r{k}", "segment": segment, "inputs": {"question": f"capital? ({k})"}, "expected": capital}
        records.append({**base, "variant": "blue", "output": f"It is {capital}."})
        records.append({**base, "variant": "green", "output": "I am not sure." if k >= 68 else f"{capital}, of course."})
    log = _write(tmp_path / "shadow.jsonl", records)
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\nllm_eval_judge_model = "judge-mini"\n')
    server = LoopbackLLMServer(judge_answer).start()
    try:
        monkeypatch.setenv("LLM_EVAL_JUDGE_BASE_URL", server.base_url)
        out = tmp_path / "shadow.json"
        code = main(["shadow", str(log), "--scorer", "judge:correctness", "--rootdir", str(tmp_path), "--min-pairs", "20",
                     "--max-drop", "0.05", "-o", str(out)])
        received = list(server.received)
    finally:
        server.stop()
    capsys.readouterr()
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert code == 1 and doc["decision"] == "block"
    assert [r for r in doc["reasons"] if r.startswith("segment b: judge:correctness regressed")]
    (b,) = [s for s in doc["segments"] if s["segment"] == "b"]
    (metric,) = b["metrics"]
    assert (metric["blue_mean"], metric["green_mean"]) == (1.0, pytest.approx((28 + 12 * 0.25) / 40))
    assert len(received) == 160 and {r["model"] for r in received} == {"judge-mini"}


def _judged_pairs(tmp_path, pairs: int):
    """``pairs`` requests answered alike by blue and green, and a project whose judge is
    gpt-4o-mini (priced by the built-in table)."""
    records = []
    for k in range(pairs):
        base = {"request_id": f"r{k}", "inputs": {"question": f"capital? ({k})"}, "expected": "Paris"}
        records += [{**base, "variant": "blue", "output": "Paris."}, {**base, "variant": "green", "output": "Paris!"}]
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\nllm_eval_judge_model = "gpt-4o-mini"\n')
    return _write(tmp_path / "shadow.jsonl", records)


def _fixed_usage(usage):
    def reshape(request, payload):
        if usage is None:
            return {k: v for k, v in payload.items() if k != "usage"}
        return {**payload, "usage": usage}
    return reshape


def test_judging_spend_is_reported_apart_from_the_window_cost(tmp_path, capsys, monkeypatch):
    """20 pairs, one judge scorer: 40 judge calls of 100 input and 10 output tokens each,
    scored 4 pairs at a time. At gpt-4o-mini's $0.15 / $0.60 per million tokens that is
    40 * (100 * 0.15 + 10 * 0.60) / 1e6 = $0.00084, which is not green's traffic."""
    log = _judged_pairs(tmp_path, 20)
    usage = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    server = LoopbackLLMServer(judge_answer, latency=0.05, reshape=_fixed_usage(usage)).start()
    try:
        monkeypatch.setenv("LLM_EVAL_JUDGE_BASE_URL", server.base_url)
        out = tmp_path / "shadow.json"
        main(["shadow", str(log), "--scorer", "judge:correctness", "--rootdir", str(tmp_path), "--min-pairs", "10",
              "--concurrency", "4", "-o", str(out)])
        max_in_flight = server.max_in_flight
    finally:
        server.stop()
    text = capsys.readouterr().out
    judging = json.loads(out.read_text(encoding="utf-8"))["cost"]["judging"]
    assert judging == {"calls": 40, "input_tokens": 4000, "output_tokens": 400, "cost": pytest.approx(0.00084),
                       "unpriced_models": [], "usage_unknown_calls": 0}
    assert "judging this comparison: 40 judge call(s), 4,000 input + 400 output tokens, cost $0.0008\n" in text
    assert 2 <= max_in_flight <= 4  # pairs scored at once, never more than asked


def test_judging_without_usage_is_not_a_zero_cost(tmp_path, capsys, monkeypatch):
    log = _judged_pairs(tmp_path, 5)
    server = LoopbackLLMServer(judge_answer, reshape=_fixed_usage(None)).start()
    try:
        monkeypatch.setenv("LLM_EVAL_JUDGE_BASE_URL", server.base_url)
        out = tmp_path / "shadow.json"
        main(["shadow", str(log), "--scorer", "judge:correctness", "--rootdir", str(tmp_path), "--min-pairs", "2",
              "-o", str(out)])
    finally:
        server.stop()
    text = capsys.readouterr().out
    judging = json.loads(out.read_text(encoding="utf-8"))["cost"]["judging"]
    assert (judging["calls"], judging["usage_unknown_calls"], judging["cost"]) == (10, 10, None)
    assert "cost unknown\n" in text and "note: judging cost leaves out 10 call(s) answered without usage" in text


def test_offline_scorers_make_no_judging_line(tmp_path, capsys):
    log = _judged_pairs(tmp_path, 5)
    out = tmp_path / "shadow.json"
    main(["shadow", str(log), "--scorer", "contains", "--rootdir", str(tmp_path), "--min-pairs", "2", "-o", str(out)])
    assert "judging" not in capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8"))["cost"]["judging"]["calls"] == 0


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_bad_concurrency_is_a_usage_error(tmp_path, capsys, value):
    log = _judged_pairs(tmp_path, 2)
    (tmp_path / "pyproject.toml").write_text(f'[tool.pytest.ini_options]\nllm_eval_concurrency = "{value}"\n')
    assert main(["shadow", str(log), "--scorer", "contains", "--rootdir", str(tmp_path)]) == 2
    assert (f"{tmp_path / 'pyproject.toml'}: ini llm_eval_concurrency: expected a positive integer, got '{value}'"
            in capsys.readouterr().err)  # the message a pytest run gives for the same ini value
    with pytest.raises(SystemExit) as exit_:
        main(["shadow", str(log), "--scorer", "contains", "--rootdir", str(tmp_path), "--concurrency", value])
    assert exit_.value.code == 2
    assert f"argument --concurrency: expected a positive integer, got '{value}'" in capsys.readouterr().err


def test_a_failing_judge_names_the_log_line_when_pairs_are_scored_at_once(tmp_path, capsys, monkeypatch):
    """The failure stops the comparison at once, not when the slow pair before it is done:
    the pairs not started yet are not judged (and not paid for)."""
    log = _judged_pairs(tmp_path, 60)
    lines = log.read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0].replace('"Paris."', '"Paris, slowly."')  # r0's blue answer: judged in 3 s
    lines[5] = lines[5].replace('"Paris!"', '"garbage"')  # r2's green answer: the judge gives no score
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def slow_judge(request):
        if "slowly" in request["messages"][-1]["content"]:
            time.sleep(3)
        return judge_answer(request)

    server = LoopbackLLMServer(slow_judge, latency=0.02).start()
    try:
        monkeypatch.setenv("LLM_EVAL_JUDGE_BASE_URL", server.base_url)
        code = main(["shadow", str(log), "--scorer", "judge:correctness", "--rootdir", str(tmp_path),
                     "--concurrency", "4"])
        requests = server.requests
    finally:
        server.stop()
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"llm-eval shadow: {log}:6: ")
    assert requests < 60  # of the 120 calls 60 pairs would take
