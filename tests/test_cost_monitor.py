"""``llm-eval cost``: daily spend by feature, model and segment from request logs, mean and
p95 cost per request, and the budget alert attributed to a feature and model."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import pytest

from pytest_llmeval.cli import main
from pytest_llmeval.monitoring.cost import percentile

FEATURES = {"chat": "gpt-4o-mini", "summarize": "gpt-4o", "search": "claude-haiku-3.5"}
PRICES = {"gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.00), "claude-haiku-3.5": (0.80, 4.00)}
DAY1 = date(2026, 5, 1)
SPIKE = DAY1 + timedelta(days=4)


def _log(spike_day=SPIKE):
    """7 days x 300 requests per feature; on ``spike_day`` summarize triples its output tokens."""
    rng = random.Random(4)
    records = []
    for d in range(7):
        day = DAY1 + timedelta(days=d)
        for feature, model in FEATURES.items():
            for i in range(300):
                out = rng.randint(150, 250) * (3 if feature == "summarize" and day == spike_day else 1)
                records.append({"timestamp": f"{day.isoformat()}T{i % 24:02d}:{i % 60:02d}:00Z", "model": model,
                                "feature": feature, "segment": "pro" if i % 3 == 0 else "free",
                                "usage": {"input_tokens": rng.randint(800, 1200), "output_tokens": out}})
    return records


def _cost(r):
    p_in, p_out = PRICES[r["model"]]
    return (r["usage"]["input_tokens"] * p_in + r["usage"]["output_tokens"] * p_out) / 1e6


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _daily(records):
    out = {}
    for r in records:
        out.setdefault(r["timestamp"][:10], []).append(_cost(r))
    return out


def test_a_feature_tripling_its_output_tokens_alerts_that_day_attributed_to_feature_and_model(tmp_path, capsys):
    records = _log()
    daily = _daily(records)
    normal = max(sum(v) for d, v in daily.items() if d != SPIKE.isoformat())
    spike = sum(daily[SPIKE.isoformat()])
    budget = round((normal + spike) / 2 / 0.8, 2)  # the alert line (80% of it) lies between a normal day and the spike
    assert normal < 0.8 * budget < spike
    config = tmp_path / "llmops-config.yaml"
    config.write_text(f"monitoring:\n  daily_cost_budget: {budget}\n  cost_alert_threshold: 0.8\n")
    log = _write(tmp_path / "requests.jsonl", records)
    # The project's own prices (they win over the price library), so the expected spend is exact.
    lines = ", ".join(f'"{model} = {p_in} / {p_out}"' for model, (p_in, p_out) in PRICES.items())
    (tmp_path / "pyproject.toml").write_text(f"[tool.pytest.ini_options]\nllm_eval_prices = [{lines}]\n")

    code = main(["cost", str(log), "--config", str(config), "--format", "json", "--rootdir", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [d["day"] for d in doc["days"] if d["alert"]] == [SPIKE.isoformat()]
    (alert,) = doc["alerts"]
    assert alert.startswith(f"{SPIKE}: spend ") and "most of the rise is feature summarize on gpt-4o" in alert
    day = next(d for d in doc["days"] if d["day"] == SPIKE.isoformat())
    assert day["attribution"]["feature"] == "summarize" and day["attribution"]["model"] == "gpt-4o"
    costs = daily[SPIKE.isoformat()]
    assert day["spend"] == pytest.approx(spike) and day["requests"] == 900
    assert day["mean_cost"] == pytest.approx(spike / 900)
    assert day["p95_cost"] == pytest.approx(percentile(costs, 95))
    assert day["by_feature"]["summarize"] == pytest.approx(sum(_cost(r) for r in records
                                                               if r["timestamp"].startswith(str(SPIKE)) and r["feature"] == "summarize"))
    assert set(day["by_model"]) == set(FEATURES.values()) and set(day["by_segment"]) == {"pro", "free"}
    # mean and p95 cost per request, per feature, model and segment
    spiked = [r for r in records if r["timestamp"].startswith(str(SPIKE))]
    for key, name in (("feature", "summarize"), ("model", "gpt-4o"), ("segment", "pro"), ("segment", "free")):
        group = [_cost(r) for r in spiked if r[key] == name]
        assert day["per_request"][key][name] == {"requests": len(group), "mean": pytest.approx(sum(group) / len(group)),
                                                 "p95": pytest.approx(percentile(group, 95))}
    summarize = day["per_request"]["feature"]["summarize"]

    code = main(["cost", str(log), "--config", str(config), "--rootdir", str(tmp_path)])
    text = capsys.readouterr().out
    assert code == 1
    assert f"{SPIKE}  900 requests  spend ${spike:,.2f}" in text and text.count("ALERT") == 1
    spike_day = text.split(f"{SPIKE}  900 requests", 1)[1]
    row = next(line for line in spike_day.splitlines() if line.startswith("    summarize "))
    assert row.split() == ["summarize", f"${day['by_feature']['summarize']:,.2f}", "300", f"${summarize['mean']:.4f}",
                           f"${summarize['p95']:.4f}"]
    assert "1 alert(s):" in text


def test_no_alert_below_the_line_exits_0(tmp_path, capsys):
    records = _log(spike_day=None)
    log = _write(tmp_path / "requests.jsonl", records)
    assert main(["cost", str(log), "--daily-budget", "1000", "--alert-threshold", "0.8"]) == 0
    assert "no alert (alert line $800.00 per day)" in capsys.readouterr().out


def test_percentile_matches_numpy():
    numpy = pytest.importorskip("numpy")
    values = [random.Random(1).random() for _ in range(37)]
    assert percentile(values, 95) == pytest.approx(float(numpy.percentile(values, 95)))


def test_unpriced_models_are_listed_and_make_the_spend_a_lower_bound(tmp_path, capsys):
    records = [{"timestamp": "2026-05-01T10:00:00Z", "model": "in-house-7b", "usage": {"input_tokens": 10, "output_tokens": 5}},
               {"timestamp": "2026-05-01T11:00:00Z", "model": "gpt-4o", "cost": 0.5, "feature": "chat"}]
    log = _write(tmp_path / "requests.jsonl", records)
    assert main(["cost", str(log), "--report-only", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["unpriced_models"] == {"in-house-7b": 1} and doc["days"][0]["spend"] == 0.5
    assert any("lower bound" in n for n in doc["notes"]) and any("no alert checked" in n for n in doc["notes"])
    # the project's ini prices price it
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\nllm_eval_prices = ["in-house-7b = 1.0 / 2.0"]\n')
    assert main(["cost", str(log), "--report-only", "--format", "json", "--rootdir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["days"][0]["spend"] == pytest.approx(0.5 + 20 / 1e6)


@pytest.mark.parametrize("record, message", [
    ({"model": "gpt-4o", "cost": 1}, "requests.jsonl:1: field 'timestamp': missing"),
    ({"timestamp": "yesterday", "model": "gpt-4o", "cost": 1}, "field 'timestamp': not an ISO 8601 time"),
    ({"timestamp": "2026-05-01T00:00:00Z", "cost": 1}, "field 'model': missing"),
    ({"timestamp": "2026-05-01T00:00:00Z", "model": "gpt-4o"}, "field 'usage': missing: log token usage"),
    ({"timestamp": "2026-05-01T00:00:00Z", "model": "gpt-4o", "cost": -1}, "field 'cost': must be a finite number >= 0"),
])
def test_bad_records_name_file_line_and_field(tmp_path, capsys, record, message):
    log = _write(tmp_path / "requests.jsonl", [record])
    assert main(["cost", str(log), "--daily-budget", "10"]) == 2
    assert message in capsys.readouterr().err


def test_without_a_budget_the_monitor_refuses_to_say_all_is_well(tmp_path, capsys):
    log = _write(tmp_path / "requests.jsonl", _log()[:10])
    assert main(["cost", str(log)]) == 2
    assert "no daily budget" in capsys.readouterr().err


def test_a_parquet_log_is_priced_as_the_same_jsonl_log(tmp_path, capsys):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    records = _log()
    pq.write_table(pyarrow.Table.from_pylist(records), tmp_path / "requests.parquet")
    outputs = []
    for log in (_write(tmp_path / "requests.jsonl", records), tmp_path / "requests.parquet"):
        code = main(["cost", str(log), "--daily-budget", "1", "--format", "json"])
        outputs.append((code, json.loads(capsys.readouterr().out)))
    assert outputs[0] == outputs[1]
    code, doc = outputs[0]
    assert code == 1 and len(doc["days"]) == 7 and sum(d["requests"] for d in doc["days"]) == len(records)
