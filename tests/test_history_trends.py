"""``llm-eval history``: the trend, the 7-day moving average, the baseline and the alerts,
on SQLite and PostgreSQL (acceptance: a planted 6% drop alerts from the first day the
7-day average is 5% below the baseline, and not before)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from history_docs import DAY1, SUITE, judged_report
from pytest_llmeval.cli import main
from pytest_llmeval.monitoring.history import HistoryStore, history_url

NOW = "2026-03-31T00:00:00"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return history_url("history.sqlite", tmp_path)
    return request.getfixturevalue("postgres_database")


def _expected_alert_days(means: dict, baseline: float, threshold: float) -> list[date]:
    """Independently of the code under test: the days whose mean over the last 7 days is
    at least 5% below the baseline."""
    out = []
    for day in means:
        window = [m for d, m in means.items() if day - timedelta(days=6) <= d <= day]
        if len(window) >= 3 and sum(window) / len(window) <= baseline * (1 + threshold) + 1e-12:
            out.append(day)
    return out


def _seed(url, docs):
    with HistoryStore(url) as store:
        for doc in docs:
            store.record(doc)


def test_a_planted_6_percent_drop_alerts_from_the_first_day_the_7_day_average_is_5_percent_below(
        db_url, seeded_docs, capsys, tmp_path):
    docs, means = seeded_docs
    _seed(db_url, docs)
    expected = _expected_alert_days(means, 0.85, -0.05)
    assert expected[0] == DAY1 + timedelta(days=24)  # the 6th day of the drop: 6 x 6% / 7 > 5%
    assert expected == [DAY1 + timedelta(days=k) for k in range(24, 30)]

    config = tmp_path / "llmops-config.yaml"
    config.write_text("monitoring:\n  quality_alert_threshold: -0.05\n  latency_p95_alert_ms: 3000\n")
    code = main(["history", "--db", db_url, "--since", "30d", "--now", NOW, "--config", str(config), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    (trend,) = out["metrics"]
    assert (trend["suite_id"], trend["metric"], trend["baseline"], trend["baseline_source"]) == (
        SUITE, "accuracy", 0.85, "committed baseline")
    assert trend["alert_days"] == [d.isoformat() for d in expected]
    assert len(trend["days"]) == 30
    day25 = trend["days"][24]
    window = [means[DAY1 + timedelta(days=k)] for k in range(18, 25)]
    assert day25["moving_average"] == pytest.approx(sum(window) / 7)
    assert day25["change"] == pytest.approx(sum(window) / 7 / 0.85 - 1)
    assert out["latency"][0]["alert_days"] == [(DAY1 + timedelta(days=27)).isoformat()]
    assert len(out["alerts"]) == len(expected) + 1

    code = main(["history", "--db", db_url, "--since", "30d", "--now", NOW, "--config", str(config)])
    text = capsys.readouterr().out
    assert code == 1
    assert f"{SUITE}  accuracy  baseline 0.8500 (committed baseline)" in text
    assert f"{DAY1 + timedelta(days=24)}: {SUITE} accuracy: 7-day average" in text
    assert f"{DAY1 + timedelta(days=23)}: {SUITE} accuracy" not in text
    assert f"{DAY1 + timedelta(days=27)}: {SUITE}: p95 latency 3,400 ms is above 3,000 ms" in text


def test_no_alert_before_the_drop_exits_0(db_url, seeded_docs, capsys):
    docs, _ = seeded_docs
    _seed(db_url, docs[:19])
    code = main(["history", "--db", db_url, "--since", "30d", "--now", "2026-03-20T00:00:00",
                 "--quality-alert", "-0.05", "--latency-alert-ms", "3000"])
    text = capsys.readouterr().out
    assert code == 0 and text.endswith("no alert\n")


def test_the_window_shows_and_alerts_only_recent_days_but_averages_over_older_runs(tmp_path, seeded_docs, capsys):
    docs, means = seeded_docs
    url = history_url("h.sqlite", tmp_path)
    _seed(url, docs)
    code = main(["history", "--db", url, "--since", "3d", "--now", NOW, "--quality-alert", "-0.05", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    days = out["metrics"][0]["days"]
    assert [d["day"] for d in days] == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert days[0]["moving_average"] == pytest.approx(sum(means[DAY1 + timedelta(days=k)] for k in range(21, 28)) / 7)


def test_without_a_committed_baseline_the_first_week_is_the_baseline_and_a_day_with_too_little_data_has_no_average(tmp_path, capsys):
    folder = tmp_path / "no-baseline"
    url = history_url("h.sqlite", tmp_path)
    with HistoryStore(url) as store:
        for k, passes in enumerate([172, 170, 170, 170, 170, 170, 170, 150, 150]):
            store.record(judged_report(folder, DAY1 + timedelta(days=2 * k), passes))
    code = main(["history", "--db", url, "--since", "60d", "--now", NOW, "--quality-alert", "-0.05"])
    text = capsys.readouterr().out
    assert "baseline 0.8525 (first 7 days of history)" in text  # days 1, 3, 5, 7: (172+170+170+170)/4/200
    first = text.splitlines()[2]
    assert first.split()[:5] == ["2026-03-01", "1", "0.8600", "-", "-"]  # one day in the window: no average yet
    assert code == 1  # day 17: (0.85 + 0.85 + 0.75 + 0.75) / 4 = 0.80, -6.2%


def test_unusable_input_exits_2(tmp_path, capsys):
    assert main(["history", "--db", str(tmp_path / "missing.sqlite")]) == 2
    assert "no run history at" in capsys.readouterr().err
    assert main(["history", "--db", str(tmp_path / "x.sqlite"), "--quality-alert", "0.05"]) == 2
    assert "quality_alert_threshold must be a relative change in [-1, 0]" in capsys.readouterr().err
    assert main(["history", "--db", str(tmp_path / "x.sqlite"), "--since", "soon"]) == 2
    assert "--since: expected a duration" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("monitoring:\n  quality_alert_threshold: 5\n")
    assert main(["history", "--db", str(tmp_path / "x.sqlite"), "--config", str(bad)]) == 2
    assert "LEC504" in capsys.readouterr().err


def test_the_ini_history_url_is_the_default_database(tmp_path, seeded_docs, capsys):
    docs, _ = seeded_docs
    db = tmp_path / "team.sqlite"
    _seed(f"sqlite:///{db}", docs[:3])
    (tmp_path / "pyproject.toml").write_text(f'[tool.pytest.ini_options]\nllm_eval_history = "{db}"\n')
    assert main(["history", "--rootdir", str(tmp_path), "--since", "60d", "--now", NOW]) == 0
    assert "2026-03-03     1" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_the_plot_is_written_as_svg_or_png(tmp_path, seeded_docs, capsys, suffix):
    docs, _ = seeded_docs
    url = history_url("h.sqlite", tmp_path)
    _seed(url, docs)
    out = tmp_path / f"trend{suffix}"
    assert main(["history", "--db", url, "--now", NOW, "--quality-alert", "-0.05", "--plot", str(out)]) == 1
    data = out.read_bytes()
    if suffix == ".svg":
        assert data.lstrip().startswith(b"<?xml") and b"<svg" in data and b"7-day average" in data
    else:
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    assert f"wrote the plot to {out}" in capsys.readouterr().out


def test_suite_and_metric_select_one_trend(tmp_path, seeded_docs, capsys):
    docs, _ = seeded_docs
    url = history_url("h.sqlite", tmp_path)
    _seed(url, docs[:5])
    other = "tests/test_other.py::test_other"
    _seed(url, [judged_report(tmp_path / "other-baselines", DAY1 + timedelta(days=k), 150, suite=other, metric="f1")
                for k in range(5)])
    args = ["history", "--db", url, "--since", "60d", "--now", NOW, "--format", "json"]
    assert main(args) == 0
    assert {(t["suite_id"], t["metric"]) for t in json.loads(capsys.readouterr().out)["metrics"]} == {
        (SUITE, "accuracy"), (other, "f1")}
    assert main([*args, "--suite", other]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(t["suite_id"], t["metric"]) for t in out["metrics"]] == [(other, "f1")]
    assert [t["suite_id"] for t in out["latency"]] == [other]
    assert main([*args, "--metric", "accuracy"]) == 0
    assert [(t["suite_id"], t["metric"]) for t in json.loads(capsys.readouterr().out)["metrics"]] == [(SUITE, "accuracy")]
    assert main([*args, "--suite", SUITE, "--metric", "f1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metrics"] == [] and "the history holds no run for this selection" in out["notes"]
    # A typo selects nothing: an alert job must not report "no alert" for ever.
    assert main([*args, "--metric", "acuracy"]) == 2
    assert capsys.readouterr().err == ("llm-eval history: --metric 'acuracy': the history has recorded no such metric; "
                                       "did you mean 'accuracy'? (recorded: accuracy, f1)\n")
    assert main([*args, "--suite", "tests/test_other.py::test_othr"]) == 2
    assert f"did you mean '{other}'?" in capsys.readouterr().err
