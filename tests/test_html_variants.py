"""The HTML report's Variants and Routes tabs: real A/B and routed runs on the loopback
server, the view built from their reports, and the pages in real headless Chromium (the tab
is there only when the report has it, the counts match the report, no console errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_html_browser import browser, screenshot_dir  # noqa: F401 (the module-scoped Chromium fixture)
from test_variants import _report, ab_project, server  # noqa: F401 (fixtures)
from test_variants_routes import APP as ROUTED_APP
from test_variants_routes import CONFIG, answer_with, golden_project

from pytest_llmeval.cli import main
from pytest_llmeval.reporting.html import build_page
from pytest_llmeval.reporting.html_variants import interval_chart

pytest.importorskip("jinja2")


def open_page(browser, path: Path):  # noqa: F811
    """The page at ``path`` with its console errors/warnings and page errors collected."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    return page, errors


@pytest.fixture
def ab_run(pytester, ab_project, server) -> tuple[dict, Path]:  # noqa: F811
    ab_project()  # 400 cases; worse: 6 points fewer right; concise: as good, 40% fewer output tokens
    result, report = _report(pytester, "--llm-eval-html=ab.html")
    assert result.ret == 0
    return report, pytester.path / "ab.html"


def test_the_variants_tab_shows_each_variant_and_each_pair_from_the_report(ab_run, browser, tmp_path):  # noqa: F811
    report, html = ab_run
    page_view = build_page(report)
    assert [t[:2] for t in page_view.tabs] == [("overview", "Suites and cases"), ("variants", "Variants")]
    assert page_view.route_groups == ()
    [group] = page_view.variant_groups
    assert (group.suite_id, group.control, group.metrics) == ("test_ab.py::test_support", "control", ("contains",))
    worse = next(s for s in report["suites"] if s["variant"] == "worse")
    summary, [metric] = worse["summary"], worse["comparison"]["metrics"]
    row = next(v for v in group.variants if v.name == "worse")
    contains = summary["metrics"]["contains"]
    assert row.n == "400" and row.means == (f"{contains['mean']:.3f} ({contains['ci_low']:.2f}-{contains['ci_high']:.2f})",)
    pair = next(p for p in group.pairs if p.pair == "worse vs control")
    assert (pair.verdict, pair.p_holm, pair.mde) == ("worse", f"{metric['p_adjusted']:.3f}", f"{metric['mde']:.3f}")
    assert metric["verdict"] == "worse"
    concise = next(p for p in group.pairs if p.pair == "concise vs control")
    assert concise.verdict == "no detectable difference" and concise.cases_needed.endswith("for 0.02")
    cheaper = [(r.pair, r.name, r.label) for r in group.resources if r.verdict == "lower"]
    assert ("concise vs control", "output tokens", "fewer output tokens") in cheaper
    assert [c.title for c in group.charts] == ["contains: mean and 95% CI per variant", "contains: paired change vs control (95% CI)",
                                               "cost and latency: paired change vs control (%, 95% CI)"]

    from playwright.sync_api import expect  # the browser fixture skipped the test without it

    page, errors = open_page(browser, html)
    assert page.locator("#tab-variants").is_hidden() and page.locator("#tab-overview").is_visible()
    assert page.locator("[role=tab]").all_text_contents() == ["Suites and cases 1200", "Variants 3"]
    page.click("[data-tab=variants]")
    expect(page.locator("#tab-overview")).to_be_hidden()  # tabs follow the hash: hashchange fires after the click
    panel = page.locator("#tab-variants")
    assert panel.locator("table.variants tbody tr").count() == 3
    assert panel.locator("table.variants tbody tr[data-variant] td:first-child a").all_text_contents() == ["control", "worse", "concise"]
    assert panel.locator("table.pairs tbody tr").count() == 2
    assert panel.locator("table.pairs tr.worse").count() == 1
    assert panel.locator("table.resources tbody tr").count() == 2 * 4  # cost, latency, output and input tokens per pair
    assert panel.locator("figure.chart svg g.interval").count() == 3 + 2 + 4
    assert panel.locator("table.routes").count() == 0 and page.locator("[data-tab=routes]").count() == 0
    page.screenshot(path=str(screenshot_dir(tmp_path) / "llm-eval-report-variants.png"), full_page=True)
    panel.locator("table.variants a", has_text="worse").click()  # a variant's name leads to its suite section
    expect(page.locator("#tab-overview")).to_be_visible()
    expect(page.locator("#tab-variants")).to_be_hidden()
    assert page.locator("#case-table tbody tr.case").count() == 1200
    assert errors == []
    page.close()


