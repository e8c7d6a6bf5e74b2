"""The run history in HTML: the Trends tab of a recorded run's report (real pytest runs,
shown in real headless Chromium) and ``llm-eval history --html``; the chart geometry."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from history_docs import judged_report
from test_html_browser import browser, screenshot_dir  # noqa: F401 (the module-scoped Chromium fixture)
from test_html_variants import open_page
from test_remote_datasets import PROJECT
from test_history_trends import DAY1, NOW, _expected_alert_days, _seed

from pytest_llmeval.cli import main
from pytest_llmeval.monitoring.history import HistoryStore, history_url
from pytest_llmeval.reporting.html import build_page
from pytest_llmeval.reporting.html_trends import TrendSeries, trend_chart

pytest.importorskip("jinja2")

SUITE = "test_eval.py::test_support"


@pytest.fixture
def project(pytester, write_jsonl):
    """20 cases of which the app gets 16 right (0.8), and a history of 10 earlier daily runs
    of the same suite at 0.95 (no committed baseline: the first week is the baseline)."""
    write_jsonl("data.jsonl", [{"id": f"q{i}", "inputs": {"q": "x"}, "expected": "yes" if i % 5 else "no"}
                               for i in range(20)])
    pytester.makepyfile(test_eval=PROJECT.format(uri="data.jsonl"))
    today = datetime.now(timezone.utc).date()
    with HistoryStore(history_url("", pytester.path)) as store:
        for k in range(10, 0, -1):
            store.record(judged_report(pytester.path / "seed-baselines", today - timedelta(days=k), 19, n=20,
                                       suite=SUITE, metric="exact_match", latency_ms=700.0))
    (pytester.path / "llmops-config.yaml").write_text("monitoring:\n  quality_alert_threshold: -0.02\n"
                                                      "  latency_p95_alert_ms: 5000\n")
    pytester.makeini("[pytest]\nllm_eval_history_alerts = llmops-config.yaml\n")
    return pytester


def test_a_recorded_run_s_html_report_has_a_trends_tab_with_average_baseline_and_alert(project, browser, tmp_path):  # noqa: F811
    result = project.runpytest("--llm-eval", "--llm-eval-history", "--llm-eval-html=report.html", "--llm-eval-report=r.json")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["history: recorded run 11 in sqlite:*"])
    today = datetime.now(timezone.utc).date()
    # today's 7-day average: (6 x 0.95 + 0.8) / 7 = 0.9286, -2.3% from the first week's 0.95
    expected_alert = f"{today}: {SUITE} exact_match: 7-day average 0.9286 is -2.3% from the baseline 0.9500 (alert at -2.0%)"

    from playwright.sync_api import expect  # the browser fixture skipped the test without it

    page, errors = open_page(browser, project.path / "report.html")
    assert page.locator("[role=tab]").all_text_contents() == ["Suites and cases 20", "Trends 2"]
    assert page.locator("#tab-trends").is_hidden()
    page.click("[data-tab=trends]")
    panel = page.locator("#tab-trends")
    expect(panel).to_be_visible()  # tabs follow the hash: hashchange fires after the click
    expect(page.locator("#tab-overview")).to_be_hidden()
    assert panel.locator(".alerts li").all_text_contents() == [f"alert {expected_alert}"]
    quality, latency = panel.locator("figure.trend").all()
    assert quality.locator("figcaption").text_content().startswith(f"{SUITE}  exact_match")
    assert "baseline 0.9500 (first 7 days of history) · alert at -2.0%" in quality.locator("figcaption").text_content()
    assert quality.locator("circle.dot").count() == 11  # ten seeded days and today
    assert quality.locator("polyline.average").count() == 1
    assert [t.text_content() for t in quality.locator("text.ref-label").all()] == ["baseline 0.9500", "alert 0.9310"]
    marks = quality.locator("circle.alert-mark")
    assert marks.count() == 1 and marks.first.locator("title").text_content() == f"{today.isoformat()}: ALERT (0.9286)"
    assert "alert above 5,000 ms" in latency.locator("figcaption").text_content()
    assert latency.locator("circle.alert-mark").count() == 0 and latency.locator("circle.dot").count() == 11
    page.screenshot(path=str(screenshot_dir(tmp_path) / "llm-eval-report-trends.png"), full_page=True)
    assert errors == []
    page.close()

    report = json.loads((project.path / "r.json").read_text(encoding="utf-8"))
    assert build_page(report).tabs == ()  # the JSON report alone has no history: no Trends tab


def test_without_history_or_html_there_is_no_trends_tab_and_a_bad_alerts_config_stops_the_run(project):
    assert project.runpytest("--llm-eval", "--llm-eval-html=plain.html").ret == 0
    assert 'data-tab="trends"' not in (project.path / "plain.html").read_text(encoding="utf-8")
    (project.path / "llmops-config.yaml").write_text("monitoring:\n  quality_alert_threshold: 5\n")
    result = project.runpytest("--llm-eval", "--llm-eval-history")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*LEC504*"])


def test_llm_eval_history_html_is_the_trend_with_every_alert(tmp_path, seeded_docs, capsys, browser):  # noqa: F811
    docs, means = seeded_docs
    url = history_url("h.sqlite", tmp_path)
    _seed(url, docs)
    out = tmp_path / "trend.html"
    code = main(["history", "--db", url, "--now", NOW, "--quality-alert", "-0.05", "--latency-alert-ms", "3000",
                 "--html", str(out)])
    assert code == 1 and f"wrote the HTML page to {out}" in capsys.readouterr().out
    expected = _expected_alert_days(means, 0.85, -0.05)
    page, errors = open_page(browser, out)
    assert page.locator("h1").text_content().strip() == f"{len(expected) + 1} alert(s) llm-eval history"
    quality, latency = page.locator("figure.trend").all()
    titles = [t.text_content() for t in quality.locator("circle.alert-mark title").all()]
    assert titles == [f"{day.isoformat()}: ALERT ({means_avg:.4f})" for day, means_avg in
                      ((d, sum(m for dd, m in means.items() if d - timedelta(days=6) <= dd <= d) / 7) for d in expected)]
    assert latency.locator("circle.alert-mark title").all_text_contents() == [f"{DAY1 + timedelta(days=27)}: ALERT (3,400)"]
    assert errors == []
    page.close()


def test_trend_chart_places_days_by_date_and_breaks_the_average_where_it_is_undefined():
    days = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 5), date(2026, 1, 11)]
    chart = trend_chart(TrendSeries("t", "c", days, [0.5, None, 0.7, 0.9], [None, 0.6, 0.65, 0.8],
                                    [False, False, False, True], baseline=0.7, alert_line=0.6))
    xs = [x for x, _, _ in chart.dots]
    assert xs == [chart.left, chart.left + 0.4 * chart.plot_w, chart.left + chart.plot_w]  # day 0, 4 and 10 of 10
    top, bottom = chart.top, chart.top + chart.plot_h
    ys = {title.split(" ")[-1]: y for _, y, title in chart.dots}
    assert top < ys["0.9000"] < ys["0.7000"] < ys["0.5000"] < bottom  # higher values are drawn higher
    assert len(chart.lines) == 1 and len(chart.lines[0].split()) == 3  # days 2, 5 and 11 joined; day 1 has none
    assert [(cls, label) for _, cls, label in chart.refs] == [("baseline", "baseline 0.7000"), ("alert", "alert 0.6000")]
    assert chart.refs[0][0] == ys["0.7000"]
    (alert,) = chart.alerts
    assert alert[0] == chart.left + chart.plot_w and alert[2] == "2026-01-11: ALERT (0.8000)"
    flat = trend_chart(TrendSeries("flat", "", [date(2026, 1, 1)], [0.5], [None], [False]))
    assert flat.dots[0][0] == flat.left + flat.plot_w / 2 and top < flat.dots[0][1] < bottom
