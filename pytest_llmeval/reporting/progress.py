"""What a run has done so far, kept where its report goes, so a report never claims more.

From start-up the report (and Markdown) path holds an "in progress" document
(``complete: false``) naming the phase the run is in and the files it has written so
far; it is rewritten as each phase begins. Only the run's last write replaces it with a
finished report, and only a run that got through every phase (cases, gate, baseline
write, prompt log) calls that report complete. An interrupted run's report is marked
incomplete with the phase it stopped in, and still lists the files it wrote.

Test-only hook: with ``PYTEST_LLMEVAL_TEST_PAUSE="<phase>:<flag file>"`` in the
environment, the process creates the flag file when it enters that phase and sleeps
while the file exists (up to ``PAUSE_SECONDS``), so a test can send Ctrl-C or SIGKILL at
a known point, or let another run go first and then delete the file. It is
not an option for users and may change without notice. No pytest here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import ConfigError
from ..fileio import write_atomic
from ..providers.redaction import redact
from .markdown import render_markdown
from .report import build_report, write_json

__all__ = ["PAUSE_ENV", "PHASES", "RunProgress", "refuse_unsafe_outputs"]

PHASES = ("start", "cases", "gate", "baseline write", "prompt log", "report")
PAUSE_ENV = "PYTEST_LLMEVAL_TEST_PAUSE"
PAUSE_SECONDS = 300.0


class RunProgress:
    """The phase a run is in and the files it wrote; writes the in-progress report.

    ``report`` / ``markdown`` / ``html``: where the run's outputs go (None: not written).
    ``run_block``: returns the report's ``run`` block (see :func:`~pytest_llmeval.reporting.report.run_block`).
    ``display``: how a written path is shown (relative to the rootdir).
    """

    def __init__(self, report: Path | None, markdown: Path | None, run_block: Callable[[], dict[str, Any]],
                 display: Callable[[Path], str] = str, html: Path | None = None) -> None:
        self.report = report
        self.markdown = markdown
        self.html = html
        self._run_block = run_block
        self._display = display
        self.phase = PHASES[0]
        self.files: list[str] = []
        self.finished = False  # every phase up to the report ran to its end

    def enter(self, phase: str) -> None:
        """Start ``phase`` (one of :data:`PHASES`): the in-progress report says so."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        self.phase = phase
        self._write(build_report(self.run_block(), incomplete=self.in_progress_reason()))
        _pause_for_tests(phase)

    def wrote(self, path: Path) -> None:
        shown = self._display(Path(path))
        if shown not in self.files:
            self.files.append(shown)

    def run_block(self) -> dict[str, Any]:
        return {**self._run_block(), "files_written": list(self.files)}

    def in_progress_reason(self) -> str:
        return f"the run has not finished: in the {self.phase} phase (still running, or killed)"

    def stopped_reason(self, cause: str) -> str:
        """Why an interrupted run is incomplete: the cause, where it stopped, what it wrote."""
        wrote = f"; it wrote {', '.join(self.files)}" if self.files else "; it wrote no baseline or log"
        return f"{cause} (stopped in the {self.phase} phase{wrote})"

    def write_final(self, doc: Mapping[str, Any], trends: Any = None) -> None:
        """Write the finished document: Markdown first, then the JSON report last, listing
        the Markdown among the files written. ``trends``: the run history's
        :class:`~pytest_llmeval.reporting.html_trends.TrendsView` for the HTML page's Trends tab."""
        if self.markdown is not None:
            write_atomic(self.markdown, redact(render_markdown(doc)))
            self.wrote(self.markdown)
        if self.html is not None:
            _write_html(self.html, doc, trends)
            self.wrote(self.html)
        if self.report is not None:
            write_json(self.report, {**doc, "run": {**doc["run"], "files_written": list(self.files)}})

    def _write(self, doc: Mapping[str, Any]) -> None:
        if self.report is not None:
            write_json(self.report, doc)
        if self.markdown is not None:
            write_atomic(self.markdown, redact(render_markdown(doc)))
        if self.html is not None:
            _write_html(self.html, doc)


def _write_html(path: Path, doc: Mapping[str, Any], trends: Any = None) -> None:
    from .html import render_html, build_page  # Jinja2 only for runs that asked for HTML

    write_atomic(path, redact(render_html(build_page(doc, trends=trends))))


_INPUT_SUFFIXES = (".jsonl", ".yaml", ".yml", ".csv", ".txt")
_SUFFIXES = {"report": ".json", "markdown": ".md", "html": ".html"}
_SIGNATURES = {"report": '{\n  "complete": ', "markdown": "## llm-eval: ", "html": "<!doctype html>"}


def refuse_unsafe_outputs(outputs: Mapping[str, Path | None], *, inputs: Mapping[str, Path | None] = {},
                          folders: Mapping[str, Path | None] = {}) -> None:
    """ConfigError, before anything is written, for an output path (``{"report": path,
    "markdown": path}``) that could destroy an input: one of the ``inputs`` files (the
    prompt log, ...), a file inside one of the ``folders`` (the response cache), a dataset
    or prompt file by its suffix, the other output, or any existing file this plugin did not
    write as that output (a dataset, a baseline: its first bytes say whose it is)."""
    seen: dict[Path, str] = {}
    for kind, path in outputs.items():
        if path is None:
            continue
        path = Path(path).absolute()
        flag = "--llm-eval-" + kind
        if path in seen:
            raise ConfigError(f"{flag} {path}: the same file as the {seen[path]} output")
        seen[path] = kind
        for name, other in inputs.items():
            if other is not None and path == Path(other).absolute():
                raise ConfigError(f"{flag} {path}: that is the run's {name}; refusing to overwrite it")
        for name, folder in folders.items():
            if folder is not None and path.is_relative_to(Path(folder).absolute()):
                raise ConfigError(f"{flag} {path}: that is inside the {name} folder {folder}; write the {kind} elsewhere")
        if path.suffix.lower() in _INPUT_SUFFIXES:
            raise ConfigError(f"{flag} {path}: a {path.suffix} file is a dataset or prompt, not a {kind}; "
                              f"name it {path.stem}{_SUFFIXES[kind]}")
        if path.is_dir():
            raise ConfigError(f"{flag} {path}: is a folder")
        if path.exists():
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    head = handle.read(64)
            except OSError as exc:
                raise ConfigError(f"{flag} {path}: cannot check the existing file: {exc}") from None
            if head and not head.lstrip().lower().startswith(_SIGNATURES[kind]):
                raise ConfigError(f"{flag} {path}: the file exists and is not a pytest-llmeval {kind} (a dataset, "
                                  "baseline, prompt or cache file?); refusing to overwrite it")


def _pause_for_tests(phase: str) -> None:
    """Test-only: see the module docstring."""
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    wanted, _, flag = spec.partition(":")
    if wanted != phase or not flag:
        return
    Path(flag).write_text(str(os.getpid()), encoding="utf-8")
    deadline = time.monotonic() + PAUSE_SECONDS
    while time.monotonic() < deadline and Path(flag).exists():
        time.sleep(0.05)
