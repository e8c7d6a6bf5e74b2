"""The HTML report of a seeded 300-case run with a planted regression, in real headless Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pytest_llmeval.reporting.report import load_report

pytest.importorskip("jinja2")

# 300 cases: per case, 75% always right, 5% always wrong, 20% a seeded coin flip; APP_DROP
# plants a true drop (that share of right answers turns wrong). Every 50th case from 7 on
# asks for a human look from the test body.
APP = """
import os, random, pytest

def app(n):
    seed, drop = os.environ.get("APP_SEED", "0"), float(os.environ.get("APP_DROP", "0"))
    kind = n % 20
    ok = kind < 15 or (kind > 15 and random.Random(f"{seed}-{n}").random() < 0.5)
    if ok and random.Random(f"drop-{n}").random() < drop / 0.85:
        ok = False
    place = "Settings > Account > Reset" if ok else "the help page, then ask support"
    return f"Open the app, go to {place} and confirm item {n}. <b>Done</b> & dusted."

@pytest.mark.llm_eval(dataset="data.jsonl", target=app, scorers=["contains"], thresholds={"contains": 0.6})
def test_support(llm_case, llm_eval):
    if llm_case.inputs["n"] % 50 == 7:
        llm_eval.flag_for_review("tone check requested by the test")
"""

LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("LLM_EVAL_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                      "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium binary found (set LLM_EVAL_CHROMIUM, or install the chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def regressed_report(pytester, write_jsonl, monkeypatch) -> Path:
    write_jsonl("data.jsonl", [{"id": f"q{i:04d}", "inputs": {"n": i}, "expected": "Settings"} for i in range(300)])
    pytester.makepyfile(test_eval=APP)
    monkeypatch.setenv("APP_SEED", "1")
    assert pytester.runpytest("--llm-eval-update", "-p", "no:cacheprovider").ret == 0
    monkeypatch.setenv("APP_SEED", "3")
    monkeypatch.setenv("APP_DROP", "0.10")
    path = pytester.path / "report.json"
    result = pytester.runpytest("--llm-eval", "-p", "no:cacheprovider", f"--llm-eval-report={path}",
                                f"--llm-eval-html={pytester.path / 'report.html'}")
    assert result.ret == 1
    return path


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LLM_EVAL_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_report_of_a_planted_regression_in_chromium(regressed_report, browser, tmp_path):
    doc = load_report(regressed_report)
    suite = doc["suites"][0]
    assert doc["verdict"] == "fail" and suite["metrics"][0]["regressed"]
    regressed = {c["case_id"] for c in suite["cases"] if c["baseline_scores"] and c["scores"]["contains"] < c["baseline_scores"]["contains"]}
    flagged = {entry["case_id"] for entry in suite["review"]}
    manual = {entry["case_id"] for entry in suite["review"] if any(f["reason"] == "manual" for f in entry["flags"])}
    assert len(regressed) > 20 and manual == {f"q{i:04d}" for i in range(7, 300, 50)}

    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto((regressed_report.parent / "report.html").as_uri())

    assert errors == []
    assert page.locator("[role=tab]").count() == 0  # tabs only for variants and routes
    assert [url for url in requests if not url.startswith("file:")] == []  # nothing fetched: self-contained
    rows = page.locator("#case-table tbody tr.case")
    assert rows.count() == 300
    first = [rows.nth(i).get_attribute("data-case-id") for i in range(len(regressed))]
    assert set(first) == regressed  # regressed first, by default
    assert rows.nth(len(regressed)).get_attribute("data-status") != "regressed"
    assert page.locator("table.verdicts tr.fail td").first.text_content() == "contains"
    assert page.locator("figure.chart").count() >= 3  # distributions, paired change, latency

    page.select_option("#status-filter", "review")
    shown = {rows.nth(i).get_attribute("data-case-id") for i in range(rows.count())}
    assert shown == flagged and manual <= shown
    assert page.locator("#case-count").text_content() == f"{len(flagged)} of 300 shown"

    page.select_option("#status-filter", "all")
    page.fill("#text-filter", "q0007")
    assert rows.count() == 1
    rows.first.click()
    detail = page.locator("tr.detail")
    assert "tone check requested by the test" in detail.text_content()
    assert "<b>Done</b> & dusted." in detail.text_content()  # escaped text, not markup
    assert page.locator("tr.detail b").count() == 0

    page.fill("#text-filter", "")
    page.select_option("#status-filter", "regressed")
    rows.first.click()
    assert page.locator("tr.detail .diff del").count() > 0 and page.locator("tr.detail .diff ins").count() > 0
    page.select_option("#status-filter", "all")
    page.click("th[data-sort='id']")
    ids = page.locator("#case-table tbody tr.case td.id").all_text_contents()
    assert ids == sorted(ids) and len(ids) == 300
    page.click("th[data-sort='id']")
    assert page.locator("#case-table tbody tr.case td.id").first.text_content() == "q0299"
    page.screenshot(path=str(screenshot_dir(tmp_path) / "llm-eval-report.png"), full_page=True)
    assert errors == []
    page.close()