@pytest.fixture
def routed_report(pytester, write_jsonl, monkeypatch) -> Path:
    for loopback in golden_project(pytester, write_jsonl, monkeypatch, CONFIG, ROUTED_APP, n=200):
        loopback.answer = answer_with("gpt-4o")  # the secondary route gets 10% of the cases wrong
        result = pytester.runpytest("--llm-eval", "--llm-eval-routes", "llmops-config.yaml", "--llm-eval-report=r.json")
        assert result.ret == 1
    return pytester.path / "r.json"


def test_the_routes_tab_shows_each_route_with_its_parity_verdict(routed_report, browser, capsys, tmp_path):  # noqa: F811
    html = routed_report.with_name("routes.html")
    assert main(["html", str(routed_report), "-o", str(html)]) == 0  # from the JSON report alone
    capsys.readouterr()
    report = json.loads(routed_report.read_text(encoding="utf-8"))
    [group] = build_page(report).route_groups
    assert [(r.variant, r.route, r.model, r.share, r.verdict, [p[:2] for p in r.parity]) for r in group.routes] == [
        ("primary", "routing.primary", "anthropic:claude-sonnet-4", "80%", "pass", []),
        ("secondary", "routing.secondary", "openai:gpt-4o", "20%", "fail", [("contains", "fail")]),
        ("fallback", "routing.fallback", "openai:gpt-4o-mini", "failover", "pass", [("contains", "pass")])]
    assert group.gates == ()  # parity verdicts sit beside their route, not twice
    assert group.margins == "parity margin 0.05"

    from playwright.sync_api import expect  # the browser fixture skipped the test without it

    page, errors = open_page(browser, html)
    assert page.locator("[role=tab]").all_text_contents() == ["Suites and cases 600", "Routes 3"]
    page.click("[data-tab=routes]")
    panel = page.locator("#tab-routes")
    expect(panel).to_be_visible()
    expect(page.locator("#tab-overview")).to_be_hidden()
    assert panel.locator("table.routes tbody tr").count() == 3
    assert panel.locator("table.routes tr.fail").count() == 1
    failing = panel.locator("table.routes tr.fail .parity").text_content()
    assert "openai:gpt-4o (routing.secondary, 20% of traffic): contains is not shown to be within 0.05 of the primary" in failing
    assert panel.locator(".parity[data-verdict=pass]").count() == 1
    assert panel.locator("table.pairs tbody tr").count() == 2 and panel.locator("table.pairs tr.worse").count() == 1
    assert page.locator("[data-tab=variants]").count() == 0
    page.screenshot(path=str(screenshot_dir(tmp_path) / "llm-eval-report-routes.png"), full_page=True)
    page.goto(html.as_uri() + "#tab-routes")  # a link to the tab opens it
    expect(page.locator("#tab-routes")).to_be_visible()
    assert errors == []
    page.close()


def test_interval_chart_places_points_and_clamps_whiskers_to_the_axis():
    chart = interval_chart("t", [("a", -0.2, -0.1, 0.0, "down"), ("b", None, 5.0, None, "muted")], -0.1, 0.1,
                           refs=[(-0.05, "margin", "m")])
    a, b = chart.rows
    assert (a.low, a.mid, a.high) == (chart.label_w, chart.label_w, chart.label_w + chart.plot_w / 2)
    assert b.low is None and b.mid == chart.label_w + chart.plot_w  # outside the axis: drawn at the edge
    assert [(x, cls) for x, cls, _ in chart.refs] == [(chart.label_w + chart.plot_w / 2, "zero"), (chart.label_w + chart.plot_w / 4, "margin")]
    assert chart.height == 2 * 18 + 4
