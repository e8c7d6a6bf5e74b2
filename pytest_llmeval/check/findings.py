"""Findings of ``llm-eval-check``: the code table, the finding record and its renderings.

Every problem the checker reports is a :class:`Finding`: a stable code (``LEC102``), a
severity (``error`` blocks shipping, ``warning`` does not), a message and the line of
the config file it is about. :data:`CODES` is the single table of codes (the docs list
the same table, and a test keeps the two in step). Renderers turn a list of findings
into text, JSON or junit XML; none of them imports pytest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

__all__ = [
    "CODES",
    "ERROR",
    "WARNING",
    "CheckResult",
    "Finding",
    "finding",
    "render_json",
    "render_junit",
    "render_text",
    "sort_findings",
    "summary_line",
    "xml_safe",
]

ERROR = "error"
WARNING = "warning"

#: code -> (severity, what it means). Codes are stable: a code is never reused.
CODES: Mapping[str, tuple[str, str]] = {
    # file and shape
    "LEC001": (ERROR, "unknown key (with a did-you-mean suggestion)"),
    "LEC002": (ERROR, "value of the wrong type or shape"),
    "LEC003": (ERROR, "required key missing"),
    "LEC004": (ERROR, "duplicate key in one mapping (YAML keeps only the last)"),
    "LEC005": (ERROR, "key that YAML does not read as a string (yes/no/on/off, numbers): quote it"),
    # routing
    "LEC101": (ERROR, "route weight outside [0, 1]"),
    "LEC102": (ERROR, "route weights do not sum to 1"),
    "LEC103": (ERROR, "no fallback configured"),
    "LEC104": (ERROR, "fallback names a route that does not exist"),
    "LEC105": (ERROR, "fallback is the same model as the primary route: failing over changes nothing"),
    "LEC106": (ERROR, "failover is claimed but all routes and the fallback use one provider"),
    "LEC107": (WARNING, "fallback uses the primary route's provider: an outage of that provider takes both down"),
    "LEC108": (ERROR, "health_check_interval_seconds is not positive"),
    "LEC109": (ERROR, "failover_after_consecutive_failures is below 1"),
    "LEC110": (ERROR, "both primary/secondary and a routes list are given"),
    "LEC111": (ERROR, "routing has no route"),
    "LEC112": (WARNING, "the same provider:model is routed twice"),
    "LEC113": (ERROR, "a route without a weight among several routes"),
    # eval gates
    "LEC201": (ERROR, "threshold outside [0, 1]"),
    "LEC202": (ERROR, "min_examples below 1"),
    "LEC203": (WARNING, "no thresholds: the config asks for no minimum quality"),
    "LEC204": (ERROR, "golden_dataset_fingerprint is not sha256:<64 hex digits>"),
    # canary
    "LEC301": (ERROR, "canary stages not strictly increasing"),
    "LEC302": (ERROR, "canary stages do not end at 100"),
    "LEC303": (WARNING, "first canary stage above 10% of traffic"),
    "LEC304": (ERROR, "canary stage outside (0, 100]"),
    "LEC305": (ERROR, "min_stage_duration_minutes is not positive"),
    "LEC306": (ERROR, "rollback.max_quality_drop outside (0, 1]"),
    "LEC307": (ERROR, "rollback.max_error_rate outside [0, 1]"),
    "LEC308": (ERROR, "canary alpha or power outside (0, 1)"),
    "LEC309": (ERROR, "rollback.max_latency_p95_ms is not positive"),
    # feature flags
    "LEC401": (ERROR, "feature-flag percentage outside [0, 100]"),
    "LEC402": (ERROR, "segment used twice in one flag's rules"),
    # monitoring and traffic
    "LEC501": (ERROR, "daily_cost_budget is not positive"),
    "LEC502": (ERROR, "cost_alert_threshold outside (0, 1]"),
    "LEC503": (ERROR, "latency_p95_alert_ms is not positive"),
    "LEC504": (ERROR, "quality_alert_threshold is not a drop (must be in [-1, 0])"),
    "LEC505": (ERROR, "traffic.requests_per_day is not positive"),
    # prompt registry
    "LEC601": (ERROR, "pinned prompt version is not 12 hex digits"),
    "LEC602": (ERROR, "pinned prompt version does not exist (not the file's version, not in the prompt log)"),
    "LEC603": (ERROR, "pinned prompt version has no passing eval"),
    "LEC604": (WARNING, "pinned prompt version is older than the prompt file's current version"),
    "LEC605": (ERROR, "prompt file or prompt log cannot be read"),
    # cross-checks with the report
    "LEC701": (ERROR, "the report is incomplete (interrupted or still running)"),
    "LEC702": (ERROR, "the report's verdict is deferred (a shard): merge the shards first"),
    "LEC703": (ERROR, "a routed model was not evaluated on the golden dataset"),
    "LEC704": (ERROR, "a routed model's suite failed its gate"),
    "LEC705": (WARNING, "a suite used no model client: the report cannot say which model it evaluated"),
    "LEC706": (ERROR, "no suite ran on the golden dataset"),
    "LEC707": (ERROR, "the golden dataset's fingerprint differs from the one evaluated"),
    "LEC708": (ERROR, "the gate that ran used a looser (or no) threshold than the config"),
    "LEC709": (ERROR, "fewer cases than min_examples"),
    "LEC710": (ERROR, "a metric regressed against the baseline (block_on_regression)"),
    "LEC711": (WARNING, "a metric regressed, or no baseline was compared (regression not blocking or not checked)"),
    "LEC712": (ERROR, "projected daily cost above the cost alert line"),
    "LEC713": (WARNING, "cost cannot be projected (no traffic estimate, unpriced model or no cost data)"),
    "LEC714": (ERROR, "a routed model's p95 latency is above latency_p95_alert_ms"),
    "LEC715": (WARNING, "a routed model's latency is unknown"),
    "LEC716": (ERROR, "a suite on the golden dataset failed its gate"),
    "LEC717": (WARNING, "the golden dataset file is not next to the config: fingerprint not verified"),
    # shadow / blue-green comparison (llm-eval shadow -o FILE, checked with --shadow FILE)
    "LEC801": (ERROR, "the shadow comparison blocks the cutover: green is worse than blue"),
    "LEC802": (ERROR, "the shadow comparison could not decide (too few pairs or too little power)"),
    "LEC803": (WARNING, "the shadow's green model is not routed by the config"),
}


@dataclass(frozen=True)
class Finding:
    """One problem: ``file:line: severity code: message``."""

    code: str
    severity: str
    message: str
    line: int
    file: str
    key: str | None = None  # dotted config path the finding is about, e.g. routing.primary.weight

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity} {self.code}: {self.message}"

    @property
    def blocks(self) -> bool:
        return self.severity == ERROR

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finding(code: str, message: str, line: int, file: str, key: str | None = None,
            severity: str | None = None) -> Finding:
    """A finding with the code's default severity (unless ``severity`` overrides it)."""
    if code not in CODES:  # a programming error, never user input
        raise KeyError(f"unknown finding code {code}")
    return Finding(code, severity or CODES[code][0], message, line, file, key)


