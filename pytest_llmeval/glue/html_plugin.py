"""pytest-html integration: the eval summary table (and a link to the HTML report) at the
top of pytest-html's report.

Registered by the session on the controller only when pytest-html is loaded
(``config.pluginmanager.hasplugin("html")``); pytest-html calls
``pytest_html_results_summary`` from its own (trylast) ``pytest_sessionfinish``, after
the gate ran. pytest-html depends on Jinja2, so the table is a template too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

__all__ = ["PytestHtmlSummary"]


class PytestHtmlSummary:
    """Adds the eval summary of the finished run (``document()``: the report document, or
    None when no eval case ran) to pytest-html's report."""

    def __init__(self, config: pytest.Config, document: Callable[[], Any], html_report: Path | None) -> None:
        self.config = config
        self.document = document
        self.html_report = html_report

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session) -> None:
        doc = self.document()
        if doc is None:
            return
        from ..reporting.html import build_page, render_template

        link = None
        if self.html_report is not None:
            own = getattr(self.config.option, "htmlpath", None)
            base = Path(own).absolute().parent if own else Path.cwd()
            link = Path(os.path.relpath(self.html_report, base)).as_posix()
        prefix.append(render_template("pytest_html_summary.html.j2", page=build_page(doc), link=link))