@dataclass(frozen=True)
class CheckResult:
    """Everything one ``llm-eval-check CONFIG [--report]`` run found."""

    config: str
    report: str | None
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.blocks]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if not f.blocks]

    @property
    def ships(self) -> bool:
        return not self.errors

    @property
    def exit_code(self) -> int:
        return 0 if self.ships else 1

    def to_dict(self) -> dict[str, Any]:
        """The ``--format json`` document: the files checked, the verdict (``ship``, the
        exit code), the counts and every finding (``code``, ``severity``, ``message``,
        ``line``, ``file``, ``key``)."""
        return {
            "config": self.config,
            "report": self.report,
            "ship": self.ships,
            "exit_code": self.exit_code,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
        }


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """By line, then code; duplicates (same code, line and message) dropped."""
    seen: set[tuple[str, int, str]] = set()
    out = []
    for f in sorted(findings, key=lambda f: (f.line, f.code, f.message)):
        key = (f.code, f.line, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return tuple(out)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def summary_line(result: CheckResult) -> str:
    counts = f"{_plural(len(result.errors), 'error')}, {_plural(len(result.warnings), 'warning')}"
    against = f" against {result.report}" if result.report else ""
    verdict = "may ship" if result.ships else "must not ship"
    return f"llm-eval-check: {result.config}{against}: {counts}: {verdict} (exit {result.exit_code})"


def render_text(result: CheckResult) -> str:
    lines = [str(f) for f in result.findings]
    lines.append(summary_line(result))
    return "\n".join(lines) + "\n"


def render_json(result: CheckResult) -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"


def render_junit(result: CheckResult, suite_name: str = "llm-eval-check") -> str:
    """junit XML: one test case per finding (errors fail, warnings pass with their text in
    ``system-out``), or one passing case when there is nothing to say."""
    from xml.etree import ElementTree as ET

    suite = ET.Element("testsuite", {
        "name": suite_name,
        "tests": str(max(1, len(result.findings))),
        "failures": str(len(result.errors)),
        "errors": "0",
        "skipped": "0",
    })
    classname = f"llm-eval-check.{result.config}"
    if not result.findings:
        ET.SubElement(suite, "testcase", {"classname": classname, "name": "config may ship"})
    for f in result.findings:
        name = f"{f.code} line {f.line}" + (f" {f.key}" if f.key else "")
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": name, "file": f.file, "line": str(f.line)})
        if f.blocks:
            failure = ET.SubElement(case, "failure", {"message": xml_safe(f.message), "type": f.code})
            failure.text = xml_safe(str(f))
        else:
            out = ET.SubElement(case, "system-out")
            out.text = xml_safe(str(f))
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def xml_safe(text: str) -> str:
    """XML 1.0 cannot hold most control characters, not even escaped: replace them."""
    return "".join(ch if ch in "\t\n\r" or (" " <= ch <= "\ud7ff") or ("\ue000" <= ch <= "\ufffd")
                   or ch > "\uffff" else "\ufffd" for ch in text)

